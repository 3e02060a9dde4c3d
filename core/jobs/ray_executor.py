"""The Ray executor: each run a Ray task (one GPU where the cluster has GPUs), watched by a driver.

Per run, a detached local driver process (`python -m core.jobs.ray_executor --run-id ID --store
PATH`, recorded as the run's `pid`) connects to the cluster, creates a small progress actor,
submits the training task and copies what the actor collects into the run folder and the store
(`progress.json`, `metrics.jsonl`, epoch/accuracy/status). So `cancel`, `refresh` and `resume`
work as for local runs: SIGTERM to the driver makes it `ray.cancel` the task; a vanished driver
leaves the run `interrupted`.

The task trains into `<storage>/runs/<id>/` (a folder every node sees) and always resumes from the
checkpoint there, so when Ray retries a task whose worker died (`max_retries`), the retry
continues from the last completed epoch. Ray is imported only here, lazily (extra `[ray]`).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from core import settings
from core.errors import InputError, OperationFailed

MAX_RETRIES = 3
POLL_S = 0.3


def check_options(address: str | None, storage: str | None) -> tuple[str, str]:
    """Validate `--address`/`--storage` for a Ray submission (InputError on a missing one)."""
    address = address or settings.ray_address()
    if not address:
        raise InputError("--executor ray needs --address HOST:PORT (or $RAY_ADDRESS)")
    if not storage:
        raise InputError("--executor ray needs --storage DIR, a folder every node of the cluster sees")
    try:
        import ray  # noqa: F401
    except ImportError:
        raise OperationFailed("the Ray executor needs ray: pip install 'klmtui[ray]'") from None
    path = Path(storage).expanduser().resolve()
    try:
        (path / "runs").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"storage folder {path} is not writable: {exc.strerror}") from None
    return address, str(path)


def start_drivers(store, ids: list[str]) -> list[int]:
    """Start one detached driver per run (no local queue: Ray schedules by resources)."""
    from core.jobs.local import STDOUT, host
    from core.jobs.process import spawn_detached
    from core.store import now_iso

    pids = []
    for run_id in ids:
        store.update("runs", run_id, status="queued", host=host(), pid=None, launching=True)
        cmd = [sys.executable, "-m", "core.jobs.ray_executor", "--run-id", run_id, "--store",
               str(Path(store.path).resolve())]
        run_dir = store.run_dir(run_id)
        try:
            pid = spawn_detached(cmd, run_dir / STDOUT, store.folder)
        except OperationFailed as exc:
            store.update("runs", run_id, status="failed", launching=False, error=str(exc), finished=now_iso())
            continue
        with store.transaction() as tx:
            current = tx.get("runs", run_id) or {}
            tx.update("runs", run_id, launching=False, pid=current.get("pid") or pid)
        pids.append(pid)
    return pids


class ProgressBuffer:
    """The actor between a task and its driver: the task appends events, the driver drains them."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def report(self, event: dict) -> None:
        self.events.append(event)

    def drain(self) -> list[dict]:
        out, self.events = self.events, []
        return out


def train_task(arch_id: str, config: dict, run_dir: str, actor) -> dict:
    """What runs on a Ray worker: `core.train.train` reporting to the actor (resumes if checkpointed)."""
    import ray

    from core.arch import parse_arch
    from core.train import TrainConfig, train

    threads = settings.torch_threads()
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    node = ray.get_runtime_context().get_node_id()
    gpus = ray.get_gpu_ids()

    def report(event: dict) -> None:
        if event.get("event") == "start":
            event = dict(event, worker_pid=os.getpid(), node=node, gpu_ids=[str(g) for g in gpus],
                         cuda_visible_devices=settings.cuda_visible_devices())
        actor.report.remote(event)

    return train(parse_arch(arch_id), TrainConfig.from_dict(config), Path(run_dir), report)


