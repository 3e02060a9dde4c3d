"""Live streams: the samples of a benchmark as they arrive, kept for the details panel.

Events are appended as they come (cheap, on the UI thread); screens redraw from here at most
~10 times a second (`dirty` tells them whether there is anything new). Statistics come from
`core.latency`, the same code the agent and the summary use.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

MAX_KEEP = 5000  # samples kept per series (the thesis protocol times 2,500 batches)


def _first(event: dict, *names: str) -> Any:
    for name in names:
        if event.get(name) is not None:
            return event[name]
    return None


@dataclass
class LiveStream:
    key: str
    arch_id: str
    device: str
    bench_id: str | None = None
    status: str = "queued"  # queued -> running -> done | failed | cancelled
    latencies: list[float] = field(default_factory=list)
    power_w: list[float] = field(default_factory=list)
    environment: dict = field(default_factory=dict)
    summary: dict | None = None
    error: str | None = None
    events: int = 0
    warmup: int = 0
    phase: str = ""  # the agent's current pass: latency, then power
    dirty: bool = True
    ended: bool = False
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")

    def feed(self, event: dict) -> None:
        """Fold one agent/host event into the stream (unknown events are counted, not fatal)."""
        self.events += 1
        self.dirty = True
        kind = event.get("event")
        if event.get("bench_id") or event.get("benchmark_id"):
            self.bench_id = event.get("bench_id") or event.get("benchmark_id")
        if self.ended:
            return  # nothing after the end (a late line must not revive a finished stream)
        if kind == "hello":
            self.status = "running"
            env = event.get("environment")
            self.environment.update(env if isinstance(env, dict) else {k: v for k, v in event.items() if k not in ("event", "t")})
        elif kind == "latency":
            self.status = "running"
            self.phase = str(event.get("pass") or self.phase)
            if event.get("warmup") or event.get("pass") == "power":
                self.warmup += 1  # shown as progress, kept out of the statistics
                return
            values = _first(event, "samples", "seconds_list")
            if isinstance(values, list):
                self.latencies.extend(float(v) for v in values if v is not None)
            else:
                value = _first(event, "seconds", "latency_s", "s", "value")
                if value is not None:
                    self.latencies.append(float(value))
            del self.latencies[:-MAX_KEEP]
        elif kind == "power":
            watts = _first(event, "power_w", "board_power_w")
            if watts is None:
                mw = _first(event, "board_power_mw", "mw")
                watts = None if mw is None else float(mw) / 1000.0
            if watts is not None:
                self.power_w.append(float(watts))
                del self.power_w[:-MAX_KEEP]
        elif kind == "summary":
            self.summary = dict(event)
        elif kind == "finished":
            self.status = event.get("status") or self.status
            self.error = self.error or event.get("error")
        elif kind == "error":
            self.error = str(_first(event, "message", "error") or "the device reported an error")
        elif kind == "environment" and isinstance(event.get("environment"), dict):
            self.environment.update(event["environment"])

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
        from core.latency import summarize

        return summarize(self.latencies)


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
