"""Host side of THE event schema (remote/agent/events.py): validate lines, fold events into live state.

- `validate_line(text) -> (event | None, reason)` and `validate_event(dict)`: types, finite
  numbers, the schema's ranges, bounded strings/objects; undeclared fields are dropped. A device
  that prints garbage, a huge line or absurd numbers gets the line skipped (the caller counts it).
- `BenchState`: THE fold of a benchmark's events into its live state (stage, pass, progress
  `x/N batches, pass, ETA`, latencies, power, summary, error). The CLI live view
  (klmtui/cli/bench.py), the TUI (klmtui/live.py) and the store update (remote/bench.py) all use it.
- `EventTail`: new complete lines of a benchmark's append-only `events.jsonl`, validated.

Only fields the schema declares are ever read: nothing here accepts a name the agent does not emit.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, Optional

from remote.agent.events import (ANY, BOOL, COMMON, EVENTS, INT, LIST, MAX_DEPTH, MAX_LINE_CHARS, MAX_OBJ_CHARS,
                                 MAX_STR_CHARS, NUM, OBJ, STR, F)

MAX_KEEP = 5000  # samples kept per series (the thesis protocol times 2,500 batches per pass)


class Invalid(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise Invalid(f"non-finite number {name}")


def _bounded(value: Any, depth: int = 0) -> None:
    """Objects/lists: finite numbers, bounded strings and nesting."""
    if depth > MAX_DEPTH:
        raise Invalid("nested too deeply")
    if isinstance(value, str):
        if len(value) > MAX_STR_CHARS:
            raise Invalid("string too long")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise Invalid("non-finite number")
    elif isinstance(value, dict):
        for key, item in value.items():
            _bounded(key, depth + 1)
            _bounded(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _bounded(item, depth + 1)
    elif value is not None and not isinstance(value, (bool, int)):
        raise Invalid(f"unexpected {type(value).__name__}")


def _check(name: str, spec: F, value: Any) -> None:
    if value is None:
        if spec.required:
            raise Invalid(f"{name} missing")
        return
    kind = spec.kind
    if kind == NUM:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    elif kind == INT:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == STR:
        ok = isinstance(value, str) and len(value) <= MAX_STR_CHARS
    elif kind == BOOL:
        ok = isinstance(value, bool)
    elif kind in (OBJ, LIST, ANY):
        ok = kind == ANY or isinstance(value, dict if kind == OBJ else list)
        if ok:
            _bounded(value)
            if len(json.dumps(value)) > MAX_OBJ_CHARS:
                raise Invalid(f"{name} too large")
    else:
        ok = False
    if not ok:
        raise Invalid(f"{name} is not a {kind}")
    if spec.choices is not None and value not in spec.choices:
        raise Invalid(f"{name} {str(value)[:40]!r} not one of {', '.join(spec.choices)}")
    if (spec.gt is not None and not value > spec.gt) or (spec.ge is not None and not value >= spec.ge) \
            or (spec.le is not None and not value <= spec.le):
        raise Invalid(f"{name} {value!r} out of range")


def validate_event(raw: Any, dropped: Optional[set] = None) -> dict:
    """A copy of `raw` holding only the schema's fields, or Invalid; undeclared names go to `dropped`."""
    if not isinstance(raw, dict):
        raise Invalid("not a JSON object")
    kind = raw.get("event")
    if not isinstance(kind, str) or kind not in EVENTS:
        raise Invalid(f"unknown event {str(kind)[:40]!r}")
    fields = EVENTS[kind]
    out: dict = {}
    for name, spec in list(COMMON.items()) + list(fields.items()):
        if name in raw or spec.required:
            _check(name, spec, raw.get(name))
            if name in raw:
                out[name] = raw[name]
    if dropped is not None and len(out) < len(raw):
        dropped.update(f"{kind}.{name}"[:80] for name in raw if name not in out)
    return out


