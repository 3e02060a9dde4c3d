"""Typed messages: how thread workers talk back to the UI (they never touch widgets themselves)."""

from __future__ import annotations

from typing import Any, Callable

from textual.message import Message


class StoreLoaded(Message):
    """A fresh snapshot of the store was read (or the store is missing / unreadable)."""

    def __init__(self, snapshot: Any) -> None:
        super().__init__()
        self.snapshot = snapshot


class ActionFailed(Message):
    """A worker's call into core/remote failed; `message` is the one line for the user."""

    def __init__(self, title: str, message: str, *, dialog: bool = False) -> None:
        super().__init__()
        self.title = title
        self.message = message
        self.dialog = dialog


class ActionDone(Message):
    """A worker finished something the user asked for: a notification, and `then(result)` on the UI thread."""

    def __init__(self, message: str, *, result: Any = None, then: Callable[[Any], None] | None = None) -> None:
        super().__init__()
        self.message = message
        self.result = result
        self.then = then


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


class TrustRequired(Message):
    """A device presented a host key klmtui does not know: fetch it and ask before recording it."""

    def __init__(self, device: str, message: str) -> None:
        super().__init__()
        self.device = device
        self.message = message


class DeviceChecked(Message):
    """`device check` came back with a report (dict of facts about the device)."""

    def __init__(self, device: str, report: dict) -> None:
        super().__init__()
        self.device = device
        self.report = report


class RunSeries(Message):
    """Per-epoch metrics and the log tail of a training run, read from its run folder."""

    def __init__(self, run_id: str, metrics: list[dict], log: list[str], progress: dict) -> None:
        super().__init__()
        self.run_id = run_id
        self.metrics = metrics
        self.log = log
        self.progress = progress
