"""The local executor: each run a detached `python -m core.train` process, a queue in the store.

Queue design: a submitted run is `queued` in the store; `start_queued(store)` starts queued runs
while fewer than `max_parallel()` local runs of this host are `running`. It is called by `submit`,
`resume` and `refresh`, and by every run process as it finishes, so the queue drains with no
scheduler daemon to keep alive. A run killed with -9 cannot start its successor; the next
`refresh` (the TUI calls it periodically, `klmtui status`/`train`/`resume` too) finds it
`interrupted` and starts the next run. `start_queued` holds a lock (`runs/.queue.lock`
beside the store) so two callers never start the same run twice.

The limit: `$KLMTUI_MAX_PARALLEL`, else one run per NVIDIA GPU (each pinned with
CUDA_VISIBLE_DEVICES, recorded as `gpu`), else one on the CPU.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Any

from core import settings
from core.jobs.process import is_alive, spawn_detached, start_time

QUEUE_LOCK = ".queue.lock"
STDOUT = "stdout.txt"


def gpu_count() -> int:
    """NVIDIA GPUs visible on this host, without importing torch (the CLI must stay fast)."""
    visible = settings.cuda_visible_devices()
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    gpus = Path("/proc/driver/nvidia/gpus")
    return len(list(gpus.iterdir())) if gpus.is_dir() else 0


def max_parallel() -> int:
    return settings.max_parallel() or max(1, gpu_count())


def host() -> str:
    return socket.gethostname()


def run_command(store, run_id: str) -> list[str]:
    return [sys.executable, "-m", "core.train", "--run-id", run_id, "--store", str(Path(store.path).resolve())]


def mark_vanished(store) -> list[str]:
    """Runs of this host recorded `running` whose process is gone become `interrupted`."""
    from core.store import now_iso

    def vanished(find) -> list[dict]:
        # queued Ray runs have a live driver process too; queued local runs have no pid yet
        candidates = find("runs", status="running") + [r for r in find("runs", status="queued") if r.get("pid")]
        return [rec for rec in candidates
                if rec.get("host") in (None, host())
                and not (rec.get("pid") is None and rec.get("launching"))  # the launcher has not answered yet
                and not is_alive(rec.get("pid"), rec["id"], rec.get("pid_start"))]

    if not vanished(store.find):  # read paths (status, pareto) take no lock when all is well
        return []
    from core import nospace

    gone = []
    with store.transaction() as tx:
        for rec in vanished(tx.find):
            run_dir = store.resolve(rec.get("run_dir") or f"runs/{rec['id']}")
            if nospace.has_marker(run_dir):  # it ran out of disk and could not say so itself
                tx.update("runs", rec["id"], status="failed", pid=None, finished=now_iso(),
                          error=nospace.message(run_dir))
            else:
                tx.update("runs", rec["id"], status="interrupted", pid=None, finished=now_iso(),
                          error=rec.get("error") or "the run's process vanished (killed, crashed or rebooted)")
            gone.append(rec["id"])
    return gone


def start_queued(store) -> list[str]:
    """Start queued local runs up to the concurrency limit; returns the ids started."""
    from filelock import FileLock

    from core.store import now_iso

    lock_dir = store.folder / "runs"
    lock_dir.mkdir(parents=True, exist_ok=True)
    started = []
    with FileLock(str(lock_dir / QUEUE_LOCK), timeout=120):
        mark_vanished(store)
        runs = store.find("runs", executor="local")
        running = [r for r in runs if r.get("status") == "running" and r.get("host") in (None, host())]
        queued = sorted((r for r in runs if r.get("status") == "queued"), key=lambda r: (r.get("queue_seq") or 0, r.get("created") or "", r["id"]))
        free = max_parallel() - len(running)
        gpus = gpu_count()
        busy = {r.get("gpu") for r in running}
        for rec in queued[:max(0, free)]:
            gpu = next((g for g in range(gpus) if g not in busy), None) if gpus else None
            busy.add(gpu)
            store.update("runs", rec["id"], status="running", host=host(), pid=None, gpu=gpu, launching=True,
                         started=rec.get("started") or now_iso())
            run_dir = store.resolve(rec["run_dir"])
            run_dir.mkdir(parents=True, exist_ok=True)
            env = {"CUDA_VISIBLE_DEVICES": str(gpu)} if gpu is not None else {}
            try:
                pid = spawn_detached(run_command(store, rec["id"]), run_dir / STDOUT, store.folder, env)
            except Exception as exc:
                store.update("runs", rec["id"], status="failed", launching=False, error=str(exc), finished=now_iso())
                continue
            with store.transaction() as tx:
                current = tx.get("runs", rec["id"]) or {}
                fields: dict[str, Any] = {"launching": False}
                if current.get("pid") is None and current.get("status") == "running":
                    fields.update(pid=pid, pid_start=start_time(pid))
                tx.update("runs", rec["id"], **fields)
            started.append(rec["id"])
    return started