def validate_line(text: str, dropped: Optional[set] = None) -> tuple[Optional[dict], str]:
    """(event, "") for a valid line, else (None, why)."""
    if len(text) > MAX_LINE_CHARS:
        return None, f"line of {len(text)} characters (limit {MAX_LINE_CHARS})"
    try:
        raw = json.loads(text, parse_constant=_reject_constant)
        return validate_event(raw, dropped), ""
    except Invalid as exc:
        return None, str(exc)
    except (ValueError, RecursionError):
        return None, "not JSON"


def _fmt_s(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class BenchState:
    """THE fold of a benchmark's events (validated) into its live state."""

    def __init__(self, bench_id: Optional[str] = None, arch: Optional[str] = None, device: Optional[str] = None):
        self.bench_id, self.arch, self.device = bench_id, arch, device
        self.status = "queued"
        self.stage = ""
        self.phase = ""  # the agent's current pass: latency, then power
        self.attempt = 1
        self.weights: Optional[str] = None
        self.power_pass = True
        self.protocol: dict = {}
        self.environment: dict = {}
        self.params: Optional[int] = None
        self.agent_pid: Optional[int] = None
        self.latencies: list[float] = []  # timed (non-warm-up) batches of the latency pass, seconds
        self.power_w: list[float] = []  # every board power sample, W
        self.window_w: list[float] = []  # the samples inside the power pass' timed part
        self.batches = {"latency": 0, "power": 0}  # every batch reported per pass (warm-up included)
        self.pass_started: dict[str, float] = {}  # agent clock of a pass' first and last batch
        self.pass_last: dict[str, float] = {}
        self.last_t: Optional[float] = None
        self.summary: Optional[dict] = None
        self.error: Optional[str] = None
        self.error_kind: Optional[str] = None
        self.events = 0
        self.counts: dict[str, int] = {}

    # ------------------------------------------------------------------ the fold
    def feed(self, event: dict) -> None:
        """Fold one validated event."""
        kind = event["event"]
        self.events += 1
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if event.get("t") is not None:
            self.last_t = event["t"]
        if kind == "benchmark":
            self.bench_id = event.get("id") or self.bench_id
            self.arch = event.get("arch") or self.arch
            self.device = event.get("device") or self.device
            self.attempt = event.get("attempt") or self.attempt
            self.weights = event.get("weights")
            self.power_pass = event.get("power_pass", True) is not False
            self.status, self.stage, self.error, self.summary = "running", "starting", None, None
            self.latencies, self.power_w, self.window_w = [], [], []
            self.batches = {"latency": 0, "power": 0}
            self.pass_started, self.pass_last = {}, {}
        elif kind == "stage":
            self.status, self.stage = "running", event["stage"]
        elif kind == "hello":
            self.status, self.stage = "running", "latency pass"
            self.protocol = event.get("protocol") or {}
            self.environment = dict(event.get("environment") or {})
            self.params = event.get("params")
            self.agent_pid = event.get("pid")
            self.weights = event.get("weights") or self.weights
        elif kind == "latency":
            which = event["pass"]
            self.phase, self.stage = which, f"{which} pass"
            self.batches[which] = self.batches.get(which, 0) + 1
            if event.get("t") is not None:
                self.pass_started.setdefault(which, event["t"])
                self.pass_last[which] = event["t"]
            if which == "latency" and not event.get("warmup") and not event.get("extra"):
                self.latencies.append(float(event["seconds"]))
                del self.latencies[:-MAX_KEEP]
        elif kind == "power":
            watts = float(event["board_power_mw"]) / 1000.0
            self.power_w.append(watts)
            del self.power_w[:-MAX_KEEP]
            if event.get("in_window"):
                self.window_w.append(watts)
                del self.window_w[:-MAX_KEEP]
        elif kind == "summary":
            self.summary, self.stage = dict(event), "summary"
        elif kind == "error":
            self.error, self.error_kind = event["error"], event.get("kind")
        elif kind == "finished":
            self.status = event["status"]
            self.stage = event["status"]
            self.error = event.get("error") if event["status"] != "done" else None

    # ------------------------------------------------------------------ derived
    def planned(self, which: str) -> Optional[int]:
        """Batches the agent will report in a pass (warm-up included; adaptive: the ceiling)."""
        p = self.protocol
        if not p:
            return None
        if p.get("protocol") == "thesis":
            return int(p.get("runs") or 0) * int(p.get("batches") or 0) or None
        warm = int(p.get("warmup_batches") or 0)
        if which == "power" and self.batches["latency"]:
            if self.phase != "power":  # the latency pass still runs: expect the power pass to take as many
                return self.planned("latency")
            # the power pass has its own stop rule (core.latency.PowerStop): about the latency pass' count,
            # more while it goes on
            power_ceiling = warm + int(p.get("max_batches") or 0)
            return min(power_ceiling, max(self.batches["latency"], self.batches["power"] + 1))
        ceiling = warm + int(p.get("max_batches") or 0) or None
        start, last, n = self.pass_started.get("latency"), self.pass_last.get("latency"), self.batches["latency"]
        if ceiling and start is not None and last is not None and n > 1 and p.get("ci_rel"):
            # what a steady device needs at the rate so far (core.latency); a drift only extends it
            from core.latency import expected_pass_batches

            expected = expected_pass_batches(p, (last - start) / (n - 1))
            return n if self.phase == "power" else min(ceiling, max(expected, n + 1))
        return ceiling

    def progress(self) -> dict:
        """{done, total, pass, eta_s}: batches over both passes (the power pass only if planned)."""
        lat, pw = self.planned("latency"), self.planned("power")
        passes = [("latency", lat)] + ([("power", pw)] if self.power_pass else [])
        total = sum(n or 0 for _, n in passes) or None
        done = sum(min(self.batches.get(w, 0), n or self.batches.get(w, 0)) for w, n in passes)
        eta = None
        which = self.phase or "latency"
        start, last, n = self.pass_started.get(which), self.pass_last.get(which), self.batches.get(which, 0)
        if total and start is not None and last is not None and n > 1:
            rate = (last - start) / (n - 1)  # seconds per batch in this pass so far
            eta = max(0.0, (total - done) * rate)
        return {"done": done, "total": total, "pass": which, "eta_s": eta}

    def progress_text(self) -> str:
        """`x/N batches, latency pass, ETA 1m05s` (or the stage before the agent runs)."""
        if self.status not in ("running",):
            return self.status
        if not self.batches["latency"] and not self.batches["power"]:
            return self.stage or "starting"
        p = self.progress()
        of = f"/{p['total']}" if p["total"] else ""
        eta = f", ETA {_fmt_s(p['eta_s'])}" if p["eta_s"] is not None else ""
        return f"{p['done']}{of} batches, {p['pass']} pass{eta}"

    def latency_median(self) -> Optional[float]:
        from core.latency import median

        return median(self.latencies)

    def stats(self) -> dict:
        from core.latency import summarize

        return summarize(self.latencies)

    def record_fields(self) -> dict:
        """What the store keeps of the events (remote.bench adds the summary figures)."""
        fields: dict[str, Any] = {"event_counts": dict(self.counts)}
        if self.environment:
            fields["environment"] = self.environment
            fields["params"] = self.params
        return fields


class EventTail:
    """New complete lines of an append-only JSON-lines file from `offset` on (a torn last line
    waits for its end), validated; invalid lines are counted in `bad`."""

    def __init__(self, path: Path, offset: int = 0, on_event: Optional[Callable[[dict], None]] = None) -> None:
        self.path, self.offset, self.on_event = Path(path), offset, on_event
        self._partial = b""
        self.bad = 0

    def read(self) -> list[dict]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except OSError:
            return []  # not written yet
        self.offset += len(chunk)
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        events = []
        for line in lines:
            if not line.strip():
                continue
            event, _ = validate_line(line.decode("utf-8", "replace"))
            if event is None:
                self.bad += 1
                continue
            events.append(event)
            if self.on_event is not None:
                self.on_event(event)
        return events


def read_events(path: Path) -> list[dict]:
    """Every valid event of a benchmark's events file."""
    return EventTail(path).read()
