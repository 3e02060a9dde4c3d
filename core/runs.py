"""Managing what the study has run: list, inspect, delete and compare training runs and benchmarks.

The CLI (`klmtui runs / show / rm / compare`) and the TUI (details and compare screens) call these
functions; they read and write the store through `core.store.Store` and the run folders beside it
(`runs/<id>/`). Nothing here starts or stops a job: deleting refuses a record that is still active
(pending, queued, running), so a live process never loses its record under it.

- `list_records(store, arch=, status=, kind=)`: training runs (`t-...`, kind `train`) and benchmarks
  (`b-...`, kind `bench`) as flat rows, oldest first.
- `describe(store, id)`: the record, its configuration, per-epoch metrics, the log tail and the files
  of its run folder.
- `remove(store, ids)`: delete records and their run folders (all or nothing: one active or unknown
  id and nothing is removed).
- `resolve_items(store, refs)`: what `compare` compares: a run or benchmark id, or an architecture
  (its latest done run and latest done benchmark); `figures(item)` and `differences(items)` the table.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from core.errors import InputError
from core.schema import ACTIVE_STATUSES, BENCHMARKS, DONE, RUNS, STATUSES

KINDS = {"train": RUNS, "bench": BENCHMARKS}
KIND_OF_TABLE = {table: kind for kind, table in KINDS.items()}
LOG_FILES = ("log.txt", "stdout.txt", "agent.log", "process.log")


def table_of(record_id: str) -> str | None:
    """`t-...` is a training run, `b-...` a benchmark; anything else is not a run id."""
    if record_id.startswith("t-"):
        return RUNS
    if record_id.startswith("b-"):
        return BENCHMARKS
    return None


def find(store, record_id: str) -> tuple[str, dict]:
    """(table, record) of a run or benchmark id; an unknown id is bad input."""
    tables = [table_of(record_id)] if table_of(record_id) else [RUNS, BENCHMARKS]
    for table in tables:
        if table is None:
            continue
        record = store.get(table, record_id)
        if record is not None:
            return table, record
    raise InputError(f"no training run or benchmark {record_id!r} in {store.path} (klmtui runs lists them)")


def _arch_filter(arch: str | None):
    """`6-6-6@36` matches that architecture; `6-6-6` every channel count of it."""
    if not arch:
        return lambda rec: True
    from core.arch import parse_arch

    text = arch.strip()
    if "@" in text:
        wanted = parse_arch(text).id
        return lambda rec: rec.get("arch_id") == wanted
    triple = parse_arch(text, channels=1).triple  # any channel count: only the triple is compared
    return lambda rec: rec.get("arch") == triple or str(rec.get("arch_id", "")).split("@")[0] == triple


def row(table: str, rec: dict) -> dict:
    """One line of `klmtui runs`: the fields both kinds share, then each kind's headline figures."""
    return {
        "id": rec["id"], "kind": KIND_OF_TABLE[table], "arch_id": rec.get("arch_id"), "status": rec.get("status"),
        "where": rec.get("device") if table == BENCHMARKS else rec.get("executor"),
        "created": rec.get("created"), "finished": rec.get("finished"),
        "epoch": rec.get("epoch") if table == RUNS else None, "epochs": rec.get("epochs") if table == RUNS else None,
        "accuracy": rec.get("accuracy") if table == RUNS else None,
        "latency_s": rec.get("latency_s") if table == BENCHMARKS else None,
        "power_w": rec.get("power_w") if table == BENCHMARKS else None,
        "error": rec.get("error"),
    }


def list_records(store, *, arch: str | None = None, status: str | None = None, kind: str | None = None) -> list[dict]:
    """Runs and benchmarks as `row()`s, oldest first; filters are checked (a typo is bad input)."""
    if status is not None and status not in STATUSES:
        raise InputError(f"unknown status {status!r}; choose from: {', '.join(STATUSES)}")
    if kind is not None and kind not in KINDS:
        raise InputError(f"unknown kind {kind!r}; choose from: {', '.join(KINDS)}")
    keep = _arch_filter(arch)
    tables = [KINDS[kind]] if kind else [RUNS, BENCHMARKS]
    rows = [row(t, r) for t in tables for r in store.all(t)
            if keep(r) and (status is None or r.get("status") == status)]
    return sorted(rows, key=lambda r: (r["created"] or "", r["id"]))


