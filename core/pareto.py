"""Pareto fronts over any objectives, each with a direction, plus the hypervolume of a front.

Plain dominance is the default: row a dominates row b when a is at least as good in every
objective and strictly better in one. A *tolerance* per objective is an explicit option, never
implied: with tolerance t on an objective, a counts as "no worse" than b there when it is worse
by at most t, and as "better" only when it is better by more than t. Tolerances are absolute
(`accuracy=0.1`, in the objective's unit) or relative (`latency_s=5%`, of the value compared
against). `describe()` states what a front was computed with, so every table says it.

Rows are plain dicts; the objectives are columns. Handled explicitly, never silently:
- missing values: a row lacking any objective (absent, None or NaN) is excluded and counted;
- ties: identical points dominate neither each other, so all of them are on the front, and
  `FrontResult.ties` lists the groups.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from core.errors import InputError
from core.schema import DEFAULT_OBJECTIVE_SPECS

DIRECTIONS = ("max", "min")


@dataclass(frozen=True)
class Objective:
    """A result column and whether larger (`max`) or smaller (`min`) is better."""

    name: str
    direction: str = "min"

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise InputError(f"objective {self.name!r}: direction must be max or min, not {self.direction!r}")

    @property
    def sign(self) -> int:
        """+1 for min, -1 for max: `sign * value` is always "smaller is better"."""
        return 1 if self.direction == "min" else -1

    def __str__(self) -> str:
        return f"{self.name}:{self.direction}"


@dataclass(frozen=True)
class Tolerance:
    """How much worse still counts as "no worse", and how much better counts as "better"."""

    value: float
    relative: bool = False

    def amount(self, reference: float) -> float:
        return abs(reference) * self.value if self.relative else self.value

    def __str__(self) -> str:
        return f"{self.value * 100:g}% (relative)" if self.relative else f"{self.value:g} (absolute)"


def parse_objective(text: str) -> Objective:
    """`accuracy:max`, `latency_s:min` (a bare name means min)."""
    name, _, direction = text.strip().partition(":")
    if not name:
        raise InputError(f"bad objective {text!r}: write NAME:max or NAME:min, e.g. accuracy:max")
    return Objective(name, direction.strip().lower() or "min")


# The thesis' four objectives (`core.schema.DEFAULT_OBJECTIVE_SPECS`), parsed.
DEFAULT_OBJECTIVES = tuple(parse_objective(spec) for spec in DEFAULT_OBJECTIVE_SPECS)


def parse_tolerance(text: str) -> tuple[str, Tolerance]:
    """`accuracy=0.1` (absolute) or `latency_s=5%` (relative) -> (objective name, Tolerance)."""
    name, sep, raw = text.partition("=")
    name, raw = name.strip(), raw.strip()
    if not sep or not name or not raw:
        raise InputError(f"bad tolerance {text!r}: write OBJECTIVE=VALUE or OBJECTIVE=PERCENT%, e.g. latency_s=5%")
    relative = raw.endswith("%")
    try:
        value = float(raw[:-1] if relative else raw)
    except ValueError:
        raise InputError(f"bad tolerance {text!r}: {raw!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise InputError(f"bad tolerance {text!r}: must be a finite number >= 0")
    return name, Tolerance(value / 100 if relative else value, relative)


def parse_reference(specs: Iterable[str], objectives: Sequence[Objective]) -> dict[str, float]:
    """`OBJ=NUMBER` specs -> a hypervolume reference point; all or none of the objectives."""
    reference: dict[str, float] = {}
    for spec in specs:
        name, _, raw = spec.partition("=")
        try:
            reference[name.strip()] = float(raw)
        except ValueError:
            raise InputError(f"bad reference {spec!r}: write OBJ=NUMBER, e.g. latency_s=3") from None
    missing = [o.name for o in objectives if o.name not in reference]
    if reference and missing:
        raise InputError(f"the reference point needs a value for every objective; missing {', '.join(missing)}")
    return reference


def check_columns(rows: Sequence[Mapping[str, Any]], names: Iterable[str]) -> None:
    """InputError for a column no row has a value in (a typo, not a missing value)."""
    for name in names:
        if rows and all(value_of(r, name) is None for r in rows):
            known = sorted(k for k, v in rows[0].items() if value_of(rows[0], k) is not None)
            raise InputError(f"no row has a value for {name!r}; numeric columns: {', '.join(known)}")


def value_of(row: Mapping[str, Any], name: str) -> float | None:
    """The objective's value as a float, or None when missing/not a finite number."""
    value = row.get(name)
    if value.__class__ is float:  # the common case first (100k rows)
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def dominates(
    a: Sequence[float],
    b: Sequence[float],
    objectives: Sequence[Objective],
    tolerances: Mapping[str, Tolerance] | None = None,
) -> bool:
    """Does point a dominate point b (values in objective order, original units)?"""
    strictly_better = False
    for x, y, obj in zip(a, b, objectives):
        tol = tolerances.get(obj.name) if tolerances else None
        slack = tol.amount(y) if tol else 0.0
        gain = (y - x) * obj.sign  # > 0: a is better than b on this objective
        if gain < -slack:
            return False
        if gain > slack:
            strictly_better = True
    return strictly_better


