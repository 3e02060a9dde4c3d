"""THE event schema of a benchmark, and the agent's output: one JSON object per line on stdout.

Python 3.6 compatible (shipped with the agent). Every event the agent prints and every event the
host adds to a benchmark's `events.jsonl` is declared ONCE below, with its fields' types and
plausible ranges. The host validates each line against it (remote.benchevents.validate_line: a
line that breaks it is counted and skipped, never trusted; a field not declared here is dropped),
and folds the valid events into a benchmark's live state (remote.benchevents.BenchState), the one
fold used by the CLI's live view, the TUI and the store update.

ADDING A FIELD is a one-line change: add `"name": F(kind, ...)` to the event's dict below. A new
SUMMARY field is stored on the `benchmarks` record under the same name (remote.bench.summary_fields
maps only the few historical renames); e.g. power_rails_w, energy_j_ci, batches_timed, stop_reason.

A lock keeps lines whole when the tegrastats reader thread emits power samples while the main
thread emits latencies.
"""

import json
import math
import sys
import threading
import time


class Emitter(object):
    """Writes `{"event": NAME, "t": seconds since start, ...}` lines to a stream."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.start = time.time()
        self._lock = threading.Lock()

    def line(self, event, **fields):
        """The JSON text of one event (no newline)."""
        record = {"event": event, "t": round(time.time() - self.start, 4)}
        record.update(fields)
        return json.dumps(_finite(record), default=str)

    def __call__(self, event, **fields):
        line = self.line(event, **fields)
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()


def _finite(value):
    """JSON has no NaN/inf: turn them into None so the host's parser never chokes."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return dict((k, _finite(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


# --------------------------------------------------------------------------- the schema

NUM, INT, STR, BOOL, OBJ, LIST = "number", "integer", "string", "boolean", "object", "list"
ANY = "json"  # any bounded JSON value (an object, a list, a number, ...)

MAX_LINE_CHARS = 65536      # a longer line is skipped whole (an environment record is ~2 KB)
MAX_STR_CHARS = 2000        # any string, at any depth
MAX_OBJ_CHARS = 16384       # an object/list field, serialised
MAX_DEPTH = 4               # nesting of object/list fields
MAX_BOARD_W = 150.0         # no Jetson draws more (AGX Orin: 60 W); more is a lie or a parse bug
MAX_BATCH_S = 3600.0        # one batch taking an hour is not a measurement


class F(object):
    """One field: its kind, optional bounds (`gt` exclusive, `ge`/`le` inclusive) or choices."""

    __slots__ = ("kind", "gt", "ge", "le", "choices", "required")

    def __init__(self, kind, gt=None, ge=None, le=None, choices=None, required=False):
        self.kind, self.gt, self.ge, self.le = kind, gt, ge, le
        self.choices, self.required = choices, required


PASSES = ("latency", "power")

# Summary fields (agent -> host -> store). One line per field.
SUMMARY = {
    "latency_s": F(NUM, gt=0, le=MAX_BATCH_S),
    "latency_p90_s": F(NUM, gt=0, le=MAX_BATCH_S),
    "images_per_s": F(NUM, gt=0, le=1e8),
    "latency": F(OBJ),
    "adaptive": F(OBJ),
    "power_w": F(NUM, ge=0, le=MAX_BOARD_W),
    "power_reason": F(STR),
    "power": F(OBJ),
    "protocol": F(OBJ),
    "timing": F(STR),
    "images": F(STR),
    "weights": F(STR, choices=("trained", "initial")),
    "drop_none": F(BOOL),
    "device": F(STR),
    "environment_end": F(OBJ),
    "duration_s": F(NUM, ge=0, le=30 * 86400),
    "batches_timed": F(INT, ge=0, le=10 ** 7),
    "seconds_timed": F(NUM, ge=0, le=30 * 86400),
    "stop_reason": F(STR),
    "power_pass": F(STR),
    "power_source": F(STR),
    "power_rail": F(STR),
    "power_rails_w": F(OBJ),
    "energy_j": F(NUM, ge=0, le=MAX_BOARD_W * MAX_BATCH_S),
    "energy_j_ci": F(ANY),
    "energy": F(OBJ),
    "power_overhead_pct": F(NUM, ge=-100, le=10 ** 4),
    "power_overhead_method": F(STR),
    "like_thesis": F(ANY),
    "clocks": F(OBJ),
    "genotype_used": F(STR),  # the genotype built (--keep-none / --like-thesis: its edge_all form)
    "none_edges": F(INT, ge=0, le=10 ** 6),  # `none` edges the timed network computes
}
# Summary fields the host does not store under their own name (remote.bench.summary_fields).
SUMMARY_NOT_STORED = ("latency", "power", "device", "protocol", "environment_end")

# Agent events (device -> host).
AGENT_EVENTS = {
    "hello": {
        "agent_version": F(INT, ge=0, le=10 ** 6),
        "pid": F(INT, gt=1, le=2 ** 31),
        "arch": F(OBJ),
        "weights": F(STR, choices=("trained", "initial")),
        "weights_file": F(STR),
        "protocol": F(OBJ),
        "timing": F(STR),
        "images": F(STR),
        "drop_none": F(BOOL),
        "device": F(STR),
        "params": F(INT, ge=0, le=10 ** 10),
        "environment": F(OBJ),
        "heartbeat_timeout_s": F(NUM, ge=0, le=86400),
    },
    "latency": {
        "pass": F(STR, choices=PASSES, required=True),
        "run": F(INT, ge=-1, le=10 ** 7),
        "batch": F(INT, ge=0, le=10 ** 7),
        "seconds": F(NUM, gt=0, le=MAX_BATCH_S, required=True),
        "warmup": F(BOOL),
        "extra": F(BOOL),
        "t0": F(NUM), "t1": F(NUM),  # perf_counter at the batch's start/end (the power samples' clock)
    },
    "power": {
        "board_power_mw": F(NUM, ge=0, le=MAX_BOARD_W * 1000, required=True),
        "rails": F(OBJ),
        "temps_c": F(OBJ),
        "gpu_load_pct": F(NUM, ge=0, le=100),
        "ram_used_mb": F(NUM, ge=0, le=10 ** 7),
        "in_window": F(BOOL),
        "t_mono": F(NUM),  # perf_counter when sampled (the batch timers' clock)
        "power_source": F(STR, choices=("tegrastats", "sysfs")),
    },
    "summary": SUMMARY,
    "error": {
        "error": F(STR, required=True),
        "kind": F(STR, choices=("cancelled", "heartbeat", "input", "crash")),
    },
}

STATUSES = ("queued", "running", "done", "failed", "cancelled", "interrupted")

# Host events (written by the host into events.jsonl beside the agent's own).
HOST_EVENTS = {
    "benchmark": {
        "id": F(STR, required=True), "arch": F(STR), "device": F(STR), "weights": F(STR),
        "run_id": F(STR), "attempt": F(INT, ge=1, le=10 ** 6), "power_pass": F(BOOL),
    },
    "stage": {"stage": F(STR, choices=("prepare", "upload", "start"), required=True)},
    "finished": {"status": F(STR, choices=STATUSES, required=True), "error": F(STR),
                 "events_dropped": F(INT, ge=0, le=10 ** 12)},  # valid events the capped events.jsonl left out
}

EVENTS = dict(AGENT_EVENTS)
EVENTS.update(HOST_EVENTS)
COMMON = {"event": F(STR, required=True), "t": F(NUM, ge=0, le=30 * 86400)}
