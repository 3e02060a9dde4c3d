"""Training jobs: submit, cancel, resume and watch runs, locally or on a Ray cluster.

The functions here are what the CLI and the TUI call; they never block on training:
- `submit(store, arch, config, executor="local", seeds=1, address=None, storage=None) -> [run ids]`
- `cancel(store, run_id)`, `resume(store, run_id)` -> the updated run record
- `refresh(store) -> [ids marked interrupted]` (also starts queued local runs in freed slots)
- `metrics(store, run_id) -> [per-epoch rows]`, `progress(store, run_id) -> dict | None`,
  `log_tail(store, run_id, n) -> [lines]`, `seed_summary(records) -> (mean, std, n)`.

Every run, whatever its executor, has one local process recorded as `pid` (the training process
itself, or the Ray driver that submitted it), so cancel = SIGTERM its process group, and a run
whose process vanished is `interrupted` and resumable from its last checkpoint. Cancel returns
only once that process is gone; a run keeps `pid`/`pid_start` after it ended, so whoever waited
for its final status can wait for its process too (`wait_exited`), and `resume` never starts a
second process beside one still exiting.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from core.arch import Arch, parse_arch
from core.errors import InputError, OperationFailed
from core.records import RunRecord
from core.schema import ACTIVE_STATUSES, DONE, FINAL_STATUSES

EXECUTORS = ("local", "ray")


def _arch(arch: Arch | str) -> Arch:
    return arch if isinstance(arch, Arch) else parse_arch(arch)


def ensure_architecture(store, arch: Arch) -> None:
    """An architecture trained but never sampled is added (sampled=False, in_thesis None)."""
    from core.study import architecture_record

    with store.transaction() as tx:
        if tx.get("architectures", arch.id) is None:
            tx.insert("architectures", architecture_record(arch, in_thesis=None, sampled=False))


def submit(store, arch: Arch | str, config: Any, executor: str = "local", *, seeds: int = 1,
           address: str | None = None, storage: str | None = None, auto_seed: bool | None = None) -> list[str]:
    """Record `seeds` runs of `arch` and hand them to `executor`.

    Seeds: config.seed .. +seeds-1 when a seed is given; otherwise (`auto_seed`, the default for a
    config dict without "seed") the lowest seeds no run of this architecture and recipe used yet,
    so training an architecture again adds seeds instead of repeating seed 0 (core.aggregate).
    The data folder is recorded resolved, whatever its origin (--data, $KLMTUI_DATA, the download
    cache), so `resume` works in a shell without $KLMTUI_DATA."""
    from core.models import resolve_genotype
    from core.store import new_id, now_iso
    from core.train import TrainConfig, make_config

    arch = _arch(arch)
    resolve_genotype(arch.genotype)  # an unknown genotype is bad input, before anything is written
    cfg = config if isinstance(config, TrainConfig) else make_config(**(config or {}))
    if executor not in EXECUTORS:
        raise InputError(f"unknown executor {executor!r} (known: {', '.join(EXECUTORS)})")
    from core.limits import check_seeds

    check_seeds(seeds)
    if executor == "ray":
        from core.jobs.ray_executor import check_options

        address, storage = check_options(address, storage)
    from core.aggregate import next_seeds, profile_label, recipe_key
    from core.data import prepare_dataset, resolve_data_dir
    from core.limits import MAX_SEED

    prepare_dataset(cfg.data)  # a missing folder or failed download: one clear error, nothing written
    base = dict(cfg.to_dict(), data=str(resolve_data_dir(cfg.data)[0].expanduser().resolve()))
    label = profile_label(base)  # what it runs: `paper` on a subset is `custom`
    if auto_seed is None:
        auto_seed = not isinstance(config, TrainConfig) and (config or {}).get("seed") is None
    ensure_architecture(store, arch)
    group = new_id("g-")
    ids = []
    with store.transaction() as tx:
        if auto_seed:
            recipe = recipe_key({"config": base, "epochs": cfg.epochs, "genotype": arch.genotype})
            run_seeds = next_seeds(tx.find("runs", arch_id=arch.id), recipe, seeds)
        else:
            run_seeds = [cfg.seed + i for i in range(seeds)]
        if run_seeds[-1] > MAX_SEED:
            raise InputError(f"seeds up to {run_seeds[-1]} exceed {MAX_SEED}: give a lower --seed")
        for i, seed in enumerate(run_seeds):
            run_id = new_id("t-")
            run_cfg = TrainConfig.from_dict(dict(base, seed=seed))
            tx.insert("runs", {
                "id": run_id, "arch_id": arch.id, "arch": arch.triple, "K": arch.K, "L": arch.L, "M": arch.M,
                "channels": arch.channels, "genotype": arch.genotype, "seed": run_cfg.seed,
                "profile": label, "epochs": run_cfg.epochs, "epoch": 0, "status": "queued",
                "accuracy": None, "best_accuracy": None, "checkpoint": None, "executor": executor, "pid": None,
                "host": None, "created": now_iso(), "started": None, "finished": None, "error": None,
                "config": run_cfg.to_dict(), "run_dir": f"runs/{run_id}", "group": group, "seeds": seeds,
                "address": address, "storage": storage, "attempts": 0, "queue_seq": time.time_ns() + i,
            })
            ids.append(run_id)
    for run_id in ids:
        store.run_dir(run_id)
    _dispatch(store, ids)
    return ids


def _dispatch(store, ids: list[str]) -> None:
    from core.jobs import local

    records = [store.get("runs", i) for i in ids]
    if any(r and r["executor"] == "local" for r in records):
        local.start_queued(store)
    ray_ids = [r["id"] for r in records if r and r["executor"] == "ray"]
    if ray_ids:
        from core.jobs.ray_executor import start_drivers

        start_drivers(store, ray_ids)


def _record(store, run_id: str) -> RunRecord:
    rec = store.get("runs", run_id)
    if rec is None:
        raise InputError(f"no training run {run_id!r} in {store.path}")
    return rec


LAUNCH_WAIT_S = 90.0  # a run being started: how long cancel waits for its launcher to report the pid
RAY_GRACE_S = 20.0  # a Ray driver cancels its task on the cluster before it exits


def _launched(store, rec: RunRecord) -> RunRecord:
    """The record once its launcher has answered (`launching`: claimed, pid not known yet)."""
    deadline = time.monotonic() + LAUNCH_WAIT_S
    while rec.get("launching") and rec.get("pid") is None and time.monotonic() < deadline:
        time.sleep(0.05)
        rec = _record(store, rec["id"])
    return rec


def cancel(store, run_id: str, *, warn: Callable[[str], None] | None = None) -> dict:
    """Stop a queued or running run; its checkpoint stays. Returns once its process is gone.

    A run with a process (the training process, or a Ray run's driver) gets SIGTERM on its process
    group; cancel waits for it to exit (up to `STOP_GRACE_S`, then SIGKILL of the group, said once
    through `warn`), and only then records `cancelled`: a `resume` right after it can never start
    a second process beside a dying one. A run that finished meanwhile stays `done`."""
    from core.jobs.process import ALIVE, KILLED, STOP_GRACE_S, stop, stop_message
    from core.store import now_iso

    rec = _launched(store, _record(store, run_id))
    if rec["status"] in FINAL_STATUSES:
        raise InputError(f"run {run_id} is already {rec['status']}")
    pid = rec.get("pid")
    if pid:
        grace = RAY_GRACE_S if rec.get("executor") == "ray" else STOP_GRACE_S
        outcome = stop(pid, run_id, grace, rec.get("pid_start"))
        if outcome == ALIVE:
            raise OperationFailed(f"run {run_id}: process {pid} did not stop, even after SIGKILL")
        if outcome == KILLED and warn is not None:
            warn(stop_message(f"run {run_id}", pid, grace))
    with store.transaction() as tx:
        current = tx.get("runs", run_id) or rec
        if current.get("status") != DONE:  # it may have finished its last epoch as the signal came
            tx.update("runs", run_id, status="cancelled", pid=None, finished=current.get("finished") or now_iso())
    from core.jobs import local

    local.start_queued(store)
    return store.get("runs", run_id)


def wait_exited(store, run_ids: list[str], timeout_s: float | None = None) -> list[str]:
    """Wait until the processes recorded for these runs (pid + pid_start; a run keeps them after it
    ended) have exited: a run writes its final status a moment before its process is gone. The ids
    whose process still runs after `timeout_s` (default `STOP_GRACE_S`) each."""
    from core.jobs.local import host
    from core.jobs.process import STOP_GRACE_S, wait_gone

    still = []
    for run_id in run_ids:
        rec = store.get("runs", run_id) or {}
        if not rec.get("pid") or rec.get("host") not in (None, host()):
            continue  # no process recorded, or one on another machine
        if not wait_gone(rec["pid"], run_id, rec.get("pid_start"), STOP_GRACE_S if timeout_s is None else timeout_s):
            still.append(run_id)
    return still


def resume(store, run_id: str, *, data: str | None = None) -> dict:
    """Continue an interrupted, cancelled or failed run from its last checkpoint.

    `data`: the CIFAR-10 folder to continue with instead of the recorded one (checked first)."""
    from core.train import load_latest_checkpoint

    rec = _record(store, run_id)
    if rec["status"] in ACTIVE_STATUSES:
        raise InputError(f"run {run_id} is {rec['status']}: nothing to resume")
    if rec["status"] == DONE:
        raise InputError(f"run {run_id} is done ({rec.get('epoch')} of {rec.get('epochs')} epochs)")
    if wait_exited(store, [run_id]):  # it ended a moment ago and its process is still finishing
        raise InputError(f"run {run_id} is {rec['status']} but its process {rec.get('pid')} has not exited yet: "
                         "resume it once it has")
    # a torn newest checkpoint falls back to the one before (a warning); both corrupt: one clear error now
    latest = load_latest_checkpoint(checkpoint_dir(store, rec))
    fields: dict[str, Any] = {"warning": latest[2] if latest else None}
    if data is not None:
        from core.data import prepare_dataset, resolve_data_dir

        prepare_dataset(data)  # a folder without CIFAR-10: one line, nothing changed
        fields["config"] = {**(rec.get("config") or {}), "data": str(resolve_data_dir(data)[0].resolve())}
    from core import nospace

    nospace.clear_marker(checkpoint_dir(store, rec))
    store.update("runs", run_id, status="queued", error=None, finished=None, pid=None,
                 resumes=int(rec.get("resumes") or 0) + 1, queue_seq=time.time_ns(), **fields)
    _dispatch(store, [run_id])
    return store.get("runs", run_id)


def refresh(store) -> list[str]:
    """Mark runs whose process vanished `interrupted`; start queued local runs in free slots."""
    from core.jobs import local

    if not store.exists():
        return []
    gone = local.mark_vanished(store)
    if any(r.get("executor") == "local" for r in store.find("runs", status="queued")):
        local.start_queued(store)
    return gone


def checkpoint_dir(store, rec: Mapping[str, Any]) -> Path:
    """Where the run's checkpoints live: the run folder, or `<storage>/runs/<id>` on Ray."""
    if rec.get("executor") == "ray" and rec.get("storage"):
        return Path(rec["storage"]) / "runs" / rec["id"]
    return store.resolve(rec.get("run_dir") or f"runs/{rec['id']}")


def metrics(store, run_id: str) -> list[dict]:
    """The per-epoch rows of `metrics.jsonl` (epoch, loss, train_acc, test_acc, lr, seconds, ...)."""
    from core.train import METRICS, read_jsonl

    return read_jsonl(store.run_dir(run_id) / METRICS)


def progress(store, run_id: str) -> dict | None:
    """The live state of the current epoch (`progress.json`), or None before the first batch (or a
    torn write). Reads only: the run folder is never created (a deleted run's folder stays deleted)."""
    from core.runs import folder
    from core.train import PROGRESS

    try:
        state = json.loads((folder(store, run_id) / PROGRESS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def log_tail(store, run_id: str, n: int = 20) -> list[str]:
    """The last `n` lines of the run's `log.txt` (and of its process output if the log is empty)."""
    from core.jobs.local import STDOUT
    from core.train import LOG

    lines: list[str] = []
    for name in (LOG, STDOUT):
        try:
            lines = (store.run_dir(run_id) / name).read_text(errors="replace").splitlines()
        except OSError:
            continue
        if lines:
            break
    return lines[-n:] if n else lines


def seed_summary(records: list[dict]) -> tuple[float | None, float | None, int]:
    """(mean, sample std, n) over the done runs among `records` (of one architecture) that share a
    recipe and have distinct seeds: the representative group of `core.aggregate.seed_groups`."""
    from core.aggregate import seed_groups

    groups = seed_groups(records)
    if not groups:
        return None, None, 0
    return groups[0].mean, groups[0].std, groups[0].n
