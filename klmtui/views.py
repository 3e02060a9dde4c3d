"""Turn a store snapshot into what the screens display: rows of formatted figures.

Presentation only: which record is the latest, how a figure is printed. Statistics and fronts
come from `core` (`core.latency.summarize`, `core.pareto`); nothing here decides a result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable

from core.numbers import column_figure, figure
from core.schema import ACTIVE_STATUSES
from core.schema import DEFAULT_OBJECTIVE_SPECS as DEFAULT_OBJECTIVES
from core.schema import MEASURED_SOURCE as MEASURED
from core.schema import THESIS_SOURCE

OBJECTIVE_NAMES = ("accuracy", "params_m", "latency_s", "power_w", "energy_mj", "macs_m")


@dataclass
class ArchRow:
    """One line of the architectures table, for one figure source."""

    id: str
    arch: str
    channels: int
    params: int | None
    macs: int | None
    in_thesis: bool | None
    status: str = "-"
    accuracy: float | None = None
    accuracy_std: float | None = None
    seeds: int = 0
    latency_s: float | None = None
    power_w: float | None = None
    energy_mj: float | None = None
    on_front: bool = False
    ref_params_m: float | None = None  # a reference source's own (published, rounded) figure
    predicted: dict = field(default_factory=dict)  # column -> (low, high): a predicted figure (core.predict)
    runs: list[dict] = field(default_factory=list)
    benchmarks: list[dict] = field(default_factory=list)

    @property
    def params_m(self) -> float | None:
        if self.ref_params_m is not None:
            return self.ref_params_m
        return None if self.params is None else self.params / 1e6

    def as_dict(self) -> dict:
        """The row as result columns (what `core.pareto` compares)."""
        return {
            "id": self.id, "arch": self.arch, "channels": self.channels, "status": self.status,
            **{name: self.objective(name) for name in OBJECTIVE_NAMES},
            "predicted": sorted(self.predicted),
        }

    def objective(self, name: str) -> float | None:
        """The figure `name` of OBJECTIVE_NAMES (None for any other name); called per row and
        objective for a front over 20k rows, so no dict is built per call."""
        if name == "macs_m":
            return None if self.macs is None else self.macs / 1e6
        return getattr(self, name) if name in _ATTRIBUTE_OBJECTIVES else None


_ATTRIBUTE_OBJECTIVES = frozenset(OBJECTIVE_NAMES) - {"macs_m"}  # read as attributes of the row


def sources(snapshot) -> list[str]:
    """`measured` (our runs and benchmarks, also per device) and every imported source, thesis first."""
    names = list(snapshot.figures) or [MEASURED]
    names.sort(key=lambda s: (not s.startswith(MEASURED), s != THESIS_SOURCE, s))
    return names


def latest(records: Iterable[dict]) -> dict | None:
    records = list(records)
    if not records:
        return None
    return max(records, key=lambda r: (r.get("finished") or r.get("started") or r.get("created") or "", r["id"]))


def training_status(runs: list[dict]) -> str:
    """`running 3/10`, `running 1/2 +1q`, `queued`, `done x2`, `interrupted (r)`: an architecture's runs."""
    if not runs:
        return "-"
    running = [r for r in runs if r.get("status") == "running"]
    waiting = sum(1 for r in runs if r.get("status") in ("queued", "pending"))
    if running:
        r = running[0]
        more = f" +{len(running) - 1}" if len(running) > 1 else ""
        queued = f" +{waiting}q" if waiting else ""
        return f"running {r.get('epoch') or 0}/{r.get('epochs') or '?'}{more}{queued}"
    if waiting:
        return "queued" if waiting == 1 else f"queued x{waiting}"
    newest = latest(runs) or {}
    status = newest.get("status") or "-"
    done = sum(1 for r in runs if r.get("status") == "done")
    if status == "done" and done > 1:
        return f"done x{done}"
    if status == "interrupted":
        return "interrupted (r)"
    return status


def bench_status(benchmarks: list[dict]) -> str | None:
    if any(b.get("status") in ACTIVE_STATUSES for b in benchmarks):
        return "bench"
    return None


