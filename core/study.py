"""The study in the store: initialising it, importing results, and the rows each source offers.

A *source* is a set of result rows, one per architecture, with the columns `accuracy`,
`params_m`, `latency_s`, `power_w`:
- an imported source (`thesis`, or any `import-results --source NAME`): the `results` table,
  figures as published (the thesis' params are rounded to 0.1M);
- the pseudo-source `measured`: klmtui's own measurements, assembled on the fly. Accuracy is the
  mean over the `done` training runs of the architecture (one per seed; `extra` keeps the count
  and the spread), latency and power come from its latest `done` benchmark (on any device, or on
  one device with `measured:DEVICE`), params are the exact count. Energy per image uses the
  benchmark's own batch.
"""

from __future__ import annotations

from operator import itemgetter
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, cast

from core.arch import Arch
from core.counting import count_macs, count_params
from core.errors import InputError
from core.records import ArchitectureRecord, ResultRecord
from core.reference import (MEASURED_SOURCE, THESIS_SOURCE, arch_fields, is_reference_source, result_record,
                            thesis_results)
from core.schema import ARCHITECTURES, BENCHMARKS, DONE, RESULTS, RUNS, SOURCES
from core.report import with_derived
from core.store import Store, Tx

DEFAULT_SOURCE = THESIS_SOURCE


def arch_of(record: Mapping[str, Any]) -> Arch:
    """The `Arch` of any record carrying K, L, M, channels (and maybe genotype)."""
    kwargs = {"genotype": record["genotype"]} if record.get("genotype") else {}
    return Arch(int(record["K"]), int(record["L"]), int(record["M"]), int(record["channels"]), **kwargs)


def architecture_record(arch: Arch, *, in_thesis: bool | None, sampled: bool) -> ArchitectureRecord:
    """An `architectures` record with analytic params and MACs (fast, no torch)."""
    return {
        "id": arch.id,
        **arch_fields(arch),
        "params": count_params(arch),
        "macs": count_macs(arch),
        "in_thesis": in_thesis,
        "sampled": sampled,
    }


def _ensure_architecture(tx: Tx, arch: Arch, *, in_thesis: bool | None = None) -> bool:
    """Add an architecture seen in results but never sampled. True if added."""
    if tx.has("architectures", arch.id):
        return False
    tx.insert("architectures", architecture_record(arch, in_thesis=in_thesis, sampled=False))
    return True


def init_study(store: Store, **sample_options: Any) -> dict:
    """Create or update the store: the sampled architectures and the thesis reference results.

    Idempotent, and it never touches runs, benchmarks or devices. Architecture records are
    updated field by field (fields others added are kept); thesis rows are rewritten as shipped.
    Returns counts for the user.
    """
    from core.space import sample

    sampled = [s.to_dict() for s in sample(**sample_options)]
    thesis = thesis_results()
    counts = {"architectures_added": 0, "architectures_updated": 0, "results_added": 0, "results_updated": 0}
    with store.transaction() as tx:
        for item in sampled:
            arch = arch_of(item)
            record = architecture_record(arch, in_thesis=item.get("in_thesis"), sampled=True)
            record["params"], record["macs"] = item.get("params", record["params"]), item.get("macs", record["macs"])
            old = tx.get("architectures", arch.id)
            if old is None:
                tx.insert("architectures", record)
                counts["architectures_added"] += 1
            elif any(old.get(k) != v for k, v in record.items()):
                tx.upsert("architectures", record)
                counts["architectures_updated"] += 1
        for rec in thesis:
            _ensure_architecture(tx, arch_of(rec), in_thesis=True)
            old = tx.get("results", rec["id"])
            if old is None:
                tx.insert("results", rec)
                counts["results_added"] += 1
            elif old != rec:
                tx.upsert("results", rec)
                counts["results_updated"] += 1
    counts["architectures"] = store.count("architectures")
    counts["results"] = store.count(RESULTS) + sum(int(m.get("rows") or 0) for m in store.rows(SOURCES))  # every source's
    return counts


