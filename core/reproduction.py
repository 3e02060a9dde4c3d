"""A reproduction report: one source against another (`klmtui report --source measured --against thesis`).

Architectures are paired by K-L-M@C and their cells (`SNAS_mild` and `SNAS_mild_edge_all` are the
same network, so they pair; the genotype difference is listed as not comparable). For the pairs:
- per architecture: accuracy delta (source - against) with the source's seed std and count where
  it has them, latency and power ratios (source / against);
- Kendall's tau-b between the two sources per objective (ties handled; None under 2 pairs);
- front overlap: the 4-objective front of each source over the paired architectures, and how many
  of each front's rows are on the other's;
- what was not comparable: recipe, power rail, timing, protocol, `none` edges, genotype, batch,
  device, weights, as each side records them (the thesis' from its text and code: 600 epochs fp32,
  the input rail POM_5V_IN, host clock without synchronize, 50x50 runs, `none` edges computed,
  SNAS_mild_edge_all, batch 64, Jetson Nano).
`reproduction(store, source, against)` returns a dict; `to_markdown(report)` renders it.
"""

from __future__ import annotations

import math
from typing import Any

from core.errors import InputError
from core.reference import MEASURED_SOURCE, THESIS_SOURCE

OBJECTIVES = ("accuracy", "params_m", "latency_s", "power_w")
CONDITIONS = ("recipe", "rail", "timing", "protocol", "none_edges", "genotype", "batch", "device", "weights")
# The thesis' conditions in the names klmtui's benchmarks record (rail `input` = POM_5V_IN on a Nano;
# timing `thesis` = host clock per batch including loading, no synchronize; protocol `thesis` = 50 runs
# of 50 batches, the first 20 runs and 5 batches of each discarded; its code computed the `none` edges).
THESIS_CONDITIONS = {
    "recipe": "paper: 600 epochs, batch 96, fp32, cosine stepped before each epoch",
    "rail": "input",
    "timing": "thesis",
    "protocol": "thesis",
    "none_edges": "timed",
    "genotype": "SNAS_mild_edge_all",
    "batch": 64,
    "device": "Jetson Nano",
    "weights": "trained",
}
_PROTOCOL_OPTIONS = ("runs", "batches", "warmup_runs", "warmup_batches")


def kendall_tau(xs: list[float], ys: list[float]) -> float | None:
    """Kendall's tau-b of paired values (ties in either variable handled); None when undefined."""
    n = len(xs)
    if n != len(ys):
        raise ValueError("kendall_tau needs pairs")
    concordant = discordant = ties_x = ties_y = 0
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = xs[i] - xs[j], ys[i] - ys[j]
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif (dx > 0) == (dy > 0):
                concordant += 1
            else:
                discordant += 1
    denom = math.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return None if denom == 0 else (concordant - discordant) / denom


def _key(row: dict) -> tuple:
    from core.interop import compact_twin

    return (int(row["K"]), int(row["L"]), int(row["M"]), int(row["channels"]),
            compact_twin(row.get("genotype") or "SNAS_mild"))


def _label(key: tuple) -> str:
    k, l, m, c, genotype = key
    return f"{k}-{l}-{m}@{c}" + ("" if genotype == "SNAS_mild" else f"/{genotype}")


def _recipe_of_runs(store, arch_id: str) -> str | None:
    runs = [r for r in store.find("runs", arch_id=arch_id, status="done")]
    if not runs:
        return None
    kinds = set()
    for run in runs:
        if run.get("imported"):
            kinds.add(f"imported ({(run['imported'] or {}).get('note') or run['imported'].get('file')})")
            continue
        cfg = run.get("config") or {}
        precision = (run.get("recipe") or {}).get("precision") or ("amp" if cfg.get("amp") else "fp32")
        kinds.add(f"{run.get('profile')}: {run.get('epochs')} epochs, batch {cfg.get('batch_size')}, {precision}")
    return "; ".join(sorted(kinds))