def folder(store, record_id: str) -> Path:
    """The run folder of a record (not created: `Store.run_dir` would make it)."""
    return store.folder / "runs" / record_id


def files(store, record_id: str) -> list[dict]:
    """The files of a run folder: name (relative), bytes."""
    root = folder(store, record_id)
    if not root.is_dir():
        return []
    return [{"name": str(p.relative_to(root)), "bytes": p.stat().st_size}
            for p in sorted(root.rglob("*")) if p.is_file()]


def log_lines(store, record_id: str, n: int | None = 20) -> list[str]:
    """The last `n` lines (all with n=None) of the first non-empty log of the run folder."""
    root = folder(store, record_id)
    for name in LOG_FILES:
        try:
            lines = (root / name).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        if lines:
            return lines if not n else lines[-n:]
    return []


def metrics(store, record_id: str) -> list[dict]:
    """Per-epoch rows of a training run (empty for a benchmark or a run that has not finished an epoch)."""
    from core.train import METRICS, read_jsonl

    path = folder(store, record_id) / METRICS
    return read_jsonl(path) if path.is_file() else []


def describe(store, record_id: str, log_n: int | None = 20) -> dict:
    """Everything `klmtui show ID` prints: kind, record, config, metrics, log tail, files."""
    table, rec = find(store, record_id)
    config = rec.get("config") if table == RUNS else rec.get("options")
    return {"id": record_id, "kind": KIND_OF_TABLE[table], "record": rec, "config": config or {},
            "metrics": metrics(store, record_id) if table == RUNS else [],
            "log": log_lines(store, record_id, log_n), "folder": str(folder(store, record_id)),
            "files": files(store, record_id)}


def remove(store, record_ids: Sequence[str]) -> list[str]:
    """Delete the records and their run folders. All or nothing: an unknown id or an active record
    (pending, queued, running: cancel it first) is refused before anything is removed."""
    if not record_ids:
        raise InputError("name at least one run or benchmark id (klmtui runs lists them)")
    found = [find(store, i) for i in dict.fromkeys(record_ids)]
    busy = [f"{rec['id']} ({rec.get('status')})" for _, rec in found if rec.get("status") in ACTIVE_STATUSES]
    if busy:
        raise InputError(f"refusing to delete what is still active: {', '.join(busy)}; cancel it first (klmtui cancel ID)")
    with store.transaction() as tx:
        for table, rec in found:
            tx.remove(table, rec["id"])
    runs_root = (store.folder / "runs").resolve()
    for _, rec in found:
        path = folder(store, rec["id"]).resolve()
        if path.parent == runs_root and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
    return [rec["id"] for _, rec in found]


# ---------------------------------------------------------------------------- compare


@dataclass
class Item:
    """One column of a comparison: an architecture with (at most) one run and one benchmark."""

    ref: str
    arch_id: str
    run: dict | None = None
    bench: dict | None = None
    arch: dict = field(default_factory=dict)
    curve: list[dict] = field(default_factory=list)  # the run's per-epoch metrics
    latencies: list[float] = field(default_factory=list)  # the benchmark's timed batches, seconds
    power: list[float] = field(default_factory=list)  # its board power samples, watts

    @property
    def label(self) -> str:
        ids = [r["id"] for r in (self.run, self.bench) if r]
        return f"{self.arch_id} ({', '.join(ids)})" if ids else self.arch_id


def _latest_done(records: Iterable[dict]) -> dict | None:
    done = [r for r in records if r.get("status") == DONE]
    return max(done, key=lambda r: (r.get("finished") or "", r["id"])) if done else None