def import_results(store: Store, records: Iterable[dict], *, replace: bool = False, csv: str | None = None) -> dict:
    """Write validated `results` records of one source, in one transaction, to the source's own file
    (`core.sources`; rows the `results` table held for it before are moved there).

    Merges with the rows the source has (a row of an architecture already there is updated); with
    `replace`, the source's rows absent from `records` are removed. `architectures_added` counts the
    architectures the store did not know (in no architecture record, run, benchmark or source).
    Returns counts.
    """
    from core.store_check import gc_paused

    with gc_paused():  # 100k rows: records, copies and lines that all live on
        return _import_results(store, list(records), replace, csv)


def _import_results(store: Store, records: list[dict], replace: bool, csv: str | None) -> dict:
    from core import sources as files
    from core.counting import count_many

    names = {r["source"] for r in records}
    if len(names) != 1:
        raise InputError("an import holds exactly one source")
    (source,) = names
    counts = {"source": source, "added": 0, "updated": 0, "removed": 0, "architectures_added": 0}
    with store.transaction() as tx:
        if is_reference_source(tx, source):
            raise InputError(f"source {source!r} is a reference source and read-only: import your figures "
                             f"under another name (e.g. --source {source}-mine)")
        old: dict[str, tuple[Mapping[str, Any], tuple[int, int]]] = {}  # arch id -> (record, (params, macs))
        manifest = tx.get(SOURCES, source)
        if manifest is not None:
            table = files.load(store.view(), manifest)
            for i, row in enumerate(table.records()):
                old[row["arch_id"]] = (row, (table.columns["params"][i], table.columns["macs"][i]))
        for legacy in tx.find(RESULTS, source=source):  # rows from before sources had files of their own
            tx.remove(RESULTS, legacy["id"])
            old.setdefault(legacy["arch_id"], (legacy, (-1, -1)))
        known = _known_architectures(tx, store, skip=source)
        merged: dict[str, tuple[Mapping[str, Any], tuple[int, int]]] = {} if replace else dict(old)
        for rec in records:
            arch_id = rec["arch_id"]
            previous = old.get(arch_id)
            if previous is None:
                counts["added"] += 1
                counts["architectures_added"] += arch_id not in known
            else:
                counts["updated"] += 1
            merged[arch_id] = (rec, previous[1] if previous and previous[1][0] >= 0 else (-1, -1))
        counts["removed"] = sum(1 for arch_id in old if arch_id not in merged)
        rows = [rec for rec, _ in merged.values()]
        costs = [cost for _, cost in merged.values()]
        uncounted = [i for i, cost in enumerate(costs) if cost[0] < 0]  # exact counts, all at once (core.counting)
        for i, cost in zip(uncounted, count_many([arch_of(rows[i]) for i in uncounted])):
            costs[i] = cost
        files.write(store, tx, files.table_from_records(source, rows, costs), csv=csv)
    return counts


def _known_architectures(tx: Tx, store: Store, skip: str) -> set[str]:
    """Every architecture id the store knows: records, runs, benchmarks, results and the other sources."""
    from core import sources as files

    known: set[str] = {a["id"] for a in tx.all(ARCHITECTURES)}
    for table in (RUNS, BENCHMARKS, RESULTS):
        known.update(str(r["arch_id"]) for r in tx.all(table) if r.get("arch_id"))
    view = store.view()
    for name, manifest in files.manifests(view).items():
        if name != skip:
            known.update(files.load(view, manifest).columns["arch_id"])
    return known


# --------------------------------------------------------------------------- sources


def source_names(store: Store) -> list[str]:
    """Imported sources in the store, then `measured` (and `measured:DEVICE` per device)."""
    from core import sources as files

    names = sorted({r["source"] for r in store.rows(RESULTS)} | set(files.manifests(store)))
    # a device is a source once it has a figure: a failed benchmark makes no empty `measured:DEVICE`
    devices = sorted({str(b["device"]) for b in store.rows("benchmarks") if b.get("device")
                      and b.get("status") == DONE and (b.get("latency_s") is not None or b.get("power_w") is not None)})
    return names + [MEASURED_SOURCE] + [f"{MEASURED_SOURCE}:{d}" for d in devices]


def _stamp(record: dict) -> str:
    return record.get("finished") or record.get("created") or ""


