"""Typed messages: screens ask the app (requests), workers answer (results).

- Requests (`Request` subclasses) are posted by a screen and bubble to the app, which handles
  each with `@on(...)`: a screen never calls the app's methods.
- Results are posted by thread workers when their call into core/remote returned; each names
  what happened (`RunsSubmitted`, `DeviceChecked`, ...). A worker that raises posts nothing: the
  app handles its exception in one place, by type (`KlmtuiApp.on_worker_state_changed`).
- The store snapshot is not a message to screens: it is the app's reactive `snapshot`, which
  screens watch.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message

# ---------------------------------------------------------------------------- requests (screen -> app)


class Request(Message):
    """A screen asks the app to do something (bubbles to the app)."""


class ArchsRequest(Request):
    def __init__(self, arch_ids: list[str]) -> None:
        super().__init__()
        self.arch_ids = list(arch_ids)


class OpenDetails(Request):
    def __init__(self, arch_id: str) -> None:
        super().__init__()
        self.arch_id = arch_id


class OpenCompare(ArchsRequest):
    """Compare these architectures (or, with `record_ids`, these runs/benchmarks)."""

    def __init__(self, arch_ids: list[str], record_ids: list[str] | None = None) -> None:
        super().__init__(arch_ids)
        self.record_ids = list(record_ids or [])


class TrainRequest(ArchsRequest):
    """Open the train form for these architectures."""


class BenchRequest(ArchsRequest):
    """Open the benchmark form (device picker) for these architectures."""


class CancelRequest(ArchsRequest):
    """Cancel the active runs and benchmarks of these architectures."""


class ResumeRequest(ArchsRequest):
    """Resume the interrupted/failed/cancelled runs and benchmarks of these architectures."""


class ExportRequest(Request):
    def __init__(self, source: str) -> None:
        super().__init__()
        self.source = source


class DeleteRequest(Request):
    """Delete these runs/benchmarks (and their folders), after a confirmation."""

    def __init__(self, record_ids: list[str]) -> None:
        super().__init__()
        self.record_ids = list(record_ids)


class DeviceRequest(Request):
    def __init__(self, device: str) -> None:
        super().__init__()
        self.device = device


class AddDeviceRequest(Request):
    """Open the add-device form."""


class CheckDeviceRequest(DeviceRequest):
    pass


class TrustDeviceRequest(DeviceRequest):
    pass


class RemoveDeviceRequest(DeviceRequest):
    pass


# ---------------------------------------------------------------------------- results (worker -> app)


class StoreLoaded(Message):
    """A fresh snapshot of the store was read (or the store is missing / unreadable)."""

    def __init__(self, snapshot: Any) -> None:
        super().__init__()
        self.snapshot = snapshot


class StudyInitialised(Message):
    def __init__(self, summary: str) -> None:
        super().__init__()
        self.summary = summary


class RunsSubmitted(Message):
    def __init__(self, run_ids: list[str]) -> None:
        super().__init__()
        self.run_ids = run_ids


class JobCancelled(Message):
    def __init__(self, job_id: str, warnings: list[str] | None = None) -> None:
        super().__init__()
        self.job_id = job_id
        self.warnings = list(warnings or [])  # e.g. its process needed SIGKILL


class StreamCancelRequested(Message):
    """The benchmark follower saw a stream's cancel set: the app cancels that benchmark as a job."""

    def __init__(self, job_id: str) -> None:
        super().__init__()
        self.job_id = job_id


class JobResumed(Message):
    def __init__(self, job_id: str) -> None:
        super().__init__()
        self.job_id = job_id


class RecordsDeleted(Message):
    def __init__(self, record_ids: list[str]) -> None:
        super().__init__()
        self.record_ids = record_ids


class Exported(Message):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path


class DeviceAdded(Message):
    def __init__(self, device: str) -> None:
        super().__init__()
        self.device = device


class DeviceRemoved(Message):
    def __init__(self, device: str) -> None:
        super().__init__()
        self.device = device


class DeviceChecked(Message):
    """`device check` came back with a report (dict of facts about the device)."""

    def __init__(self, device: str, report: dict) -> None:
        super().__init__()
        self.device = device
        self.report = report


class HostKeyPresented(Message):
    """The key a device presents now (nothing recorded yet) and the question to ask about it."""

    def __init__(self, device: str, presented: Any, prompt: str) -> None:
        super().__init__()
        self.device = device
        self.presented = presented
        self.prompt = prompt


class HostKeyRecorded(Message):
    def __init__(self, device: str, fingerprint: str) -> None:
        super().__init__()
        self.device = device
        self.fingerprint = fingerprint


class StreamEvent(Message):
    """One event of a live stream (a benchmark's agent line); batched into the view at <= 10 Hz."""

    def __init__(self, key: str, event: dict) -> None:
        super().__init__()
        self.key = key
        self.event = event


class StreamEnded(Message):
    """A stream's benchmark returned (`record`) or failed (`error`); queued after its last event."""

    def __init__(self, key: str, record: dict | None, error: str | None) -> None:
        super().__init__()
        self.key = key
        self.record = record
        self.error = error


class RunSeries(Message):
    """Per-epoch metrics and the log of a training run, read from its run folder."""

    def __init__(self, run_id: str, metrics: list[dict], log: list[str], progress: dict) -> None:
        super().__init__()
        self.run_id = run_id
        self.metrics = metrics
        self.log = log
        self.progress = progress


class ComparisonLoaded(Message):
    """The items of a comparison (`core.runs.Item`, with their samples), read by a worker."""

    def __init__(self, items: list) -> None:
        super().__init__()
        self.items = items


class TableRows(Message):
    """The home table's rows for one request (`generation`): every row of the source (`rows`, kept
    for the next filter or sort) and those the filter keeps, sorted (`ordered`); built by a worker."""

    def __init__(self, generation: int, key: tuple, rows: list, ordered: list, tokens: list[str]) -> None:
        super().__init__()
        self.generation = generation
        self.key = key
        self.rows = rows
        self.ordered = ordered
        self.tokens = tokens  # the filter words `ordered` passed
