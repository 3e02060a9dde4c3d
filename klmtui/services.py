"""The TUI's thin adapter onto `core` and `remote`: every call here runs in a thread worker.

No domain logic: each function opens the store and calls the function the CLI calls too. Heavy
modules (torch, paramiko, ray, tinydb) are imported inside the functions, so importing this
module costs nothing at start-up and the UI thread never pays for them.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from core.errors import KlmtuiError

TABLES = ("architectures", "runs", "benchmarks", "devices", "results")


@dataclass(frozen=True)
class Snapshot:
    """Everything the screens show, read at one moment. `error` is set for an unreadable store."""

    path: Path
    tables: dict[str, list[dict]] = field(default_factory=dict)
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
        sig = file_signature(self.store_path)
        try:
            store = self.store()
            tables = {name: store.all(name) for name in TABLES}
        except KlmtuiError as exc:
            return Snapshot(self.store_path, {}, str(exc), sig)
        return Snapshot(self.store_path, tables, None, sig)

    def refresh_jobs(self) -> None:
        """Mark runs whose process vanished as `interrupted` (what re-attaching after a restart needs)."""
        from core import jobs

        jobs.refresh(self.store())

    # ------------------------------------------------------------------ study
    def init_study(self) -> str:
        from core import study

        result = study.init_study(self.store())
        return _describe(result, "study initialised")

    # ------------------------------------------------------------------ training
    def train(self, arch_ids: list[str], form: dict) -> list[str]:
        """Submit detached training runs (they outlive the TUI); returns the run ids."""
        from core import jobs
        from core.arch import parse_arch

        config = {k: v for k, v in form.items() if k not in ("executor", "address") and v not in (None, "")}
        opts = {"address": form["address"]} if form.get("address") else {}
        ids: list[str] = []
        for arch_id in arch_ids:
            ids += list(jobs.submit(self.store(), parse_arch(arch_id), config, executor=form.get("executor", "local"), **opts))
        return ids

    def cancel(self, job_id: str) -> None:
        from core import jobs

        jobs.cancel(self.store(), job_id)

    def resume(self, run_id: str) -> Any:
        from core import jobs

        return jobs.resume(self.store(), run_id)

    def run_series(self, run_id: str, lines: int = 12) -> tuple[list[dict], list[str]]:
        from core import jobs

        store = self.store()
        return list(jobs.metrics(store, run_id)), list(jobs.log_tail(store, run_id, lines))

    # ------------------------------------------------------------------ benchmarks
    def benchmark(
        self,
        arch_id: str,
        device: str,
        options: dict,
        on_event: Callable[[dict], None],
        cancel: threading.Event,
    ) -> dict:
        from remote.bench import run_benchmark

        return run_benchmark(self.store(), arch_id, device, options, on_event=on_event, cancel=cancel)

    def bench_events(self, bench_id: str, limit: int = 2000) -> list[dict]:
        """Events of a benchmark that runs elsewhere (another process), from its run folder."""
        import json

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

    def trust_device(self, name: str) -> Any:
        from remote.devices import trust_device

        return trust_device(self.store(), name, yes=True)

    def remove_device(self, name: str) -> None:
        from remote.devices import remove_device

        remove_device(self.store(), name)

    # ------------------------------------------------------------------ results
    def export(self, fmt: str, source: str | None, out: str) -> str:
        from core import report

        text = report.export_table(self.store(), fmt=fmt, source=source)
        Path(out).write_text(text, encoding="utf-8")
        return out


def _describe(result: Any, default: str) -> str:
    if isinstance(result, str):
        return result
    if isinstance(result, dict) and result.get("message"):
        return str(result["message"])
    return default