def measured_rows(store: Store, device: str | None = None) -> list[ResultRecord]:
    """The `measured` pseudo-source (see the module docstring), one row per architecture."""
    from core.aggregate import summary

    templates: dict[str, dict] = {}
    done_runs: dict[str, list[dict]] = {}
    for run in store.rows("runs"):
        if run.get("status") == "done" and run.get("accuracy") is not None:
            done_runs.setdefault(run["arch_id"], []).append(run)
            templates.setdefault(run["arch_id"], run)
    # mean +- std over one recipe's distinct seeds only (core.aggregate), never unlike runs
    accuracies = {arch_id: summary(group) for arch_id, group in done_runs.items()}
    latest: dict[str, dict] = {}
    for bench in store.rows("benchmarks"):
        if bench.get("status") != "done" or (device and bench.get("device") != device):
            continue
        if bench.get("latency_s") is None and bench.get("power_w") is None:
            continue
        old = latest.get(bench["arch_id"])
        if old is None or _stamp(bench) >= _stamp(old):
            latest[bench["arch_id"]] = bench
            templates.setdefault(bench["arch_id"], bench)

    rows = []
    # per device: only what was benchmarked there; otherwise anything with a run or a benchmark
    arch_ids = set(latest) if device else set(accuracies) | set(latest)
    # read only: records uncopied; not even read when nothing was measured (100k imported rows)
    archs = {a["id"]: a for a in store.rows("architectures")} if arch_ids else {}
    for arch_id in sorted(arch_ids):
        template = archs.get(arch_id) or templates[arch_id]
        arch = arch_of(template)
        params = archs.get(arch_id, {}).get("params") or count_params(arch)
        acc = accuracies.get(arch_id)
        bench = latest.get(arch_id, {})
        extra: dict[str, Any] = {"seeds": acc["seeds"] if acc else 0}
        if acc:
            extra.update(recipe=acc["recipe"], epochs=acc["epochs"], accuracy_text=acc["text"],
                         other_recipes=acc["other_recipes"])
            if acc["seeds"] > 1:
                extra["accuracy_std"] = acc["accuracy_std"]
        if bench:
            extra.update(
                device=bench.get("device"),
                benchmark=bench["id"],
                batch=bench.get("batch"),
                weights=bench.get("weights"),
                timing=bench.get("timing"),
            )
        source = f"{MEASURED_SOURCE}:{device}" if device else MEASURED_SOURCE
        values = {
            "accuracy": acc["accuracy"] if acc else None,
            "params_m": params / 1e6,
            "latency_s": bench.get("latency_s"),
            "power_w": bench.get("power_w"),
        }
        rows.append(result_record(source, arch, values, extra))
    return rows


def source_rows(store: Store, source: str = DEFAULT_SOURCE) -> list[ResultRecord]:
    """The rows of one source; InputError naming the known sources when it has none."""
    if source == MEASURED_SOURCE or source.startswith(MEASURED_SOURCE + ":"):
        device = source.partition(":")[2] or None
        rows = measured_rows(store, device)
    else:
        from core.store_check import gc_paused

        table = source_table(store, source)
        with gc_paused():  # shallow copies of the records (callers may add keys; nested values are shared, read-only)
            rows = cast(list[ResultRecord], [dict(r) for r in store.rows(RESULTS) if r.get("source") == source])
        if table is not None:
            rows += table.records()
    if not rows:
        known = ", ".join(n for n in source_names(store)) or "none (run `klmtui init`)"
        raise InputError(f"source {source!r} has no results in {store.path}; sources: {known}")
    return sorted(rows, key=_row_order)


def source_table(store: Store, source: str):
    """The `core.sources.SourceTable` of an imported source kept in its own file, else None."""
    from core import sources as files

    manifest = store.get(SOURCES, source)
    return None if manifest is None else files.load(store, manifest)


def architecture_of(store: Store, arch_id: str) -> Mapping[str, Any] | None:
    """The `architectures` record of `arch_id`, else the one an imported source's file describes
    (`SourceTable.architecture`: not sampled, exact counts), else None."""
    from core import sources as files

    record = store.get(ARCHITECTURES, arch_id)
    if record is not None:
        return record
    for manifest in files.manifests(store).values():
        table = files.load(store, manifest)
        row = table.index().get(arch_id)
        if row is not None:
            return table.architecture(row)
    return None