@dataclass
class FrontResult:
    """A front and everything needed to report it honestly."""

    objectives: tuple[Objective, ...]
    tolerances: dict[str, Tolerance]
    rows: list[dict[str, Any]]  # the compared rows, in input order, each with `on_front`
    front: list[dict[str, Any]]  # the rows on the front, in input order
    excluded: list[dict[str, Any]] = field(default_factory=list)  # rows missing an objective value
    ties: list[list[dict[str, Any]]] = field(default_factory=list)  # groups of identical front points

    def describe(self) -> str:
        """One paragraph that says what was computed over what."""
        objs = ", ".join(str(o) for o in self.objectives)
        if self.tolerances:
            tols = "; tolerances: " + ", ".join(f"{n} {t}" for n, t in self.tolerances.items())
        else:
            tols = "; plain dominance (no tolerance)"
        text = f"Pareto front over {objs}{tols}: {len(self.front)} of {len(self.rows)} rows"
        if self.excluded:
            text += f"; {len(self.excluded)} row(s) excluded for a missing objective value"
        if self.ties:
            sizes = ", ".join(str(len(g)) for g in self.ties)
            text += f"; {len(self.ties)} group(s) of identical points all on the front (sizes {sizes})"
        return text + "."


_CELLS = 1 << 21  # booleans per vectorised comparison (a few MB of temporaries)


def plain_front(points: Sequence[Sequence[float]], signs: Sequence[float]) -> list[bool]:
    """Which points no other point dominates (plain dominance), without comparing every pair.

    In minimisation space (value * sign) a dominator is lexicographically smaller, and identical
    points never dominate each other (as in `dominates`), so the distinct points are sorted once:
    - 2 objectives: a sweep, O(n log n): a point is dominated exactly when an earlier distinct
      point has a y no larger (the running minimum of y);
    - 3 or more: blocks in sorted order; within a block every pair is compared (vectorised), and
      the block's front removes every later point it dominates (dominance is transitive, so a
      point dominated by a dominated point is dominated by a front point): O(n * front) in numpy.
    100k rows in 4 objectives take a fraction of a second (issue 12)."""
    import numpy as np

    n = len(points)
    if n == 0:
        return []
    q = np.asarray(points, dtype=float) * np.asarray(signs, dtype=float)
    order = np.lexsort(q.T[::-1])
    ordered = q[order]
    new: Any = np.ones(n, dtype=bool)
    new[1:] = np.any(ordered[1:] != ordered[:-1], axis=1)
    distinct = ordered[new]  # sorted lexicographically
    inverse: Any = np.empty(n, dtype=np.intp)
    inverse[order] = np.cumsum(new) - 1
    if distinct.shape[1] == 1:
        flags: Any = np.zeros(len(distinct), dtype=bool)
        flags[0] = True
    elif distinct.shape[1] == 2:
        running = np.minimum.accumulate(distinct[:, 1])
        before = np.concatenate(([np.inf], running[:-1]))
        flags = distinct[:, 1] < before
    else:
        flags = _front_blocks(distinct, np)
    return list(flags[inverse].tolist())


