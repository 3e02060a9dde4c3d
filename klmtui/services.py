"""The TUI's thin adapter onto `core` and `remote`: every call here runs in a thread worker.

No domain logic: each function opens the store and calls the function the CLI calls too. Heavy
modules (torch, paramiko, ray, tinydb) are imported inside the functions, so importing this
module costs nothing at start-up and the UI thread never pays for them.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from core.errors import KlmtuiError
from core.schema import TABLES

FOLLOW_S = 0.1  # a benchmark started here is followed ~10 times a second


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
    """The store file's version (`core.store.file_signature`: inode, mtime, size and the revision
    tag every write renews), so an unchanged signature is an unchanged store."""
    from core.store import file_signature as store_signature

    return store_signature(path)


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
            store = self.store().view(strict=True)  # every table from one parse of the file
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
        refresh_liveness(self.store())

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

    def cancel(self, job_id: str) -> list[str]:
        """A training run (`t-...`) or a benchmark started by another process (`b-...`); returns
        once its process has exited, with the warning lines (e.g. it needed SIGKILL)."""
        said: list[str] = []
        if job_id.startswith("b-"):
            from remote import benchjobs

            benchjobs.cancel(self.store(), job_id, warn=said.append)
            return said
        from core import jobs

        jobs.cancel(self.store(), job_id, warn=said.append)
        return said

    def resume(self, run_id: str) -> Any:
        from core import jobs

        return jobs.resume(self.store(), run_id)

    def run_series(self, run_id: str, lines: int = 12) -> tuple[list[dict], list[str], dict]:
        """Per-epoch metrics, the log tail and the live progress of the current epoch. Reads only:
        a run folder is never created here (a deleted run's folder must stay deleted)."""
        from core import jobs, runs

        store = self.store()
        return runs.metrics(store, run_id), runs.log_lines(store, run_id, lines), jobs.progress(store, run_id) or {}

    def check_data(self, data: str | None) -> str:
        """What the train form's data folder gives: "image-folder", "torchvision" or "download"
        (nothing there yet: CIFAR-10 is downloaded on submit); a bad folder is an InputError."""
        from core.data import check_dataset

        return check_dataset(data or None)

    # ------------------------------------------------------------------ managing runs
    def run_log(self, record_id: str) -> list[str]:
        """The whole log of a run or benchmark (the details screen's full log view)."""
        from core.runs import log_lines

        return log_lines(self.store(), record_id, None)

    def remove_records(self, record_ids: list[str]) -> list[str]:
        """`klmtui rm ID... --yes`: refuses active ones (after marking vanished processes)."""
        from core.runs import remove

        self.refresh_jobs()
        return remove(self.store(), record_ids)

    def compare(self, refs: list[str]) -> list:
        """`klmtui compare REF...`: core.runs items with their curves and benchmark samples."""
        from core.runs import resolve_items

        store = self.store()
        return attach_samples(store, resolve_items(store, refs))

    # ------------------------------------------------------------------ benchmarks
    def submit_benchmarks(self, arch_ids: list[str], devices: list[str], options: dict) -> list[str]:
        """Queue the benchmarks over the device pool (remote.benchjobs.submit, as `klmtui bench`):
        detached runners, one at a time per device, the devices in parallel; they outlive the TUI."""
        from remote import benchjobs

        return benchjobs.submit(self.store(), arch_ids, devices, options)

    def resume_benchmark(self, bench_id: str) -> int:
        """Queue a failed/cancelled/interrupted benchmark again; where its new events will start."""
        from remote import benchjobs

        offset = benchjobs.events_size(self.store(), bench_id)
        benchjobs.resume(self.store(), bench_id)
        return offset

    def events_size(self, bench_id: str) -> int:
        from remote import benchjobs

        return benchjobs.events_size(self.store(), bench_id)

    def follow_benchmarks(self, offsets: dict[str, int], on_event: Callable[[str, dict], None],
                          on_end: Callable[[dict], None], cancels: dict[str, threading.Event],
                          on_cancel: Callable[[str], None], stop: Callable[[], bool],
                          poll_s: float = FOLLOW_S) -> list[dict] | None:
        """Follow benchmarks (remote.benchjobs.follow) until each has ended (`on_end(record)` as each
        does); None at once when `stop()` (the app quits: the benchmarks keep running). Once
        `cancels[id]` is set, `on_cancel(id)` is called (once): the app cancels it as a job of its
        own (`Services.cancel`), whose errors (it had just ended, it did not stop) it reports by type."""
        from remote import benchjobs

        store = self.store()
        sent: set[str] = set()

        def stopper() -> bool:
            for bench_id, event in cancels.items():
                if event.is_set() and bench_id not in sent:
                    sent.add(bench_id)
                    on_cancel(bench_id)
            return stop()

        return benchjobs.follow(store, list(offsets), on_event, stop=stopper, offsets=offsets, poll_s=poll_s,
                                on_end=on_end)

    def bench_events(self, bench_id: str, limit: int = 2000) -> list[dict]:
        """Events of a benchmark that runs elsewhere (another process), from its run folder (validated)."""
        from remote.bench import EVENTS_FILE
        from remote.benchevents import read_events

        return read_events(self.store().run_dir(bench_id) / EVENTS_FILE)[-limit:]

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


def refresh_liveness(store) -> None:
    """Training runs and benchmarks whose process vanished (pid + start time) become `interrupted`:
    the one liveness pass of every read path (the TUI's, and the CLI's `klmtui.cli.common`)."""
    from core import jobs
    from remote import benchjobs

    jobs.refresh(store)
    benchjobs.refresh(store)


def attach_samples(store, items: list) -> list:
    """`core.runs.Item`s with their benchmark's timed latencies and power samples, folded from the
    benchmark's `events.jsonl` by `LiveStream` (the same fold the live panel uses)."""
    from klmtui.live import LiveStream
    from remote.bench import EVENTS_FILE

    for item in items:
        if not item.bench:
            continue
        stream = LiveStream(key=item.bench["id"], arch_id=item.arch_id, device=item.bench.get("device") or "?")
        path = store.folder / "runs" / item.bench["id"] / EVENTS_FILE
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