def _row_order(row: Mapping[str, Any]) -> tuple:
    return (row["K"], row["L"], row["M"], -row["channels"], row.get("genotype") or "")


def file_source_front(store: Store, source: str, objectives: Sequence[Any]) -> list[dict] | None:
    """`pareto_front(source_rows(store, source), objectives).front` with `with_derived` figures, for a
    source in its own file, computed on its columns: only the front's rows are built (100k rows).

    None when the columnar path does not apply (not such a source, or an objective that is not a
    stored column or has no value at all): the caller then takes the general path, which also
    words its errors."""
    from core import sources as files
    from core.pareto import plain_front
    from core.report import with_derived

    table = source_table(store, source)
    if table is None or any(r.get("source") == source for r in store.rows(RESULTS)):
        return None
    names = [o.name for o in objectives]
    if not names or len(set(names)) != len(names) or any(n not in files.VALUE_COLUMNS for n in names):
        return None
    import numpy as np

    points = np.column_stack([table.array(n) for n in names])
    if not len(table) or not np.isfinite(points).any(axis=0).all():
        return None
    kept = np.flatnonzero(np.isfinite(points).all(axis=1))
    flags = plain_front(points[kept], [o.sign for o in objectives])
    rows = [table.record(int(i)) for i, flag in zip(kept.tolist(), flags) if flag]
    return [with_derived(r) for r in sorted(rows, key=_row_order)]


def with_exact_params(rows: Iterable[Mapping[str, Any]]) -> list[dict]:
    """The rows with `params_m` recomputed from the exact count (instead of published figures)."""
    return [{**r, "params_m": count_params(arch_of(r)) / 1e6} for r in rows]


def source_note(source: str, exact_params: bool = False) -> str:
    """What a source's figures are, for captions (docs/architecture.md, Figures and the thesis: say which params)."""
    if source.startswith(MEASURED_SOURCE):
        where = f"on {source.partition(':')[2]}" if ":" in source else "on any device"
        return (f"measured: accuracy = mean over done runs, latency/power = latest done benchmark {where}, "
                "params: exact counts")
    if exact_params:
        return "params: exact counts (core.counting)"
    if source == THESIS_SOURCE:
        return "params: as published (rounded to 0.1M); --exact-params for exact counts"
    return "params: as imported"


def export_text(store: Store, source: str, fmt: str, *, front_only: bool = False) -> tuple[str, int]:
    """The results table of `klmtui export` (csv|md|latex) and its row count.

    Every row carries `on_front` (plain 4-objective front over the source's own figures);
    `front_only` keeps the front rows only, the shape of the thesis' Table 1.
    """
    from core.pareto import pareto_front
    from core.report import render

    records = source_rows(store, source)
    result = pareto_front(records)
    on_front = {r["arch_id"] for r in result.front}
    rows: list[dict] = [{**r, "on_front": r["arch_id"] in on_front} for r in records]
    if front_only:
        rows = [r for r in rows if r["on_front"]]
    caption = (f"Source {source}: {'Pareto front rows only. ' if front_only else ''}{result.describe()} "
               f"{source_note(source)}.")
    return render(rows, fmt, caption), len(rows)


def export_file(store: Store, source: str, fmt: str, path: str | Path, *, front_only: bool = False) -> int:
    """`export_text` written to `path` (what `klmtui export -o` and the TUI's export do); the row
    count. An unwritable path is an `InputError` naming it."""
    text, count = export_text(store, source, fmt, front_only=front_only)
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror}") from None
    return count


_SUMMARY_KEYS = ("accuracy", "params_m", "latency_s", "power_w", "batch", "energy_j")
_BENCH_KEYS = ("id", "device", "status", "batch", "latency_s", "power_w", "energy_j", "weights")
_ARCH_KEYS = ("id", "arch", "K", "L", "M", "channels", "genotype", "params", "macs", "in_thesis", "sampled")