def _figures(row: ArchRow, result: dict | None, exact_params: bool) -> None:
    """Copy one source row's figures (from `core.study.source_rows` + `core.report.with_derived`)."""
    if not result:
        return
    extra = result.get("extra") or {}
    row.accuracy = result.get("accuracy")
    row.accuracy_std = extra.get("accuracy_std")
    row.seeds = extra.get("seeds") or 0
    row.latency_s = result.get("latency_s")
    row.power_w = result.get("power_w")
    row.energy_mj = result.get("energy_mj")
    if not exact_params and result.get("params_m") is not None:
        row.ref_params_m = float(result["params_m"])


def arch_rows(snapshot, source: str = MEASURED, predicted: bool = False) -> list[ArchRow]:
    """Every architecture of the store (plus those only a reference source knows), for `source`.

    With `predicted`, missing latency/power figures are predicted from the source's own rows
    (`predict_missing`); such rows carry `predicted` and the table styles them as predictions.
    The cyclic garbage collector is paused meanwhile (`core.store_check.gc_paused`): a 20k-row
    source makes 20k rows that live on, which it would scan again and again (and a collection
    stops the UI thread too while the home screen builds them in a worker).
    """
    from core.store_check import gc_paused

    with gc_paused():
        return _arch_rows(snapshot, source, predicted)


def _arch_rows(snapshot, source: str, predicted: bool) -> list[ArchRow]:
    runs_by: dict[str, list[dict]] = {}
    for r in snapshot.table("runs"):
        runs_by.setdefault(r.get("arch_id"), []).append(r)
    benches_by: dict[str, list[dict]] = {}
    for b in snapshot.table("benchmarks"):
        benches_by.setdefault(b.get("arch_id"), []).append(b)
    results = {r.get("arch_id"): r for r in snapshot.figures.get(source, [])}

    rows: dict[str, ArchRow] = {}
    for a in snapshot.table("architectures"):
        rows[a["id"]] = ArchRow(
            id=a["id"], arch=a.get("arch") or a["id"].split("@")[0], channels=a.get("channels") or 0,
            params=a.get("params"), macs=a.get("macs"), in_thesis=a.get("in_thesis"),
        )
    for record in [*snapshot.table("runs"), *snapshot.table("benchmarks")]:  # runs of unsampled architectures
        arch_id = record.get("arch_id")
        if arch_id and arch_id not in rows:
            rows[arch_id] = ArchRow(id=arch_id, arch=record.get("arch") or arch_id.split("@")[0],
                                    channels=record.get("channels") or 0, params=None, macs=None, in_thesis=None)
    if not source.startswith(MEASURED):
        for arch_id, res in results.items():
            if arch_id not in rows:
                rows[arch_id] = ArchRow(id=arch_id, arch=res.get("arch") or arch_id.split("@")[0],
                                        channels=res.get("channels") or 0, params=None, macs=None, in_thesis=None)
    for row in rows.values():
        row.runs = runs_by.get(row.id, [])
        row.benchmarks = benches_by.get(row.id, [])
        row.status = training_status(row.runs)
        if bench_status(row.benchmarks):
            row.status = f"{row.status} +bench" if row.status != "-" else "bench"
        _figures(row, results.get(row.id), exact_params=source.startswith(MEASURED))
    out = list(rows.values())
    if predicted:
        predict_missing(out, snapshot.figures.get(source, []), source)
    mark_front(out, DEFAULT_OBJECTIVES)
    return out


_PREDICTION_CACHE: dict[tuple, dict] = {}


