"""The TUI's thin adapter onto `core` and `remote`: every call here runs in a thread worker.

No domain logic: each function opens the store and calls the function the CLI calls too. Heavy
modules (torch, paramiko, ray, tinydb) are imported inside the functions, so importing this
module costs nothing at start-up and the UI thread never pays for them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from core.errors import InputError, KlmtuiError, OperationFailed
from core.schema import FINAL_STATUSES, TABLES

FOLLOW_S = 0.1  # a benchmark started here is followed ~10 times a second
PROCESS_LOG = "process.log"  # the detached benchmark process' own output (its one-line error, if any)


@dataclass(frozen=True)
class Snapshot:
    """Everything the screens show, read at one moment. `error` is set for an unreadable store."""

    path: Path
    tables: dict[str, list[dict]] = field(default_factory=dict)
    figures: dict[str, list[dict]] = field(default_factory=dict)  # source -> result rows (core.study)
    error: str | None = None
    signature: tuple | None = None

    @property
    def missing(self) -> bool:
        """No store yet, or one without architectures: the app offers `init`."""
        return self.error is None and not self.tables.get("architectures")

    def table(self, name: str) -> list[dict]:
        return self.tables.get(name, [])


def file_signature(path: Path) -> tuple | None:
    """(inode, mtime, size): the store file is replaced whole on each write, so this changes."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class Services:
    """One per app: holds the store path (and one `Store`, which caches the decoded file)."""

    def __init__(self, store_path: Path) -> None:
        self.store_path = Path(store_path)
        self._store = None
        self._lock = threading.Lock()

    def store(self):
        with self._lock:
            if self._store is None:
                from core.store import Store

                self._store = Store(self.store_path)
            return self._store

    # ------------------------------------------------------------------ reading
    def snapshot(self) -> Snapshot:
        """Read every table. A corrupt store gives a Snapshot with `error` (file left untouched)."""
        from core import report, study

        sig = file_signature(self.store_path)
        try:
            store = self.store()
            tables = {name: store.all(name) for name in TABLES}
            figures = {}
            for source in study.source_names(store):
                try:
                    figures[source] = [report.with_derived(r) for r in study.source_rows(store, source)]
                except KlmtuiError:  # a source with no rows yet (e.g. nothing measured)
                    figures[source] = []
        except KlmtuiError as exc:
            return Snapshot(self.store_path, {}, {}, str(exc), sig)
        return Snapshot(self.store_path, tables, figures, None, sig)

    def refresh_jobs(self) -> None:
        """Mark runs and benchmarks whose process vanished as `interrupted` (re-attaching after a restart)."""
        from core import jobs
        from remote.bench import refresh_benchmarks

        jobs.refresh(self.store())
        refresh_benchmarks(self.store())

    # ------------------------------------------------------------------ study
    def init_study(self) -> str:
        from core import study

        counts = study.init_study(self.store())
        return (f"study initialised: {counts.get('architectures')} architectures "
                f"({counts.get('architectures_added')} new), {counts.get('results')} reference results")

    # ------------------------------------------------------------------ training
    def train(self, arch_ids: list[str], form: dict) -> list[str]:
        """Submit detached training runs (they outlive the TUI); returns the run ids."""
        from core import jobs

        config = {k: form.get(k) for k in ("profile", "epochs", "batch_size", "train_subset", "test_subset", "data")
                  if form.get(k) not in (None, "")}
        ids: list[str] = []
        for arch_id in arch_ids:
            ids += jobs.submit(self.store(), arch_id, config, executor=form.get("executor") or "local",
                               seeds=int(form.get("seeds") or 1), address=form.get("address") or None,
                               storage=form.get("storage") or None)
        return ids

    def cancel(self, job_id: str) -> None:
        """A training run (`t-...`) or a benchmark started by another process (`b-...`)."""
        if job_id.startswith("b-"):
            from remote.bench import cancel_benchmark

            cancel_benchmark(self.store(), job_id)
            return
        from core import jobs

        jobs.cancel(self.store(), job_id)

    def resume(self, run_id: str) -> Any:
        from core import jobs

        return jobs.resume(self.store(), run_id)

    def run_series(self, run_id: str, lines: int = 12) -> tuple[list[dict], list[str], dict]:
        """Per-epoch metrics, the log tail and the live progress of the current epoch."""
        from core import jobs

        store = self.store()
        return jobs.metrics(store, run_id), jobs.log_tail(store, run_id, lines), jobs.progress(store, run_id) or {}

    # ------------------------------------------------------------------ benchmarks
    def start_benchmarks(self, arch_ids: list[str], device: str, options: dict, bench_ids: list[str]) -> subprocess.Popen:
        """`klmtui bench ARCH... --device DEV --id b-...` as a detached process (its own session):
        it outlives the TUI and runs the architectures one after the other (one at a time per device)."""
        argv = [sys.executable, "-m", "klmtui", "--store", str(self.store_path.resolve()), "bench", *arch_ids,
                "--device", device]
        for key, value in options.items():
            if value in (None, False, ""):
                continue
            flag = "--ci" if key == "ci_rel" else "--" + key.replace("_", "-")
            argv += [flag] if value is True else [flag, str(value)]
        for bench_id in bench_ids:
            argv += ["--id", bench_id]
        return self._detached(argv, bench_ids[0])

    def start_resume(self, bench_id: str) -> subprocess.Popen:
        """`klmtui resume b-...` as a detached process: a failed/cancelled/interrupted benchmark again."""
        argv = [sys.executable, "-m", "klmtui", "--store", str(self.store_path.resolve()), "resume", bench_id]
        return self._detached(argv, bench_id)

    def _detached(self, argv: list[str], bench_id: str) -> subprocess.Popen:
        """Its own session (no signal of the terminal or of this app reaches it); output to a log file
        in the run folder; this process' environment (HOME, KLMTUI_HOME: the SSH configuration)."""
        log = self.store().run_dir(bench_id) / PROCESS_LOG
        with open(log, "ab") as out:
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True, close_fds=True, env=dict(os.environ))

    def events_size(self, bench_id: str) -> int:
        """Where new events of a benchmark will start (a resumed one appends to its file)."""
        try:
            return (self.store().run_dir(bench_id) / "events.jsonl").stat().st_size
        except OSError:
            return 0

    def follow_benchmark(self, bench_id: str, proc: subprocess.Popen, on_event: Callable[[dict], None],
                         cancel: threading.Event, stop: Callable[[], bool], offset: int = 0,
                         poll_s: float = FOLLOW_S) -> dict | None:
        """Tail `run_dir(bench_id)/events.jsonl` into `on_event` until the record, written by `proc`,
        reaches a terminal status (or `proc` has exited); returns that record. Returns None at once
        when `stop()` (the app quits: the benchmark keeps running). `cancel` set -> cancel_benchmark."""
        from remote.bench import CANCEL_FILE, cancel_benchmark, refresh_benchmarks

        store = self.store()
        folder = store.run_dir(bench_id)
        tail = _Tail(folder / "events.jsonl", offset, on_event)
        ours = cancel_sent = False
        while True:
            tail.read()
            if stop():
                return None
            exited = proc.poll() is not None
            record = store.get("benchmarks", bench_id)
            if record is not None and record.get("pid") == proc.pid:
                ours = True  # written by this attempt (a resumed benchmark's old record is not)
            if cancel.is_set() and not cancel_sent:
                if ours:
                    cancel_sent = True
                    threading.Thread(target=_quietly, args=(cancel_benchmark, store, bench_id), daemon=True).start()
                else:  # not started yet: it finds the request as soon as it does
                    (folder / CANCEL_FILE).write_text("cancel requested\n")
            if ours and record is not None and record.get("status") in FINAL_STATUSES:
                tail.read()
                return record
            if exited:
                break
            time.sleep(poll_s)
        tail.read()
        refresh_benchmarks(store)  # it died while `running`: interrupted
        record = store.get("benchmarks", bench_id)
        if record is None or record.get("pid") != proc.pid:
            raise OperationFailed(_last_line(folder / PROCESS_LOG) or f"the benchmark process exited with status {proc.returncode}")
        return record

    def bench_events(self, bench_id: str, limit: int = 2000) -> list[dict]:
        """Events of a benchmark that runs elsewhere (another process), from its run folder."""
        path = self.store().run_dir(bench_id) / "events.jsonl"
        events: list[dict] = []
        try:
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        events.append(json.loads(line))
                    except ValueError:
                        continue
        except OSError:
            return []
        return events[-limit:]

    # ------------------------------------------------------------------ devices
    def add_device(self, fields: dict) -> None:
        from remote.devices import add_device

        fields = {k: v for k, v in fields.items() if v not in (None, "")}
        name = fields.pop("name")
        host = fields.pop("host")
        add_device(self.store(), name, host, **fields)

    def check_device(self, name: str) -> dict:
        from remote.devices import check_device

        return check_device(self.store(), name)

    def host_key(self, name: str) -> tuple[Any, str]:
        """The key the device presents now, and the question to ask about it (nothing recorded)."""
        from remote.devices import host_key, trust_prompt

        presented = host_key(self.store(), name)
        return presented, trust_prompt(presented)

    def record_host_key(self, presented: Any) -> str:
        """Record exactly the key the user saw and accepted (not a key fetched again)."""
        from remote.devices import record_host_key

        return str(record_host_key(presented))

    def remove_device(self, name: str) -> None:
        from remote.devices import remove_device

        remove_device(self.store(), name)

    # ------------------------------------------------------------------ results
    def export(self, fmt: str, source: str, out: str) -> str:
        """The same table as `klmtui export --format FMT --source SOURCE -o OUT` (core.study.export_file)."""
        from core.study import export_file

        export_file(self.store(), source, fmt, out)
        return out