def _by_arch(records: Iterable[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for rec in records:
        if rec.get("arch_id"):
            grouped.setdefault(rec["arch_id"], []).append(rec)
    return grouped


def count_status(records: Iterable[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for rec in records:
        status = rec.get("status") or "?"
        counts[status] = counts.get(status, 0) + 1
    return counts


def _summary(row: Mapping[str, Any]) -> dict:
    """`{k: with_derived(row)[k] for k in _SUMMARY_KEYS}` without copying the row (100k rows)."""
    from core.report import batch_of, energy_per_image_j

    power, latency = row.get("power_w"), row.get("latency_s")
    return {"accuracy": row.get("accuracy"), "params_m": row.get("params_m"), "latency_s": latency,
            "power_w": power, "batch": batch_of(row),
            "energy_j": None if power is None or latency is None else energy_per_image_j(row)}


def study_status(store: Store) -> list[dict]:
    """One object per architecture (sampled, or seen in runs/benchmarks/results): its runs,
    benchmarks, mean/best measured accuracy, and results by source with energy per image.

    The shape of `klmtui status --json`. Read-only, like `Store.rows` records: the architectures only
    an imported source knows (100k rows) share one empty `runs` and one empty `benchmarks` object.
    """
    from core.store_check import gc_paused

    with gc_paused():  # 100k rows of new dicts: a quarter of the time went to the cyclic collector
        return _study_status(store)


def _column_summaries(table: Any) -> list[dict]:
    """`_summary(row)` of every row of a `core.sources.SourceTable`, from its columns."""
    from core.report import batch_of, energy_per_image_j

    c = table.columns
    out = []
    for acc, params_m, latency, power, extra in zip(c["accuracy"], c["params_m"], c["latency_s"], c["power_w"],
                                                     c["extra"]):
        batch = energy = None
        if extra:  # a batch in `extra` (as the thesis' rows have) gives energy per image
            row = {"power_w": power, "latency_s": latency, "extra": extra}
            batch = batch_of(row)
            energy = None if power is None or latency is None or not batch else energy_per_image_j(row)
        out.append({"accuracy": acc, "params_m": params_m, "latency_s": latency, "power_w": power, "batch": batch,
                    "energy_j": energy})
    return out


def _imported_only(tables: list[tuple[str, Any]], summaries: dict[str, list[dict]], known: Mapping[str, Any],
                   ) -> list[list[dict]]:
    """Status objects of the architectures only file sources know (e.g. 100k imported rows: no run, no
    benchmark), built on the columns (whose rows are sorted, `SourceTable.in_order`): one sorted list
    per table."""
    seen: set[str] = set()
    lists = []
    # one shared "nothing of ours" per call (read-only, as `Store.rows` records are): 100k entries cost half
    nothing = _no_runs_or_benchmarks()
    several = len(tables) > 1
    for name, table in tables:
        c = table.columns
        entries: list[dict] = []
        append = entries.append
        for arch_id, k, l, m, ch, g, params, macs, summary in zip(
                c["arch_id"], c["K"], c["L"], c["M"], c["channels"], c["genotype"], c["params"], c["macs"],
                summaries[name]):
            if arch_id in known or arch_id in seen:
                continue
            if several:  # every source's figures, in the sources' order (as for the study's own)
                seen.add(arch_id)
                results = {n: summaries[n][j] for n, t in tables if (j := t.index().get(arch_id)) is not None}
            else:
                results = {name: summary}
            append({
                "id": arch_id, "arch": f"{k}-{l}-{m}", "K": k, "L": l, "M": m, "channels": ch, "genotype": g,
                "params": params, "macs": macs, "in_thesis": None, "sampled": False, **nothing, "results": results,
            })
        lists.append(entries)
    return lists


def _study_status(store: Store) -> list[dict]:
    from core import sources as files

    # read only: the records themselves, uncopied (100k imported rows: copying them all cost seconds)
    archs: dict[str, Mapping[str, Any]] = {a["id"]: a for a in store.rows(ARCHITECTURES)}
    runs, benches, results = (_by_arch(store.rows(t)) for t in (RUNS, BENCHMARKS, RESULTS))
    for grouped in (runs, benches, results):
        for arch_id, recs in grouped.items():
            if arch_id not in archs and "K" in recs[0]:
                archs[arch_id] = architecture_record(arch_of(recs[0]), in_thesis=None, sampled=False)
    measured = {r["arch_id"]: with_derived(r) for r in measured_rows(store)}
    # imported sources in their own files (core.sources): read on their columns, no records built
    tables = [(name, files.load(store, m)) for name, m in files.manifests(store).items()]
    summaries = {name: _column_summaries(table) for name, table in tables}
    imported = _imported_only(tables, summaries, archs)
    ours_in = {name: {arch_id: i for i, arch_id in enumerate(table.columns["arch_id"]) if arch_id in archs}
               for name, table in tables}  # rows of the study's own architectures (a scan, not a 100k index)
    out: list[dict[str, Any]] = []
    arch_values = itemgetter(*_ARCH_KEYS)
    for arch_id, arch in archs.items():
        try:
            fields = dict(zip(_ARCH_KEYS, arch_values(arch)))
        except KeyError:
            fields = {k: arch.get(k) for k in _ARCH_KEYS}
        from_files = {name: summaries[name][k] for name, _ in tables if (k := ours_in[name].get(arch_id)) is not None}
        if arch_id not in runs and arch_id not in benches and arch_id not in measured:
            out.append({
                **fields, **_no_runs_or_benchmarks(),
                "results": {**{res["source"]: _summary(res) for res in results.get(arch_id, ())}, **from_files},
            })
            continue
        my_runs = runs.get(arch_id, [])
        my_benches = sorted(benches.get(arch_id, []), key=_stamp)
        done = [r["accuracy"] for r in my_runs if r.get("status") == "done" and r.get("accuracy") is not None]
        by_source = {res["source"]: _summary(res) for res in results.get(arch_id, [])}
        by_source.update(from_files)
        if arch_id in measured:
            by_source[MEASURED_SOURCE] = _summary(measured[arch_id])
        latest = with_derived(my_benches[-1]) if my_benches else None
        ours = (measured.get(arch_id) or {}).get("extra") or {}
        out.append({
            **fields,
            "runs": {"total": len(my_runs), "by_status": count_status(my_runs), "ids": [r["id"] for r in my_runs]},
            # one recipe's distinct seeds (core.aggregate): `accuracy_text` says which, e.g. "97.10+-0.10 (paper x3)"
            "accuracy": (measured.get(arch_id) or {}).get("accuracy") if done else None,
            "accuracy_std": ours.get("accuracy_std", 0.0 if done else None),
            "accuracy_seeds": ours.get("seeds", 0),
            "accuracy_recipe": ours.get("recipe"),
            "accuracy_text": ours.get("accuracy_text"),
            "best_accuracy": max(done) if done else None,
            "benchmarks": {
                "total": len(my_benches),
                "by_status": count_status(my_benches),
                "latest": None if latest is None else {k: latest.get(k) for k in _BENCH_KEYS},
            },
            "results": by_source,
        })
    out.sort(key=_row_order)
    return _merged(out, imported)


def _merged(ours: list[dict], lists: list[list[dict]]) -> list[dict]:
    """The sorted study objects merged into the sorted lists of imported-only ones (`_row_order`).
    One list (the usual case): each of ours is placed by bisection, so 100k keys are not computed."""
    import bisect
    import heapq

    if len(lists) != 1:
        return list(heapq.merge(ours, *lists, key=_row_order)) if lists else ours
    (theirs,) = lists
    out: list[dict] = []
    start = 0
    for entry in ours:
        at = bisect.bisect_left(theirs, _row_order(entry), lo=start, key=_row_order)
        out.extend(theirs[start:at])
        out.append(entry)
        start = at
    out.extend(theirs[start:])
    return out


def _no_runs_or_benchmarks() -> dict:
    """The status fields of an architecture with no run and no benchmark (fresh dicts each time)."""
    return {"runs": {"total": 0, "by_status": {}, "ids": []},
            "accuracy": None, "accuracy_std": None, "accuracy_seeds": 0, "accuracy_recipe": None,
            "accuracy_text": None, "best_accuracy": None,
            "benchmarks": {"total": 0, "by_status": {}, "latest": None}}