def _dominated_by(front: Any, cand: Any, np: Any) -> Any:
    """For each candidate row: does some row of `front` dominate it (rows distinct)?"""
    out = np.zeros(len(cand), dtype=bool)
    if not len(front) or not len(cand):
        return out
    step = max(1, _CELLS // (len(front) * front.shape[1]))
    for start in range(0, len(cand), step):
        c = cand[start:start + step]
        le = front[None, :, 0] <= c[:, None, 0]  # distinct rows: <= everywhere means dominates
        for k in range(1, front.shape[1]):
            le &= front[None, :, k] <= c[:, None, k]
        out[start:start + step] = le.any(axis=1)
    return out


def _front_blocks(q: Any, np: Any, block: int = 512) -> Any:
    """The non-dominated rows of `q` (distinct rows, sorted lexicographically): see `plain_front`."""
    flags = np.zeros(len(q), dtype=bool)
    remaining = np.arange(len(q))
    while len(remaining):
        head, rest = remaining[:block], remaining[block:]
        p = q[head]
        # i dominates j inside the block (an earlier row never is dominated by a later one)
        le = (p[:, None, :] <= p[None, :, :]).all(axis=2)
        np.fill_diagonal(le, False)
        kept = head[~le.any(axis=0)]
        flags[kept] = True
        remaining = rest[~_dominated_by(q[kept], q[rest], np)] if len(rest) else rest
    return flags


_PLAIN_NUMBERS = frozenset((float, int, type(None)))


def _column(rows: Sequence[Mapping[str, Any]], name: str) -> list[float | None]:
    """`value_of(row, name)` for every row; a column of plain numbers is converted at once (100k rows)."""
    raw = [row.get(name) for row in rows]
    if set(map(type, raw)) <= _PLAIN_NUMBERS:
        import numpy as np

        try:
            array = np.array(raw, dtype=float)  # None -> nan, which is "missing" as in value_of
        except OverflowError:  # an integer too large for a float: value_of says which
            array = None
        if array is not None:
            return [v if ok else None for v, ok in zip(array.tolist(), np.isfinite(array).tolist())]
    return [value_of(row, name) for row in rows]


def pareto_front(
    rows: Iterable[Mapping[str, Any]],
    objectives: Sequence[Objective] = DEFAULT_OBJECTIVES,
    tolerances: Mapping[str, Tolerance] | None = None,
) -> FrontResult:
    """The rows no other row dominates: plain dominance without comparing every pair (`plain_front`);
    with tolerances every pair, O(n^2 * objectives), fine for thousands of rows."""
    objectives = tuple(objectives)
    if not objectives:
        raise InputError("a Pareto front needs at least one objective")
    names = [o.name for o in objectives]
    if len(set(names)) != len(names):
        raise InputError(f"objective given twice: {', '.join(names)}")
    tolerances = dict(tolerances or {})
    unknown = set(tolerances) - set(names)
    if unknown:
        raise InputError(f"tolerance for {', '.join(sorted(unknown))}, which is not an objective ({', '.join(names)})")

    from core.store_check import gc_paused

    with gc_paused():  # 100k row copies: the cyclic collector would scan them again and again
        return _front(list(rows), objectives, tolerances, names)


def _front(rows: list[Mapping[str, Any]], objectives: tuple[Objective, ...], tolerances: dict[str, Tolerance],
           names: list[str]) -> FrontResult:
    kept: list[dict[str, Any]] = []
    points: list[tuple[float, ...]] = []
    excluded: list[dict[str, Any]] = []
    for row, values in zip(rows, zip(*(_column(rows, n) for n in names))):
        if None in values:
            excluded.append(dict(row))
            continue
        kept.append(dict(row))
        points.append(tuple(values))  # type: ignore[arg-type]

    if tolerances:  # dominance with slack need not be transitive: every pair is compared
        on_front = [
            not any(j != i and dominates(points[j], points[i], objectives, tolerances) for j in range(len(points)))
            for i in range(len(points))
        ]
    else:
        on_front = plain_front(points, [o.sign for o in objectives])
    for row, flag in zip(kept, on_front):
        row["on_front"] = flag
    front = [row for row, flag in zip(kept, on_front) if flag]

    groups: dict[tuple[float, ...], list[dict[str, Any]]] = {}
    for row, point, flag in zip(kept, points, on_front):
        if flag:
            groups.setdefault(point, []).append(row)
    ties = [g for g in groups.values() if len(g) > 1]
    return FrontResult(objectives, tolerances, kept, front, excluded, ties)


def front_2d(
    rows: Iterable[Mapping[str, Any]],
    x: Objective,
    y: Objective,
    tolerances: Mapping[str, Tolerance] | None = None,
) -> FrontResult:
    """A 2-objective front, its rows sorted along x from best to worst (a staircase to plot)."""
    result = pareto_front(rows, (x, y), {k: v for k, v in (tolerances or {}).items() if k in (x.name, y.name)})
    result.front.sort(key=lambda r: (x.sign * float(r[x.name]), y.sign * float(r[y.name])))
    return result


# --------------------------------------------------------------------------- hypervolume


def hypervolume(
    rows: Iterable[Mapping[str, Any]],
    objectives: Sequence[Objective],
    reference: Mapping[str, float],
) -> float:
    """The volume dominated by `rows` and bounded by the `reference` point (original units).

    The reference must be worse than the points in every objective (e.g. accuracy 90 for max,
    latency 3 s for min); points not strictly better than it on every objective add nothing.
    Exact: a sweep in 2-D, slicing (HSO) in more dimensions, fine for fronts of ~100 points.
    """
    objectives = tuple(objectives)
    missing = [o.name for o in objectives if o.name not in reference]
    if missing:
        raise InputError(f"hypervolume needs a reference value for {', '.join(missing)}")
    ref = tuple(o.sign * float(reference[o.name]) for o in objectives)
    points = []
    for row in rows:
        values = [value_of(row, o.name) for o in objectives]
        if any(v is None for v in values):
            continue
        p = tuple(o.sign * v for o, v in zip(objectives, values))  # type: ignore[operator]
        if all(pi < ri for pi, ri in zip(p, ref)):
            points.append(p)
    return _hv_min(points, ref)


def _hv_min(points: list[tuple[float, ...]], ref: tuple[float, ...]) -> float:
    """Hypervolume for minimisation; every point is strictly below `ref` in every coordinate."""
    if not points:
        return 0.0
    dims = len(ref)
    if dims == 1:
        return ref[0] - min(p[0] for p in points)
    if dims == 2:
        volume, best_y = 0.0, ref[1]
        for x, y in sorted(points):
            if y < best_y:
                volume += (ref[0] - x) * (best_y - y)
                best_y = y
        return volume
    # Slice along the last objective: between consecutive values, the cross-section is the
    # (d-1)-dimensional hypervolume of all points at or below that level.
    ordered = sorted(points, key=lambda p: p[-1])
    volume = 0.0
    for i, p in enumerate(ordered):
        upper = ordered[i + 1][-1] if i + 1 < len(ordered) else ref[-1]
        depth = upper - p[-1]
        if depth > 0:
            volume += depth * _hv_min([q[:-1] for q in ordered[: i + 1]], ref[:-1])
    return volume


def available_objectives(rows: Sequence[Mapping[str, Any]], objectives: Sequence[Objective] = DEFAULT_OBJECTIVES,
                         ) -> tuple[list[Objective], list[str]]:
    """The default objectives' fallback: those some row has a value for, and the names left out
    (e.g. `power_w` for benchmarks without power readings). With no rows, all of them."""
    if not rows:
        return list(objectives), []
    kept = [o for o in objectives if any(value_of(r, o.name) is not None for r in rows)]
    return kept, [o.name for o in objectives if o not in kept]