def predict_missing(rows: list[ArchRow], results: list[dict], source: str) -> None:
    """Fill rows' missing latency/power (and energy) with core.predict's figures from `results`.

    Not for the plain `measured` source (it mixes devices): `measured:DEVICE` or a reference.
    Fits are cached per source and figures, so redraws cost nothing.
    """
    if source == MEASURED:
        return
    from core.arch import parse_arch
    from core.errors import InputError
    from core.predict import PREDICTABLE, features, fit_target
    from core.report import energy_per_image_j
    from core.study import arch_of

    key = (source, tuple((r.get("arch_id"), r.get("latency_s"), r.get("power_w")) for r in results))
    models = _PREDICTION_CACHE.get(key)
    if models is None:
        models = {}
        for target in PREDICTABLE:
            try:
                models[target] = fit_target(target, [(features(arch_of(r)), r.get(target)) for r in results])
            except InputError:
                pass
        _PREDICTION_CACHE.clear()
        _PREDICTION_CACHE[key] = models
    for row in rows:
        missing = [t for t in models if getattr(row, t) is None]
        if not missing:
            continue
        try:
            feats = features(parse_arch(row.id))
        except InputError:
            continue
        for target in missing:
            value, low, high = models[target].predict(feats)
            setattr(row, target, value)
            row.predicted[target] = (low, high)
        if row.energy_mj is None and row.latency_s is not None and row.power_w is not None:
            energy = energy_per_image_j({"latency_s": row.latency_s, "power_w": row.power_w})
            row.energy_mj = None if energy is None else energy * 1000
            row.predicted["energy_mj"] = None


def front(rows: list[ArchRow], objectives: Iterable[str] = DEFAULT_OBJECTIVES, tolerances: Iterable[str] = ()):
    """`core.pareto`'s front over the rows' figures; sets `on_front` on the rows. Returns the FrontResult."""
    from core import pareto

    objs = [pareto.parse_objective(o) for o in objectives]
    tols = dict(pareto.parse_tolerance(t) for t in tolerances)
    result = pareto.pareto_front([r.as_dict() for r in rows], objs, tols)
    on = {r["id"] for r in result.front}
    for r in rows:
        r.on_front = r.id in on
    return result


def mark_front(rows: list[ArchRow], objectives: Iterable[str] = DEFAULT_OBJECTIVES) -> None:
    """The on-front marker of the table (plain dominance): the objectives some row has values for
    (benchmarks without power readings still get a front over the rest, as on the Pareto screen).

    The same flags as `front` (`core.pareto.available_objectives`, then `pareto_front`), read from
    one column per objective straight into `core.pareto.plain_front`: no row dicts (20k rows in a
    fraction of the time; tests/test_tui_scale.py checks it against `front`)."""
    from core import pareto

    objs = [pareto.parse_objective(o) for o in objectives]
    if not rows or len({o.name for o in objs}) != len(objs):  # nothing to mark / pareto_front's own error
        kept, _ = pareto.available_objectives([r.as_dict() for r in rows], objs)
        if kept:
            front(rows, [str(o) for o in kept])
        return
    columns = {o.name: _objective_column(rows, o.name) for o in objs}
    kept = [o for o in objs if any(v is not None for v in columns[o.name])]
    if not kept:
        return
    complete: list[int] = []  # the rows with every kept objective (pareto_front excludes the rest)
    points: list[tuple] = []
    for i, values in enumerate(zip(*(columns[o.name] for o in kept))):
        if None not in values:
            complete.append(i)
            points.append(values)
    flags = pareto.plain_front(points, [o.sign for o in kept])
    on = {rows[i].id for i, flag in zip(complete, flags) if flag}
    for r in rows:
        r.on_front = r.id in on


def _objective_column(rows: list[ArchRow], name: str) -> list[float | None]:
    """`core.pareto.value_of` of every row's figure `name` (floats, the common case, checked inline)."""
    from core.pareto import value_of

    out: list[float | None] = []
    for row in rows:
        value = row.objective(name)
        if value.__class__ is float and math.isfinite(value):
            out.append(value)
        else:
            out.append(None if value is None else value_of({name: value}, name))
    return out


# ---------------------------------------------------------------------- formatting


def fmt_accuracy(row: ArchRow) -> str:
    """Accuracy as published (core.numbers, 2 decimals), with the spread over seeds when there is one."""
    text = column_figure("accuracy", row.accuracy)
    return text if row.accuracy is None or row.accuracy_std is None else f"{text}±{figure(row.accuracy_std, 2)}"