def attach_samples(store, items: list) -> list:
    """`core.runs.Item`s with their benchmark's timed latencies and power samples, folded from the
    benchmark's `events.jsonl` by `LiveStream` (the same fold the live panel uses)."""
    from klmtui.live import LiveStream

    for item in items:
        if not item.bench:
            continue
        stream = LiveStream(key=item.bench["id"], arch_id=item.arch_id, device=item.bench.get("device") or "?")
        path = store.folder / "runs" / item.bench["id"] / "events.jsonl"
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(event, dict) and event.get("event") == "benchmark":  # a new attempt: its samples only
                        stream = LiveStream(key=stream.key, arch_id=stream.arch_id, device=stream.device)
                    if isinstance(event, dict):
                        stream.feed(event)
        except OSError:
            pass  # no events kept (e.g. imported record): figures only
        item.latencies, item.power = list(stream.latencies), list(stream.power_w)
    return items


class _Tail:
    """New complete lines of an append-only JSON-lines file, from `offset` on (a torn last line waits)."""

    def __init__(self, path: Path, offset: int, on_event: Callable[[dict], None]) -> None:
        self.path, self.offset, self.on_event = path, offset, on_event
        self._partial = b""

    def read(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except OSError:
            return  # not written yet
        self.offset += len(chunk)
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                self.on_event(event)


def _quietly(fn: Callable, *args: Any) -> None:
    """In a thread of its own: a cancel that comes too late (the benchmark just ended) is no error."""
    try:
        fn(*args)
    except KlmtuiError:
        pass


def _last_line(path: Path) -> str:
    try:
        lines = [l.strip() for l in path.read_text(encoding="utf-8", errors="replace").splitlines() if l.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""
