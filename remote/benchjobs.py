"""Benchmarks as jobs: record first, a queue per device, a runner process per benchmark.

The lifecycle, like training's (core/jobs), and what the CLI, the TUI and scripts all call:
- `submit(store, archs, devices, options) -> [ids]`: validates everything (bad input writes
  nothing), writes one `queued` record per architecture holding the whole resolved config
  (protocol + agent options, weights: the training run whose checkpoint will be timed, the
  device pool), then `start_queued`.
- `start_queued(store)`: under a file lock, hands each free device the next queued benchmark
  whose pool names it (one benchmark at a time per device, two would corrupt each other's
  timings; any number of devices in parallel): the record becomes `running` on that `device`
  and a detached runner, `python -m remote.benchjobs --store PATH --run ID`, executes it
  (remote.bench.execute). A runner that ends calls `start_queued` again, so the queues drain
  with no daemon; queued benchmarks survive the CLI and the TUI exiting.
- `cancel(store, id)`: a queued one is simply `cancelled`; a running one is asked to stop (its
  runner's process group gets SIGTERM, which kills the agent's group on the device); it returns
  once the runner process has exited (`runner_gone`; SIGKILL of its group after 10 s, said once).
- `resume(store, id)`: a failed/cancelled/interrupted benchmark, queued again under the same id
  (attempt + 1), after killing any leftover agent of it on the device (its process group id is
  recorded as `agent_pgid`; the agent's command line carries the benchmark id, so a recycled
  group id is never killed).
- `refresh(store)`: a `running` benchmark whose host process is gone (kill -9, reboot) becomes
  `interrupted`; then queued benchmarks are started on the devices that freed up.
- `follow(store, ids, on_event)`: the events of several benchmarks as they are written (validated),
  until every one of them has ended; refreshes on the way.
- `run_here(store, id, ...)`: the foreground way (scripts, tests): claim the benchmark for this
  process once its device is free, and execute it here; `run_benchmark(store, arch, device, ...)`
  and `resume_benchmark(store, id, ...)` submit / resume and then `run_here`.

Records keep `device`, `started` and `finished` (ISO 8601 UTC, milliseconds) and `devices` (the pool).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from core.errors import InputError, OperationFailed
from core.jobs.process import is_alive, spawn_detached, start_time
from core.schema import BENCHMARKS, CANCELLED, FINAL_STATUSES, INTERRUPTED, QUEUED, RESUMABLE_STATUSES, RUNNING
from remote.bench import CANCEL_FILE, EVENTS_FILE, EventCallback, stamp

QUEUE_LOCK = ".bench-queue.lock"
RUNNER_LOG = "process.log"  # a runner's own output (its one-line error, if any)
DETACHED, FOREGROUND = "detached", "foreground"
REFRESH_S = 2.0
LAUNCH_GRACE_S = 120.0  # a claimed benchmark whose runner never reported a pid this long: its starter died


def _age_s(stamp_text: Optional[str]) -> float:
    """Seconds since an ISO 8601 UTC stamp (infinite if there is none or it does not parse)."""
    try:
        then = datetime.strptime(str(stamp_text)[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return float("inf")
    return (datetime.now(timezone.utc) - then).total_seconds()


def host() -> str:
    return socket.gethostname()


def _lock(store):
    from filelock import FileLock

    folder = store.folder / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    return FileLock(str(folder / QUEUE_LOCK), timeout=120)


def _get(store, bench_id: str) -> dict:
    record = store.get(BENCHMARKS, bench_id)
    if record is None:
        raise InputError(f"no benchmark {bench_id!r} in {store.path}")
    return record


# --------------------------------------------------------------------------- submit


def submit(store, archs: Iterable[str], devices: Iterable[str], options: Optional[dict] = None, *,
           start: bool = True, runner: str = DETACHED, bench_ids: Optional[list] = None) -> list[str]:
    """Queue one benchmark per architecture over the device pool `devices`; their ids."""
    from core.store import new_id
    from remote.bench import check_new_id, device_record, latest_checkpoint, parse_request, split_options

    parsed = [parse_request(a) for a in archs]
    pool = list(dict.fromkeys(devices))
    if not parsed:
        raise InputError("no architecture to benchmark")
    if not pool:
        raise InputError("no device to benchmark on: give --device NAME (repeatable)")
    names = [device_record(store, d).get("name") or d for d in pool]
    protocol, extras = split_options(options)
    ids = list(bench_ids or [])
    if ids and (len(ids) != len(parsed) or len(set(ids)) != len(ids)):
        raise InputError(f"give one distinct id per architecture ({len(parsed)}), got {len(ids)}")
    for bench_id in ids:
        check_new_id(store, bench_id)
    ids = ids or [new_id("b-") for _ in parsed]
    seq = time.time_ns()
    with store.transaction() as tx:
        for i, (arch, bench_id) in enumerate(zip(parsed, ids)):
            run = latest_checkpoint(store, arch.id)
            tx.insert(BENCHMARKS, {
                "id": bench_id, "arch_id": arch.id, "arch": arch.triple, "K": arch.K, "L": arch.L, "M": arch.M,
                "channels": arch.channels, "genotype": arch.genotype,
                "device": names[0] if len(names) == 1 else None, "devices": names,
                "run_id": run["id"] if run else None, "weights": "trained" if run else "initial",
                "protocol": protocol.protocol, "timing": protocol.timing, "batch": protocol.batch,
                "options": {**protocol.to_dict(), **extras}, "status": QUEUED, "attempt": 1,
                "latency_s": None, "latency_p90_s": None, "images_per_s": None, "power_w": None, "energy_j": None,
                "environment": None, "error": None, "created": stamp(), "started": None, "finished": None,
                "runner": runner, "host": host() if runner == FOREGROUND else None,
                "pid": os.getpid() if runner == FOREGROUND else None,
                "pid_start": start_time(os.getpid()) if runner == FOREGROUND else None,
                "run_dir": f"runs/{bench_id}", "queue_seq": seq + i, "agent_pgid": None, "progress": None,
            })
    for bench_id in ids:
        store.run_dir(bench_id)
    if start and runner == DETACHED:
        start_queued(store)
    return ids


# --------------------------------------------------------------------------- the queue


def _alive(record: dict) -> bool:
    """Is the host process of this benchmark there (only knowable on its own host)?"""
    if record.get("host") not in (None, host()):
        return True  # another machine: assume so
    if record.get("pid") is None:  # between the claim and the runner's start (if its starter did not die)
        return bool(record.get("launching")) and _age_s(record.get("started")) < LAUNCH_GRACE_S
    marker = record["id"] if record.get("runner") == DETACHED else None
    return is_alive(int(record["pid"]), marker, record.get("pid_start"))


def _mark_vanished(store) -> list[str]:
    gone = []
    with store.transaction() as tx:
        candidates = tx.find(BENCHMARKS, status=RUNNING) + [
            r for r in tx.find(BENCHMARKS, status=QUEUED) if r.get("runner") == FOREGROUND]
        for record in candidates:
            if not _alive(record):
                tx.update(BENCHMARKS, record["id"], status=INTERRUPTED, finished=stamp(), launching=False,
                          error="the benchmark's host process vanished (killed or machine restarted): "
                                f"`klmtui resume {record['id']}` runs it again")
                gone.append(record["id"])
    return gone


def _busy(records: list[dict]) -> set:
    return {r.get("device") for r in records if r.get("status") == RUNNING}


def _pool(record: dict) -> list[str]:
    return list(record.get("devices") or ([record["device"]] if record.get("device") else []))


def runner_command(store, bench_id: str) -> list[str]:
    return [sys.executable, "-m", "remote.benchjobs", "--store", str(Path(store.path).resolve()), "--run", bench_id]


def start_queued(store) -> list[str]:
    """Give every free device its next queued benchmark (a detached runner each); the ids started."""
    started = []
    with _lock(store):
        _mark_vanished(store)
        records = store.all(BENCHMARKS)
        busy = _busy(records)
        queued = sorted((r for r in records if r.get("status") == QUEUED and r.get("runner") != FOREGROUND),
                        key=lambda r: (r.get("queue_seq") or 0, r["id"]))
        for record in queued:
            device = next((d for d in _pool(record) if d not in busy), None)
            if device is None:
                continue
            busy.add(device)
            store.update(BENCHMARKS, record["id"], status=RUNNING, device=device, host=host(), pid=None,
                         pid_start=None, launching=True, started=stamp(), finished=None)
            folder = store.run_dir(record["id"])
            try:
                pid = spawn_detached(runner_command(store, record["id"]), folder / RUNNER_LOG, store.folder)
            except Exception as exc:
                store.update(BENCHMARKS, record["id"], status="failed", launching=False, finished=stamp(),
                             error=f"could not start the benchmark runner: {exc}")
                busy.discard(device)
                continue
            with store.transaction() as tx:
                current = tx.get(BENCHMARKS, record["id"]) or {}
                fields: dict[str, Any] = {"launching": False}
                if current.get("pid") is None and current.get("status") == RUNNING:
                    fields.update(pid=pid, pid_start=start_time(pid))
                tx.update(BENCHMARKS, record["id"], **fields)
            started.append(record["id"])
    return started


def claim(store, bench_id: str, wait_s: float = 3600.0, poll_s: float = 0.5) -> dict:
    """Make a queued foreground benchmark `running` in this process once a device of its pool is free."""
    deadline = time.monotonic() + wait_s
    while True:
        with _lock(store):
            _mark_vanished(store)
            record = _get(store, bench_id)
            if record.get("status") != QUEUED:
                raise InputError(f"benchmark {bench_id} is {record.get('status')}, not queued")
            busy = _busy(store.all(BENCHMARKS))
            device = next((d for d in _pool(record) if d not in busy), None)
            if device is not None:
                return store.update(BENCHMARKS, bench_id, status=RUNNING, device=device, host=host(),
                                    pid=os.getpid(), pid_start=start_time(os.getpid()), runner=FOREGROUND,
                                    launching=False, started=stamp(), finished=None)
        if time.monotonic() > deadline:
            raise OperationFailed(f"benchmark {bench_id}: no device of {', '.join(_pool(record))} became free "
                                  f"within {wait_s:.0f} s")
        time.sleep(poll_s)


def execute(store, bench_id: str, on_event=None, cancel: Optional[threading.Event] = None, *,
            home: Optional[Path] = None) -> dict:
    """Run a benchmark this process holds (`running`, this host); its final record."""
    from remote import bench

    with store.transaction() as tx:
        record = tx.get(BENCHMARKS, bench_id)
        if record is None or record.get("status") != RUNNING or record.get("host") != host():
            raise InputError(f"benchmark {bench_id} is not handed to this process "
                             f"(status {record.get('status') if record else 'missing'})")
        record = tx.update(BENCHMARKS, bench_id, pid=os.getpid(), pid_start=start_time(os.getpid()), launching=False)
    return bench.execute_record(store, record, on_event, cancel, home)


def run_here(store, bench_id: str, on_event=None, cancel: Optional[threading.Event] = None, *,
             home: Optional[Path] = None) -> dict:
    """The foreground way: wait for a free device, run the benchmark in this process, hand the
    device on to the next queued benchmark."""
    try:
        claim(store, bench_id)
        return execute(store, bench_id, on_event, cancel, home=home)
    finally:
        if any(r.get("runner") != FOREGROUND for r in store.find(BENCHMARKS, status=QUEUED)):
            start_queued(store)


def run_benchmark(store, arch_id: str, device_name: str, options: Optional[dict] = None,
                  on_event: Optional[EventCallback] = None, cancel: Optional[threading.Event] = None,
                  *, home: Optional[Path] = None, bench_id: Optional[str] = None) -> dict:
    """Benchmark one architecture on one device in this process (the foreground form: the same
    queued record, claimed here once the device is free); the final record."""
    [bench_id] = submit(store, [arch_id], [device_name], options, runner=FOREGROUND,
                        bench_ids=[bench_id] if bench_id else None)
    return run_here(store, bench_id, on_event, cancel, home=home)


def resume_benchmark(store, bench_id: str, on_event: Optional[EventCallback] = None,
                     cancel: Optional[threading.Event] = None, *, home: Optional[Path] = None) -> dict:
    """Run a failed/cancelled/interrupted benchmark again under the same id, in this process."""
    resume(store, bench_id, runner=FOREGROUND)
    return run_here(store, bench_id, on_event, cancel, home=home)


def refresh(store) -> list[str]:
    """Mark benchmarks whose host process vanished `interrupted`, start queued ones on free devices."""
    if not store.exists():
        return []
    with _lock(store):
        gone = _mark_vanished(store)
    if any(r.get("runner") != FOREGROUND for r in store.find(BENCHMARKS, status=QUEUED)):
        start_queued(store)
    return gone


# --------------------------------------------------------------------------- cancel / resume


def _runner(record: dict) -> Optional[tuple]:
    """(pid, marker, pid_start) of a benchmark's detached runner on this host, else None (a
    foreground runner is the process that asked for the benchmark: it does not exit with it)."""
    if record.get("runner") != DETACHED or not record.get("pid") or record.get("host") not in (None, host()):
        return None
    return int(record["pid"]), record["id"], record.get("pid_start")


def runner_gone(store, bench_id: str, *, timeout_s: Optional[float] = None, kill: bool = False,
                warn: Optional[Callable[[str], None]] = None) -> bool:
    """Wait until the detached runner of an ended benchmark has exited (it writes the final status
    a moment before: then it hands the device on and exits). `kill`: SIGKILL its group after
    `timeout_s` (default `STOP_GRACE_S`), said through `warn`. True once it is gone."""
    from core.jobs.process import ALIVE, KILLED, STOP_GRACE_S, stop, stop_message, wait_gone

    runner = _runner(_get(store, bench_id))
    if runner is None:
        return True
    grace = STOP_GRACE_S if timeout_s is None else timeout_s
    if not kill:
        return wait_gone(runner[0], runner[1], runner[2], grace)
    pid, marker, started = runner
    outcome = stop(pid, marker, grace, started, terminate=False)
    if outcome == KILLED and warn is not None:
        warn(stop_message(f"benchmark {bench_id}", runner[0], grace))
    return outcome != ALIVE


def cancel(store, bench_id: str, wait_s: float = 20.0, *, warn: Optional[Callable[[str], None]] = None) -> dict:
    """Stop a queued or running benchmark from any process; its record once it has stopped and
    (a detached runner) its runner process has exited: a `resume` right after it starts one runner."""
    from core.jobs.process import KILLED, stop, stop_message

    with store.transaction() as tx:
        record = tx.get(BENCHMARKS, bench_id)
        if record is None:
            raise InputError(f"no benchmark {bench_id!r} in {store.path}")
        if record["status"] == QUEUED:
            return tx.update(BENCHMARKS, bench_id, status=CANCELLED, finished=stamp(), error="cancelled while queued")
    if record["status"] != RUNNING:
        raise InputError(f"benchmark {bench_id} is not running (status {record['status']})")
    (store.run_dir(bench_id) / CANCEL_FILE).write_text("cancel requested\n")  # the runner watches it
    deadline = time.monotonic() + wait_s
    signalled: list = []

    def terminate(runner: tuple) -> None:
        pid, marker, started = runner
        outcome = stop(pid, marker, wait_s / 2, started)
        if outcome == KILLED and warn is not None:
            warn(stop_message(f"benchmark {bench_id}", runner[0], wait_s / 2))

    while time.monotonic() < deadline:
        record = _get(store, bench_id)
        if record["status"] != RUNNING or not _alive(record):
            break
        if not signalled and record.get("host") == host() and time.monotonic() > deadline - wait_s * 0.75:
            signalled.append(True)  # it did not react to the file: signal it (runners and the CLI handle SIGTERM)
            runner = _runner(record)
            if runner is not None:
                signalled.append(threading.Thread(target=terminate, args=(runner,), daemon=True))
                signalled[-1].start()
            elif record.get("pid") and is_alive(int(record["pid"]), None, record.get("pid_start")):
                try:
                    os.kill(int(record["pid"]), signal.SIGTERM)  # a foreground one: the process itself
                except OSError:
                    pass
        time.sleep(0.2)
    for thread in signalled[1:]:
        thread.join()
    record = _get(store, bench_id)
    if record["status"] == RUNNING and _alive(record):
        raise OperationFailed(f"benchmark {bench_id} did not stop within {wait_s:.0f} s (pid {record.get('pid')})")
    if not signalled[1:]:  # it stopped by itself: its runner exits next (bounded, then SIGKILL)
        runner_gone(store, bench_id, kill=True, warn=warn)
    if record["status"] == RUNNING:
        return store.update(BENCHMARKS, bench_id, status=CANCELLED, finished=stamp(),
                            error="cancelled (the benchmark process had already gone)")
    return _get(store, bench_id)


def kill_leftover_agent(store, record: dict) -> bool:
    """Kill the agent of an earlier attempt if it still runs on the device (by its recorded group)."""
    from remote.bench import device_record
    from remote.devices import transport_for

    pgid = record.get("agent_pgid")
    if not pgid or not record.get("device"):
        return False
    try:
        transport = transport_for(device_record(store, record["device"]))
    except InputError:
        return False  # the device was removed: nothing we can reach
    try:
        return bool(transport.kill_group(int(pgid), record["id"]))
    except Exception:  # unreachable now: the agent stops itself on the missing heartbeat
        return False
    finally:
        try:
            transport.close()
        except Exception:
            pass


def resume(store, bench_id: str, *, start: bool = True, runner: str = DETACHED) -> dict:
    """Queue a failed/cancelled/interrupted benchmark again (same id, attempt + 1)."""
    from remote.bench import latest_checkpoint

    refresh(store)
    record = _get(store, bench_id)
    if record["status"] in (RUNNING, QUEUED):
        raise InputError(f"benchmark {bench_id} is still {record['status']} (pid {record.get('pid')})")
    if record["status"] not in RESUMABLE_STATUSES:
        raise InputError(f"benchmark {bench_id} is already {record['status']}: start a new one with `klmtui bench`")
    if not runner_gone(store, bench_id):  # it ended a moment ago; its runner is still exiting
        raise InputError(f"benchmark {bench_id} is {record['status']} but its runner (pid {record.get('pid')}) "
                         "has not exited yet: resume it once it has")
    kill_leftover_agent(store, record)
    (store.run_dir(bench_id) / CANCEL_FILE).unlink(missing_ok=True)
    run = latest_checkpoint(store, record["arch_id"])
    foreground = runner == FOREGROUND
    record = store.update(BENCHMARKS, bench_id, status=QUEUED, error=None, finished=None, started=None,
                          attempt=int(record.get("attempt") or 1) + 1, queue_seq=time.time_ns(), runner=runner,
                          pid=os.getpid() if foreground else None,
                          pid_start=start_time(os.getpid()) if foreground else None,
                          host=host() if foreground else None, agent_pgid=None, progress=None,
                          devices=_pool(record), run_id=run["id"] if run else None,
                          weights="trained" if run else "initial")
    if start and not foreground:
        start_queued(store)
        record = _get(store, bench_id)
    return record


# --------------------------------------------------------------------------- following


def follow(store, ids: list[str], on_event: Optional[Callable[[str, dict], None]] = None, *,
           stop: Optional[Callable[[], bool]] = None, offsets: Optional[dict] = None,
           poll_s: float = 0.2, on_end: Optional[Callable[[dict], None]] = None) -> Optional[list[dict]]:
    """Hand the events of the benchmarks `ids` to `on_event(id, event)` as they are written, until
    every one has ended (`on_end(record)` as each does); their final records (None at once when
    `stop()` says so)."""
    from remote.benchevents import EventTail

    offsets = offsets or {}
    tails = [EventTail(store.run_dir(i) / EVENTS_FILE, offsets.get(i, 0),
                       partial(on_event, i) if on_event else None) for i in ids]
    last_refresh = 0.0
    ended: set = set()
    while True:
        for tail in tails:
            tail.read()
        if stop is not None and stop():
            return None
        if time.monotonic() - last_refresh > REFRESH_S:
            refresh(store)
            last_refresh = time.monotonic()
        records = [_get(store, i) for i in ids]
        for tail, record in zip(tails, records):
            if record.get("status") in FINAL_STATUSES and record["id"] not in ended:
                ended.add(record["id"])
                tail.read()  # its last events were written before its final status
                if on_end is not None:
                    on_end(record)
        if len(ended) == len(ids):
            for bench_id in ids:  # a runner writes its final status a moment before it exits
                runner_gone(store, bench_id)
            return records
        time.sleep(poll_s)


def events_size(store, bench_id: str) -> int:
    """Where new events of a benchmark will start (a resumed one appends to its file)."""
    try:
        return (store.run_dir(bench_id) / EVENTS_FILE).stat().st_size
    except OSError:
        return 0


# --------------------------------------------------------------------------- the runner process


def main(argv: Optional[list] = None) -> int:
    import argparse

    from core.errors import KlmtuiError
    from core.store import Store

    parser = argparse.ArgumentParser(prog="python -m remote.benchjobs", description="run one queued benchmark")
    parser.add_argument("--store", required=True)
    parser.add_argument("--run", required=True, metavar="BENCH_ID")
    args = parser.parse_args(argv)
    store = Store(args.store)
    stop_event = threading.Event()

    def handler(signum, frame):
        stop_event.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, handler)
    try:
        record = execute(store, args.run, cancel=stop_event)
        return 0 if record.get("status") == "done" else 1
    except KlmtuiError as exc:
        print(f"klmtui: {exc}", file=sys.stderr)
        return 1
    finally:
        try:
            start_queued(store)  # the device is free: its next queued benchmark starts
        except Exception as exc:
            print(f"klmtui: starting the next queued benchmark failed: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