def resolve_items(store, refs: Sequence[str]) -> list[Item]:
    """`compare`'s arguments: run/benchmark ids, or architectures (their latest done run and benchmark)."""
    from core.arch import parse_arch
    from core.study import architecture_of

    if len(refs) < 2:
        raise InputError("compare needs at least two runs, benchmarks or architectures")
    items = []
    for ref in refs:
        if table_of(ref):
            table, rec = find(store, ref)
            arch_id = rec.get("arch_id") or "?"
            item = Item(ref, arch_id, run=rec) if table == RUNS else Item(ref, arch_id, bench=rec)
        else:
            try:
                arch_id = parse_arch(ref).id
            except InputError:
                raise InputError(f"{ref!r} is neither a run/benchmark id (t-..., b-...) nor an architecture (K-L-M@C)") from None
            run = _latest_done(store.find(RUNS, arch_id=arch_id))
            bench = _latest_done(store.find(BENCHMARKS, arch_id=arch_id))
            item = Item(ref, arch_id, run=run, bench=bench)
        item.arch = dict(architecture_of(store, item.arch_id) or {})
        if not item.arch and item.run is None and item.bench is None:
            raise InputError(f"no architecture {item.arch_id!r} in {store.path}")
        if item.run:
            item.curve = metrics(store, item.run["id"])
        items.append(item)
    return items


FIGURES = (  # (key, label): the rows of the differences table, in order
    ("arch_id", "architecture"), ("params_m", "params (M)"), ("macs_m", "MACs (M)"), ("run", "run"),
    ("profile", "profile"), ("epochs", "epochs"), ("seed", "seed"), ("accuracy", "accuracy %"),
    ("best_accuracy", "best accuracy %"), ("train_s", "training time (s)"), ("bench", "benchmark"),
    ("device", "device"), ("weights", "weights"), ("protocol", "protocol"), ("batch", "batch"),
    ("latency_s", "latency s/batch (median)"), ("latency_p90_s", "latency p90 s"), ("images_per_s", "images/s"),
    ("power_w", "power W"), ("energy_mj", "energy mJ/img"),
)


def figures(item: Item) -> dict[str, Any]:
    """The item's values for every row of FIGURES (None where it has none)."""
    run, bench, arch = item.run or {}, item.bench or {}, item.arch
    params = arch.get("params")
    macs = arch.get("macs")
    energy = bench.get("energy_j")
    seconds = sum(float(m.get("seconds") or 0) for m in item.curve) or None
    return {
        "arch_id": item.arch_id, "params_m": None if params is None else params / 1e6,
        "macs_m": None if macs is None else macs / 1e6, "run": run.get("id"), "profile": run.get("profile"),
        "epochs": run.get("epochs"), "seed": run.get("seed"), "accuracy": run.get("accuracy"),
        "best_accuracy": run.get("best_accuracy"), "train_s": seconds, "bench": bench.get("id"),
        "device": bench.get("device"), "weights": bench.get("weights"), "protocol": bench.get("protocol"),
        "batch": bench.get("batch"), "latency_s": bench.get("latency_s"), "latency_p90_s": bench.get("latency_p90_s"),
        "images_per_s": bench.get("images_per_s"), "power_w": bench.get("power_w"),
        "energy_mj": None if energy is None else energy * 1000.0,
    }


def differences(items: Sequence[Item], only_different: bool = False) -> list[tuple[str, str, list[Any], bool]]:
    """(key, label, one value per item, do they differ) for each row of FIGURES that any item has
    (`only_different`: the rows that differ, and always the architecture)."""
    table = [figures(i) for i in items]
    out = []
    for key, label in FIGURES:
        values = [t[key] for t in table]
        if all(v is None for v in values):
            continue
        differ = len({repr(v) for v in values}) > 1
        if differ or not only_different or key == "arch_id":
            out.append((key, label, values, differ))
    return out


def quantiles(values: Sequence[float], qs: Sequence[float] = (0.0, 10.0, 50.0, 90.0, 100.0)) -> list[float | None]:
    """Percentiles of a sample (None for an empty one): min, p10, median, p90, max, computed as
    `core.latency` computes the benchmark summary (so the median here is the summary's)."""
    from core.latency import percentile

    data = list(values)
    return [percentile(data, q) if data else None for q in qs]
