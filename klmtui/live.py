"""Live streams: the benchmarks this app follows, as they arrive, for the details panel.

Events are folded as they come (cheap, on the UI thread) by THE fold, remote.benchevents.BenchState
(the one the CLI's live view and the store update use; only fields of the one event schema,
remote/agent/events.py, are read, and an event that breaks it is counted in `bad` and skipped).
Screens redraw from here at most ~10 times a second (`dirty` tells them whether there is
anything new). Statistics come from `core.latency`, the same code the agent and the summary use.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from remote.benchevents import BenchState, Invalid, validate_event


@dataclass
class LiveStream:
    key: str
    arch_id: str
    device: str
    bench_id: str | None = None
    status: str = "queued"  # queued -> running -> done | failed | cancelled | interrupted
    summary: dict | None = None
    error: str | None = None
    bad: int = 0  # events that broke the schema (skipped)
    dirty: bool = True
    ended: bool = False
    cancel: threading.Event = field(default_factory=threading.Event)
    state: BenchState = field(default_factory=BenchState)

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")

    # the fold's view, under the names the screens use
    @property
    def latencies(self) -> list[float]:
        return self.state.latencies

    @property
    def power_w(self) -> list[float]:
        return self.state.power_w

    @property
    def environment(self) -> dict:
        return self.state.environment

    @property
    def phase(self) -> str:
        return self.state.phase

    @property
    def events(self) -> int:
        return self.state.events

    @property
    def warmup(self) -> int:
        """Batches reported but not kept as latency samples (warm-up, the power pass)."""
        return sum(self.state.batches.values()) - len(self.state.latencies)

    @property
    def progress(self) -> str:
        """`x/N batches, pass, ETA` while it runs."""
        return self.state.progress_text()

    def feed(self, event: dict) -> None:
        """Fold one event (an agent's or the host's) into the stream."""
        self.dirty = True
        if self.ended:
            return  # nothing after the end (a late line must not revive a finished stream)
        try:
            event = validate_event(event)
        except Invalid:
            self.bad += 1
            return
        self.state.feed(event)
        self.bench_id = self.state.bench_id or self.bench_id
        self.device = self.state.device or self.device  # a pool's benchmark: the device that took it
        if self.state.status != "queued":
            self.status = self.state.status
        if event["event"] == "summary":
            self.summary = dict(self.state.summary or {})
        if self.state.error:
            self.error = self.state.error

    def finish(self, record: dict | None = None, error: str | None = None) -> None:
        self.dirty = True
        self.ended = True
        if error:
            self.error = error
            self.status = "cancelled" if self.cancel.is_set() else "failed"
            return
        if record:
            self.bench_id = record.get("id", self.bench_id)
            self.summary = {**(self.summary or {}), **record}
            self.status = record.get("status") or "done"
            self.error = self.error or record.get("error")
        else:
            self.status = "done"

    def stats(self) -> dict:
        return self.state.stats()


class LiveStreams:
    """All streams this app started, by key (`arch_id|device`); the newest per architecture wins."""

    def __init__(self) -> None:
        self._streams: dict[str, LiveStream] = {}

    def open(self, arch_id: str, device: str) -> LiveStream:
        key = f"{arch_id}|{device}"
        stream = LiveStream(key=key, arch_id=arch_id, device=device)
        self._streams[key] = stream
        return stream

    def get(self, key: str) -> LiveStream | None:
        return self._streams.get(key)

    def for_arch(self, arch_id: str) -> LiveStream | None:
        streams = [s for s in self._streams.values() if s.arch_id == arch_id]
        active = [s for s in streams if s.active]
        return (active or streams or [None])[-1]

    def active(self) -> list[LiveStream]:
        return [s for s in self._streams.values() if s.active]