class Driver:
    """Submits one run's task and mirrors its events into the store and the local run folder."""

    def __init__(self, store, run_id: str):
        self.store, self.run_id = store, run_id
        self.record = store.get("runs", run_id)
        self.local_dir = store.run_dir(run_id)
        self.remote_dir = Path(self.record["storage"]) / "runs" / run_id
        self.cancelled = False

    def _on_sigterm(self, signum, frame) -> None:
        self.cancelled = True

    def run(self) -> int:
        import ray

        from core.store import now_iso
        from core.train import LOG, METRICS, append_jsonl, rewrite_metrics, write_progress

        signal.signal(signal.SIGTERM, self._on_sigterm)
        store, run_id = self.store, self.run_id
        from core.jobs.process import identity

        store.update("runs", run_id, **identity(os.getpid()), started=self.record.get("started") or now_iso())
        self.remote_dir.mkdir(parents=True, exist_ok=True)
        mirror = self.local_dir.resolve() != self.remote_dir.resolve()
        log = _append_line(self.local_dir / LOG) if mirror else (lambda text: None)
        ray.init(address=self.record["address"], namespace="klmtui", log_to_driver=False,
                 logging_level="WARNING", configure_logging=False)
        gpus = ray.cluster_resources().get("GPU", 0)
        actor = ray.remote(num_cpus=0)(ProgressBuffer).remote()
        task = ray.remote(train_task).options(num_gpus=1 if gpus > 0 else 0, num_cpus=1, max_retries=MAX_RETRIES,
                                             retry_exceptions=False, name=f"klmtui-train-{run_id}")
        ref = task.remote(self.record["arch_id"], self.record["config"], str(self.remote_dir), actor)
        log(f"submitted to Ray at {self.record['address']} ({'1 GPU' if gpus else 'CPU'}), storage {self.remote_dir}")
        status, error, attempts = "failed", None, int(self.record.get("attempts") or 0)
        while True:
            ready, _ = ray.wait([ref], timeout=POLL_S)
            for event in ray.get(actor.drain.remote()):
                kind = event.get("event")
                if kind == "start":
                    attempts += 1
                    store.update("runs", run_id, status="running", attempts=attempts, worker_pid=event.get("worker_pid"),
                                 worker_node=event.get("node"), gpu_ids=event.get("gpu_ids"), epoch=event["epoch"],
                                 device=event.get("device"), recipe=event.get("recipe"))
                    if mirror:
                        rewrite_metrics(self.local_dir / METRICS, event["epoch"])
                    log(f"attempt {attempts} on worker pid {event.get('worker_pid')} "
                        f"{'resumed after epoch ' + str(event['epoch']) if event.get('resumed') else 'started'}")
                elif kind == "progress":
                    write_progress(self.local_dir, event)
                elif kind == "epoch":
                    row = {k: v for k, v in event.items() if k not in ("event", "epochs", "best_accuracy", "checkpoint")}
                    if mirror:
                        append_jsonl(self.local_dir / METRICS, row)
                        log(f"epoch {row['epoch']}/{event['epochs']} loss {row['loss']:.4f} test {row['test_acc']:.2f}%")
                    store.update("runs", run_id, epoch=event["epoch"], accuracy=event["test_acc"],
                                 best_accuracy=event["best_accuracy"], checkpoint=event["checkpoint"])
                    write_progress(self.local_dir, dict(event, phase="epoch done", batch=None))
            if self.cancelled:
                ray.cancel(ref, force=True)
                status = "cancelled"
                log("cancelled")
                break
            if ready:
                try:
                    summary = ray.get(ref)
                    store.update("runs", run_id, accuracy=summary["accuracy"], best_accuracy=summary["best_accuracy"],
                                 epoch=summary["epoch"], checkpoint=summary["checkpoint"])
                    status = "done"
                except Exception as exc:  # the task's error (after Ray's retries)
                    error = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                    log(f"failed: {error}")
                break
        if status == "cancelled":  # SIGTERM: `klmtui cancel` records it once this driver has exited
            return 0
        # pid/pid_start stay: a foreground wait or a `resume` waits for this driver's exit (core.jobs)
        store.update("runs", run_id, status=status, error=error, finished=now_iso())
        return 0 if status == "done" else 1


def _append_line(path: Path):
    from core.train import _Logger

    return _Logger(path)


def main(argv: list[str] | None = None) -> int:
    from core.store import Store, now_iso

    parser = argparse.ArgumentParser(prog="python -m core.jobs.ray_executor")
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--store", required=True)
    args = parser.parse_args(argv)
    store = Store(args.store)
    if store.get("runs", args.run_id) is None:
        print(f"no run {args.run_id} in {args.store}", file=sys.stderr)
        return 2
    try:
        return Driver(store, args.run_id).run()
    except Exception as exc:  # cannot reach the cluster, ...: the run fails with one line
        store.update("runs", args.run_id, status="failed", pid=None, finished=now_iso(),
                     error=f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
        raise


if __name__ == "__main__":
    sys.exit(main())