def conditions(store, source: str, row: dict) -> dict[str, Any]:
    """How a row was obtained, as far as its source records it (None = not recorded)."""
    if source == THESIS_SOURCE:
        return dict(THESIS_CONDITIONS)
    extra = row.get("extra") or {}
    out: dict[str, Any] = {c: extra.get(c) for c in CONDITIONS}
    out["genotype"] = row.get("genotype") or out["genotype"]
    if source.startswith(MEASURED_SOURCE) and store is not None:
        out["recipe"] = _recipe_of_runs(store, row["arch_id"])
        bench = store.get("benchmarks", extra["benchmark"]) if extra.get("benchmark") else None
        if bench:
            options = bench.get("options") or {}
            power = bench.get("power") if isinstance(bench.get("power"), dict) else {}
            out["rail"] = (bench.get("power_rail") or power.get("rail") or options.get("power_rail")
                           or "default (input rail, else the sum)")
            out["timing"] = bench.get("timing") or options.get("timing")
            protocol = bench.get("protocol") or options.get("protocol")
            changed = {k: options[k] for k in _PROTOCOL_OPTIONS if options.get(k) is not None}
            out["protocol"] = f"{protocol} ({', '.join(f'{k} {v}' for k, v in changed.items())})" if changed \
                else protocol
            out["none_edges"] = "timed" if bench.get("drop_none") is False and bench.get("none_edges") else "not timed"
            out["batch"] = bench.get("batch")
            out["device"] = bench.get("device")
            out["weights"] = bench.get("weights")
    return out


def _per_image(row: dict) -> float | None:
    from core.report import batch_of

    batch = batch_of(row)
    return None if row.get("latency_s") is None or not batch else float(row["latency_s"]) / batch


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def reproduction(store, source: str = MEASURED_SOURCE, against: str = THESIS_SOURCE) -> dict:
    """The report of `source` against `against` (see the module docstring)."""
    from core.figures import source_rows_or_shipped
    from core.pareto import pareto_front
    from core.study import source_note

    mine = {_key(r): r for r in source_rows_or_shipped(store, source)}
    theirs = {_key(r): r for r in source_rows_or_shipped(store, against)}
    paired = sorted(set(mine) & set(theirs))
    if not paired:
        raise InputError(f"sources {source!r} and {against!r} share no architecture: nothing to compare")
    rows = []
    for key in paired:
        a, b = mine[key], theirs[key]
        extra = a.get("extra") or {}
        delta = None if a.get("accuracy") is None or b.get("accuracy") is None else a["accuracy"] - b["accuracy"]
        rows.append({
            "arch": _label(key), "K": key[0], "L": key[1], "M": key[2], "channels": key[3],
            "accuracy": a.get("accuracy"), "against_accuracy": b.get("accuracy"), "accuracy_delta": delta,
            "accuracy_std": extra.get("accuracy_std"), "seeds": extra.get("seeds"),
            "latency_ratio": _ratio(a.get("latency_s"), b.get("latency_s")),
            "latency_per_image_ratio": _ratio(_per_image(a), _per_image(b)),
            "power_ratio": _ratio(a.get("power_w"), b.get("power_w")),
            "params_ratio": _ratio(a.get("params_m"), b.get("params_m")),
        })
    taus = {}
    for objective in OBJECTIVES:
        pairs = [(mine[k][objective], theirs[k][objective]) for k in paired
                 if mine[k].get(objective) is not None and theirs[k].get(objective) is not None]
        taus[objective] = {"tau": kendall_tau([p[0] for p in pairs], [p[1] for p in pairs]) if len(pairs) >= 2
                           else None, "pairs": len(pairs)}
    fronts: dict[str, dict[str, Any]] = {}
    front_keys: dict[str, set[tuple]] = {}
    for name, side in ((source, mine), (against, theirs)):
        result = pareto_front([dict(side[k], _key=k) for k in paired])
        front_keys[name] = {r["_key"] for r in result.front}
        fronts[name] = {"front": [_label(k) for k in sorted(front_keys[name])], "describe": result.describe(),
                        "excluded": len(result.excluded)}
    a_front, b_front = front_keys[source], front_keys[against]
    overlap = {
        "source_front": len(a_front), "against_front": len(b_front),
        "source_on_against": len(a_front & b_front), "against_on_source": len(b_front & a_front),
        "only_source": [_label(k) for k in sorted(a_front - b_front)],
        "only_against": [_label(k) for k in sorted(b_front - a_front)],
    }
    differ = []
    for condition in CONDITIONS:
        values: dict[tuple[str, str], list[str]] = {}
        for key in paired:
            ca = conditions(store, source, mine[key]).get(condition)
            cb = conditions(store, against, theirs[key]).get(condition)
            if ca != cb:
                values.setdefault((str(ca) if ca is not None else "not recorded",
                                   str(cb) if cb is not None else "not recorded"), []).append(_label(key))
        for (ca, cb), archs in values.items():
            differ.append({"condition": condition, "source": ca, "against": cb, "rows": len(archs),
                           "archs": archs})
    return {
        "source": source, "against": against,
        "source_note": source_note(source), "against_note": source_note(against),
        "paired": len(paired), "only_source": len(set(mine) - set(theirs)), "only_against": len(set(theirs) - set(mine)),
        "rows": rows, "kendall_tau": taus, "fronts": fronts,
        "overlap": overlap, "not_comparable": differ,
    }


