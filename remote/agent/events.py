"""The agent's output: one JSON object per line on stdout, flushed at once (design.md section 6).

Python 3.6 compatible. A lock keeps lines whole when the tegrastats reader thread emits power
samples while the main thread emits latencies.
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

    def __call__(self, event, **fields):
        record = {"event": event, "t": round(time.time() - self.start, 4)}
        record.update(fields)
        line = json.dumps(_finite(record), default=str)
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
