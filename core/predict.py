"""Predict latency, power and energy of architectures nobody measured, with 90% prediction intervals.

The thesis' Appendix A shows the Nano's figures follow the architecture's structure closely, so a
small linear model on analytic features (core.counting: cells per block, channels, MACs per block;
never torch) fitted on a few measured rows predicts the rest. Nothing here is tuned to Appendix A:

- the model family is a short list of `Candidate`s, each a feature set and a space: `rel` (least
  squares on relative errors, i.e. weights 1/y^2) or `log` (least squares on log y, i.e. a
  multiplicative model);
- for each target the candidate is chosen by leave-one-triple-out cross-validation on the given
  rows (all channel counts of one K-L-M triple left out at once; closed form through the hat
  matrix), by the one-standard-error rule: the simplest candidate
  whose LOO mean absolute relative error is within one standard error of the best one; so a
  latency model and a power model are chosen independently;
- the 90% prediction interval is the t interval of the chosen least-squares fit, with the noise
  scale estimated from the LOO residuals (honest about out-of-sample error, and about model
  selection) and the new point's leverage (wide where the features extrapolate).

`fit_target(target, rows)` fits one target; `predict_source(store, ...)` fits every asked target
on one source's rows (or a device's done benchmarks) and predicts every architecture in the store.
`predicted_device_seconds(...)` is the device time of benchmarking one architecture under a
protocol (for `klmtui plan`, and the ETA of a running benchmark).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.arch import Arch
from core.counting import block_macs
from core.errors import InputError

TARGETS = ("latency_s", "power_w", "energy_j")
LEVEL = 0.90
MIN_ROWS = 4          # fewer rows than this: nothing to cross-validate, no interval (exit 2)
MIN_DOF = 2           # a candidate needs at least this many residual degrees of freedom
REF_FEATURE = "ref"   # the other device's measured latency (predict --from-device)


def features(arch: Arch, ref: float | None = None) -> dict[str, float]:
    """The analytic features of an architecture (no torch): cells and MACs per block, channels."""
    stem, m1, red1, m2, rest = block_macs(arch)
    C, lc = float(arch.channels), math.log(arch.channels)
    out = {
        "one": 1.0,
        "K": float(arch.K), "L": float(arch.L), "M": float(arch.M),
        "C": C, "C2": C * C / 100.0,
        "KC": arch.K * C, "LC": arch.L * C, "MC": arch.M * C,
        "lC": lc, "lC2": lc * lc,
        "KlC": arch.K * lc, "LlC": arch.L * lc, "MlC": arch.M * lc,
        # MACs in millions: block 1 (with the stem), block 2 (with its reduction), block 3 (with the rest)
        "m1": (stem + m1) / 1e6, "m2": (red1 + m2) / 1e6, "m3": rest / 1e6,
        "macs": (stem + m1 + red1 + m2 + rest) / 1e6,
    }
    out["lmacs"] = math.log(out["macs"])
    if ref is not None:
        out[REF_FEATURE] = float(ref)
        out["l" + REF_FEATURE] = math.log(ref)
    return out


@dataclass(frozen=True)
class Candidate:
    """One member of the model family: a feature set in a space (`rel` or `log`)."""

    name: str
    space: str
    columns: tuple[str, ...]


CANDIDATES: tuple[Candidate, ...] = (
    Candidate("MACs", "rel", ("one", "macs")),
    Candidate("channels", "rel", ("one", "C", "C2")),
    Candidate("cells x channels", "rel", ("one", "C", "C2", "KC", "LC", "MC")),
    Candidate("cells + cells x channels", "rel", ("one", "C", "C2", "K", "L", "M", "KC", "LC", "MC")),
    Candidate("MACs per block + cells", "rel", ("one", "m1", "m2", "m3", "K", "L", "M")),
    Candidate("log MACs", "log", ("one", "lmacs", "lC")),
    Candidate("log channels", "log", ("one", "lC", "lC2")),
    Candidate("log channels + cells", "log", ("one", "lC", "lC2", "K", "L", "M")),
    Candidate("log channels x cells", "log", ("one", "lC", "lC2", "K", "L", "M", "KlC", "LlC", "MlC")),
)
REF_CANDIDATES: tuple[Candidate, ...] = (
    Candidate("other device", "rel", ("one", REF_FEATURE)),
    Candidate("other device + channels", "rel", ("one", REF_FEATURE, "C")),
    Candidate("log other device", "log", ("one", "l" + REF_FEATURE)),
    Candidate("log other device + channels", "log", ("one", "l" + REF_FEATURE, "lC")),
)


def t_quantile(p: float, dof: int) -> float:
    """Student's t quantile (exact for 1 and 2 degrees of freedom, Cornish-Fisher beyond)."""
    if dof == 1:
        return math.tan(math.pi * (p - 0.5))
    if dof == 2:
        return (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    z = _normal_quantile(p)
    g1 = (z ** 3 + z) / 4
    g2 = (5 * z ** 5 + 16 * z ** 3 + 3 * z) / 96
    g3 = (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / 384
    g4 = (79 * z ** 9 + 776 * z ** 7 + 1482 * z ** 5 - 1920 * z ** 3 - 945 * z) / 92160
    return z + g1 / dof + g2 / dof ** 2 + g3 / dof ** 3 + g4 / dof ** 4


def _normal_quantile(p: float) -> float:
    """Inverse of the standard normal CDF by bisection on math.erf (plenty fast for a few calls)."""
    lo, hi = -10.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


@dataclass
class Fit:
    """A fitted candidate: coefficients, the (pseudo-)inverse Gram matrix, LOO figures."""

    candidate: Candidate
    beta: np.ndarray
    gram_inv: np.ndarray
    rank: int
    n: int
    loo_rel: np.ndarray          # leave-one-triple-out relative errors, one per row
    sigma: float                 # noise scale from the LOO residuals (relative, or log space)

    @property
    def loo_mape(self) -> float:
        return float(np.mean(np.abs(self.loo_rel)))

    @property
    def loo_se(self) -> float:
        return float(np.std(np.abs(self.loo_rel), ddof=1) / math.sqrt(self.n)) if self.n > 1 else math.inf

    @property
    def dof(self) -> int:
        return self.n - self.rank

    def predict(self, feats: dict[str, float], level: float = LEVEL) -> tuple[float, float, float]:
        """(value, low, high) of the `level` prediction interval."""
        x = np.array([feats[c] for c in self.candidate.columns], float)
        t = t_quantile(0.5 + level / 2, self.dof)
        mu = float(x @ self.beta)
        if self.candidate.space == "log":
            half = t * self.sigma * math.sqrt(1 + float(x @ self.gram_inv @ x))
            return math.exp(mu), math.exp(mu - half), math.exp(mu + half)
        # relative errors: Var(y0 - yhat0) = sigma^2 (yhat0^2 + x0' (X_w' X_w)^-1 x0)
        half = t * self.sigma * math.sqrt(mu * mu + float(x @ self.gram_inv @ x))
        return mu, mu - half, mu + half


def _fit_candidate(candidate: Candidate, X: np.ndarray, y: np.ndarray, groups: Sequence[Any]) -> Fit | None:
    """Least squares in the candidate's space, and its leave-one-group-out errors (closed form).

    A group is one K-L-M triple (all its channel counts): leaving a whole triple out is what
    predicting an unmeasured triple asks of the model, and it exposes models that only fit
    because the same triple sits in the rows at another channel count.
    """
    if candidate.space == "log":
        Xw, yw = X, np.log(y)
    else:
        Xw, yw = X / y[:, None], np.ones_like(y)
    rank = int(np.linalg.matrix_rank(Xw))
    n = len(y)
    if n - rank < MIN_DOF:
        return None
    gram_inv = np.linalg.pinv(Xw.T @ Xw)
    beta = gram_inv @ Xw.T @ yw
    resid = yw - Xw @ beta
    loo = np.empty(n)
    members: dict[Any, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    for idx in members.values():
        sub = Xw[idx]
        a = np.eye(len(idx)) - sub @ gram_inv @ sub.T
        if np.linalg.cond(a) < 1e8:
            loo[idx] = np.linalg.solve(a, resid[idx])  # residuals of the fit without this group
        else:  # the others cannot pin every coefficient: refit without the group (minimum norm)
            rest: Any = np.ones(n, bool)
            rest[idx] = False
            beta_rest = np.linalg.lstsq(Xw[rest], yw[rest], rcond=None)[0]
            loo[idx] = yw[idx] - sub @ beta_rest
    loo_rel = np.expm1(loo) if candidate.space == "log" else loo
    sigma = float(math.sqrt(np.sum(loo ** 2) / n))
    return Fit(candidate, beta, gram_inv, rank, n, loo_rel, sigma)


@dataclass
class Model:
    """The model chosen for one target, and the cross-validation that chose it."""

    target: str
    fit: Fit
    n: int
    table: list[dict] = field(default_factory=list)   # every candidate: name, space, rank, LOO MAPE

    def predict(self, feats: dict[str, float], level: float = LEVEL) -> tuple[float, float, float]:
        return self.fit.predict(feats, level)

    def describe(self) -> str:
        f = self.fit
        return (f"{self.target}: {f.candidate.name} ({f.candidate.space}, {f.rank} coefficients) on {self.n} rows, "
                f"leave-one-triple-out error {100 * f.loo_mape:.2f}% mean")


def group_of(feats: dict[str, float]) -> tuple:
    """The cross-validation group of a row: its K-L-M triple."""
    return (feats["K"], feats["L"], feats["M"])


def fit_target(target: str, given: Sequence[tuple[dict[str, float], float | None]],
               candidates: Sequence[Candidate] = CANDIDATES, where: str = "the given rows") -> Model:
    """Choose and fit the model of one target from (features, value) rows; InputError if too few."""
    rows = [(f, float(v)) for f, v in given if v is not None and math.isfinite(float(v)) and float(v) > 0]
    groups = [group_of(f) for f, _ in rows]
    if len(rows) < MIN_ROWS:
        raise InputError(f"cannot predict {target}: {len(rows)} row(s) of {where} have it, "
                         f"at least {MIN_ROWS} are needed")
    y = np.array([v for _, v in rows])
    fits, table = [], []
    for cand in candidates:
        if not all(c in rows[0][0] for c in cand.columns):
            continue
        X = np.array([[f[c] for c in cand.columns] for f, _ in rows], float)
        fitted = _fit_candidate(cand, X, y, groups)
        table.append({"model": cand.name, "space": cand.space, "coefficients": None if fitted is None else fitted.rank,
                      "loo_mape": None if fitted is None else fitted.loo_mape})
        if fitted is not None:
            fits.append(fitted)
    if not fits:
        raise InputError(f"cannot predict {target}: {len(rows)} row(s) of {where} are too few for any model")
    best = min(fits, key=lambda f: f.loo_mape)
    # one-standard-error rule: the simplest model as good as the best within its standard error
    good = [f for f in fits if f.loo_mape <= best.loo_mape + best.loo_se]
    chosen = min(good, key=lambda f: (f.rank, f.loo_mape))
    for row in table:
        row["chosen"] = row["model"] == chosen.candidate.name
    return Model(target, chosen, len(rows), table)


# --------------------------------------------------------------------------- the store


def _target_value(row: dict, target: str) -> float | None:
    from core.report import with_derived

    value = with_derived(row).get(target) if target == "energy_j" else row.get(target)
    return None if value is None else float(value)


def training_rows(store, source: str) -> list[dict]:
    """The rows a model is fitted on: one source's (or `measured:DEVICE`'s) results."""
    from core.study import source_rows

    from core.schema import MEASURED_SOURCE

    try:
        return [dict(r) for r in source_rows(store, source)]
    except InputError:
        if source.startswith(MEASURED_SOURCE + ":"):
            device = source.partition(":")[2]
            raise InputError(f"device {device!r} has no done benchmark in {store.path} to fit on "
                             f"(`klmtui bench ARCH --device {device}`, or --source NAME)") from None
        raise


def store_archs(store, rows: Iterable[dict] = ()) -> list[Arch]:
    """Every architecture in the store (and in `rows`), sorted like the tables."""
    from core.study import arch_of

    seen: dict[str, Arch] = {}
    for rec in list(store.all("architectures")) + list(rows):
        arch = arch_of(rec)
        seen.setdefault(arch.id, arch)
    return sorted(seen.values(), key=lambda a: (a.K, a.L, a.M, -a.channels, a.genotype))


def reference_latencies(store, device: str) -> dict[str, float]:
    """arch id -> latency_s measured on `device` (its latest done benchmarks)."""
    from core.study import measured_rows

    out: dict[str, float] = {}
    for r in measured_rows(store, device):
        value = r.get("latency_s")
        if value:
            out[r["arch_id"]] = float(value)
    return out


def source_for(source: str | None, device: str | None) -> str:
    """`--source NAME` or `--device NAME` (its done benchmarks, the source `measured:NAME`)."""
    from core.schema import MEASURED_SOURCE, THESIS_SOURCE

    if source and device:
        raise InputError("give --source or --device, not both")
    if device:
        return f"{MEASURED_SOURCE}:{device}"
    return source or THESIS_SOURCE


def predict_source(store, source: str, targets: Sequence[str] = ("latency_s",), from_device: str | None = None
                   ) -> tuple[list[dict], dict[str, Model]]:
    """Fit each target on the source's rows and predict it for every architecture in the store.

    Returns (predictions, models): one dict per (architecture, target) with `arch`, `K`, `L`, `M`,
    `channels`, `target`, `value`, `low`, `high`, `measured` (the source's own figure or None),
    plus `arch_id` (callers drop it for the `--json` contract). With `from_device`, the latency
    measured there is a feature: only architectures measured there are predicted.
    """
    for target in targets:
        if target not in TARGETS:
            raise InputError(f"unknown target {target!r} (known: {', '.join(TARGETS)})")
    from core.study import arch_of

    rows = training_rows(store, source)
    ref = reference_latencies(store, from_device) if from_device else None
    if from_device and not ref:
        raise InputError(f"device {from_device!r} has no done benchmark with a latency to use as a feature")
    candidates = (CANDIDATES + REF_CANDIDATES) if ref else CANDIDATES

    def feats_of(arch: Arch) -> dict[str, float] | None:
        if ref is None:
            return features(arch)
        return features(arch, ref[arch.id]) if arch.id in ref else None

    by_arch = {r["arch_id"]: r for r in rows}
    models: dict[str, Model] = {}
    for target in targets:
        fitted = []
        for r in rows:
            feats = feats_of(arch_of(r))
            if feats is not None:
                fitted.append((feats, _target_value(r, target)))
        where = f"source {source}" + (f" also measured on {from_device}" if from_device else "")
        models[target] = fit_target(target, fitted, candidates, where)
    out = []
    for arch in store_archs(store, rows):
        feats = feats_of(arch)
        if feats is None:
            continue
        own = by_arch.get(arch.id)
        for target in targets:
            value, low, high = models[target].predict(feats)
            out.append({"arch": arch.triple, "K": arch.K, "L": arch.L, "M": arch.M, "channels": arch.channels,
                        "target": target, "value": value, "low": low, "high": high,
                        "measured": None if own is None else _target_value(own, target), "arch_id": arch.id})
    return out, models


JSON_KEYS = ("arch", "K", "L", "M", "channels", "target", "value", "low", "high", "measured")


def contract_row(pred: dict) -> dict:
    """The `klmtui predict --json` object (exactly the contract's keys)."""
    return {k: pred.get(k) for k in JSON_KEYS}


# --------------------------------------------------------------------------- planning


def predicted_device_seconds(protocol: Any, latency_s: float, power_pass: bool = True, cv: float = 0.02) -> float:
    """Predicted device time of benchmarking one architecture whose batch takes `latency_s` seconds.

    core.latency.expected_pass_batches per pass (thesis: runs x batches; adaptive: warm-up plus
    the floor, the minimum duration or the CI's need at `cv`, whichever is largest); a power pass
    repeats the latency pass (as the agent does). Start-up (push, torch import) is not counted.
    """
    from core.latency import expected_pass_batches

    return expected_pass_batches(protocol, latency_s, cv) * latency_s * (2 if power_pass else 1)


def plan(feats: dict[str, dict[str, float]], measured: Iterable[str], n: int, model: Model) -> list[str]:
    """Greedy D-optimal choice of `n` architectures to measure next (arch ids, best first).

    Uses the chosen latency model's feature space: each step adds the candidate whose features
    have the largest predictive variance x' (X'X)^-1 x given what is measured and already picked
    (so the determinant of X'X grows the most); ties go to the cheaper (smaller) architecture.
    """
    cols = model.fit.candidate.columns
    log = model.fit.candidate.space == "log"

    def vec(arch_id: str) -> np.ndarray:
        x = np.array([feats[arch_id][c] for c in cols], float)
        if not log:  # relative model: scale by the predicted value, as in the fit
            x = x / max(model.predict(feats[arch_id])[0], 1e-12)
        return x

    chosen: list[str] = []
    rest = [a for a in feats if a not in set(measured)]
    gram = sum((np.outer(vec(a), vec(a)) for a in measured if a in feats), np.zeros((len(cols), len(cols))))
    ridge = 1e-9 * np.eye(len(cols))
    for _ in range(min(n, len(rest))):
        inv = np.linalg.pinv(gram + ridge)
        best = max(rest, key=lambda a: (round(float(vec(a) @ inv @ vec(a)), 9), -feats[a]["macs"]))
        chosen.append(best)
        rest.remove(best)
        gram = gram + np.outer(vec(best), vec(best))
    return chosen


# --------------------------------------------------------------------------- predicted rows in a source


PREDICTABLE = ("latency_s", "power_w")  # energy follows from them (core.report.with_derived)


def with_predicted(store, source: str, rows: Sequence[dict], columns: Iterable[str]) -> tuple[list[dict], list[str]]:
    """The source's rows plus predictions where a figure is missing (`pareto --with-predicted`).

    For every architecture in the store, each missing `latency_s` / `power_w` that `columns` asks
    for (directly or through energy) is predicted from the source's own rows, and the row lists
    them in `predicted` (with `intervals`: column -> [low, high]); architectures the source has
    no row for get a row of their own (exact params, no accuracy). Returns (rows, notes): a note
    for each target that could not be fitted (too few rows).
    """
    from core.counting import count_params
    from core.reference import result_record

    wanted = set(columns)
    targets = [t for t in PREDICTABLE if t in wanted or wanted & {"energy_j", "energy_mj"}]
    notes: list[str] = []
    models: dict[str, Model] = {}
    from core.study import arch_of

    for target in targets:
        try:
            models[target] = fit_target(target, [(features(arch_of(r)), _target_value(r, target)) for r in rows],
                                        where=f"source {source}")
        except InputError as exc:
            notes.append(str(exc))
    by_arch = {r["arch_id"]: dict(r) for r in rows}
    for arch in store_archs(store, rows):
        found = by_arch.get(arch.id)
        if found is None and not models:
            continue
        row: dict = found if found is not None else dict(result_record(source, arch, {"params_m": count_params(arch) / 1e6}, {}))
        feats = None
        for target, model in models.items():
            if row.get(target) is None:
                feats = feats or features(arch)
                value, low, high = model.predict(feats)
                row[target] = value
                row.setdefault("predicted", []).append(target)
                row.setdefault("intervals", {})[target] = [low, high]
        if arch.id in by_arch or row.get("predicted"):
            by_arch[arch.id] = row
    out = sorted(by_arch.values(), key=lambda r: (r["K"], r["L"], r["M"], -r["channels"], r.get("genotype") or ""))
    return out, notes


def predicted_count(rows: Iterable[dict]) -> int:
    return sum(1 for r in rows if r.get("predicted"))