def _f(value: Any, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def to_markdown(report: dict) -> str:
    """The report as Markdown (what `klmtui report` prints or writes with -o)."""
    s, a = report["source"], report["against"]
    out = [f"# Reproduction report: `{s}` against `{a}`", "",
           f"- `{s}`: {report['source_note']}", f"- `{a}`: {report['against_note']}",
           (f"- paired architectures: {report['paired']} (only in `{s}`: {report['only_source']}, "
            f"only in `{a}`: {report['only_against']})"), "",
           "## Per architecture", "",
           ("Accuracy delta = source - against (percentage points; ± the source's std over its seeds, n seeds); "
            "ratios = source / against."), "",
           ("| arch | acc. source % | acc. against % | delta pp | seeds std (n) | latency ratio | "
            "latency/image ratio | power ratio |"),
           "|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        std = "-" if r["accuracy_std"] is None else f"±{r['accuracy_std']:.2f} ({r['seeds']})"
        if r["accuracy_std"] is None and r.get("seeds"):
            std = f"- ({r['seeds']})"
        out.append(f"| {r['arch']} | {_f(r['accuracy'], '.2f')} | {_f(r['against_accuracy'], '.2f')} | "
                   f"{_f(r['accuracy_delta'], '+.2f')} | {std} | {_f(r['latency_ratio'], '.3f')} | "
                   f"{_f(r['latency_per_image_ratio'], '.3f')} | {_f(r['power_ratio'], '.3f')} |")
    out += ["", "## Rank agreement (Kendall's tau-b over the paired rows)", "", "| objective | tau | pairs |",
            "|---|---|---|"]
    for objective, t in report["kendall_tau"].items():
        out.append(f"| {objective} | {_f(t['tau'], '.3f')} | {t['pairs']} |")
    o = report["overlap"]
    out += ["", "## Pareto fronts (accuracy max, params, latency, power min; over the paired rows)", "",
            f"- `{s}`: {report['fronts'][s]['describe']}",
            f"- `{a}`: {report['fronts'][a]['describe']}",
            (f"- {o['source_on_against']} of `{s}`'s {o['source_front']} front rows are on `{a}`'s front; "
             f"{o['against_on_source']} of `{a}`'s {o['against_front']} are on `{s}`'s."),
            ]
    if o["only_source"]:
        out.append(f"- on `{s}`'s front only: {', '.join(o['only_source'])}")
    if o["only_against"]:
        out.append(f"- on `{a}`'s front only: {', '.join(o['only_against'])}")
    out += ["", "## Not comparable", "",
            ("Conditions as each side records them (`not recorded` where it does not). The thesis' in the names "
             "klmtui's benchmarks use: rail `input` (POM_5V_IN), timing `thesis` (host clock per batch including "
             "loading, no synchronize), protocol `thesis` (50 runs of 50 batches, 20 runs and 5 batches "
             "discarded), `none` edges timed (its code computes x*0)."), ""]
    if not report["not_comparable"]:
        out.append("Nothing: both sides record the same recipe, rail, timing, genotype, batch, device and weights.")
    else:
        out += ["| condition | source | against | rows |", "|---|---|---|---|"]
        for d in report["not_comparable"]:
            out.append(f"| {d['condition']} | {d['source']} | {d['against']} | {d['rows']} |")
    return "\n".join(out) + "\n"
