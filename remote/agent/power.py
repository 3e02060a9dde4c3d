"""Board power during the power pass: run tegrastats, parse its lines, average the board power.

Python 3.6 compatible. tegrastats runs in its own session (process group) so it can be stopped
with everything it spawned (`sudo tegrastats`, a wrapper script); `stop()` is idempotent and is
called from a `finally`, so it also runs on errors and on SIGTERM/SIGINT (the agent turns those
into an exception). If the agent is SIGKILLed instead, tegrastats dies on its next write to the
closed pipe.

Counting (reported in the summary): every line read is one of
- used: a whole sample taken while the timed part of the power pass was running,
- outside_window: a whole sample read during warm-up or after the pass,
- skipped_garbage: not tegrastats at all (ValueError from the parser),
- skipped_torn: flagged torn by the parser (cut by a short read),
- skipped_no_power: a tegrastats line without power rails,
- skipped_inconsistent: its rail names differ from the board's usual set (a cut that still
  looks whole, e.g. a TX2 line cut before VDD_IN), decided at the end by majority.
"""

import os
import shlex
import signal
import subprocess
import threading
import time

from remote.tegrastats import parse


class Sample(object):
    __slots__ = ("t", "record", "in_window")

    def __init__(self, t, record, in_window):
        self.t = t
        self.record = record
        self.in_window = in_window


class TegrastatsSampler(object):
    """Start/stop tegrastats and collect parsed samples; `measuring` marks the averaging window."""

    def __init__(self, command="tegrastats", interval_ms=100, emit=None):
        self.argv = shlex.split(command)
        if "--interval" not in self.argv:
            self.argv += ["--interval", str(int(interval_ms))]
        self.emit = emit
        self.measuring = False
        self.samples = []
        self.counts = {"lines": 0, "skipped_garbage": 0, "skipped_torn": 0, "skipped_no_power": 0}
        self.unavailable = None  # the reason, when tegrastats cannot run
        self._proc = None
        self._thread = None
        self._stderr = []

    def start(self):
        """Start tegrastats; False (and `unavailable` set) when it is missing or will not run."""
        if not self.argv:
            self.unavailable = "no tegrastats command configured"
            return False
        try:
            self._proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                universal_newlines=True, errors="replace", start_new_session=True)
        except OSError as exc:
            self.unavailable = "tegrastats not available (%s: %s)" % (self.argv[0], exc.strerror or exc)
            return False
        self._thread = threading.Thread(target=self._read, name="tegrastats-reader")
        self._thread.daemon = True
        self._thread.start()
        err = threading.Thread(target=self._read_stderr, name="tegrastats-stderr")
        err.daemon = True
        err.start()
        return True

    def _read(self):
        for line in iter(self._proc.stdout.readline, ""):
            self._take(line.rstrip("\n"), time.time())

    def _read_stderr(self):
        for line in iter(self._proc.stderr.readline, ""):
            if len(self._stderr) < 50:
                self._stderr.append(line.rstrip())

    def _take(self, line, t):
        self.counts["lines"] += 1
        try:
            record = parse(line)
        except ValueError:
            self.counts["skipped_garbage"] += 1
            return
        if record["torn"]:
            self.counts["skipped_torn"] += 1
            return
        if record["board_power_mw"] is None:
            self.counts["skipped_no_power"] += 1
            return
        sample = Sample(t, record, self.measuring)
        self.samples.append(sample)
        if self.emit:
            self.emit("power", board_power_mw=record["board_power_mw"], rails=record["rails"],
                      temps_c=record["temps_c"], gpu_load_pct=record["gpu_load_pct"],
                      ram_used_mb=record["ram_used_mb"], in_window=sample.in_window)

    def window_count(self):
        return sum(1 for s in self.samples if s.in_window)

    def alive(self):
        return self._proc is not None and self._proc.poll() is None

    def exit_reason(self):
        """Why tegrastats stopped on its own (exit status and stderr), for the summary."""
        code = self._proc.poll() if self._proc else None
        tail = "; ".join(self._stderr[-3:])
        return "tegrastats exited with status %s%s" % (code, (": " + tail) if tail else "")

    def stop(self):
        """Stop tegrastats and its process group (idempotent), then let the reader drain."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            _killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                _killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self._thread is not None:
            self._thread.join(timeout=3)

    def result(self):
        """The power figure over the window: (summary dict, power_w or None, reason or None)."""
        window = [s for s in self.samples if s.in_window]
        usual = _usual_rails(window)
        used = [s for s in window if frozenset(s.record["rails"]) == usual]
        counts = dict(self.counts)
        counts["used"] = len(used)
        counts["outside_window"] = len(self.samples) - len(window)
        counts["skipped_inconsistent"] = len(window) - len(used)
        counts["skipped"] = (counts["skipped_garbage"] + counts["skipped_torn"] + counts["skipped_no_power"]
                             + counts["skipped_inconsistent"])
        info = {"tegrastats": counts, "command": " ".join(shlex.quote(a) for a in self.argv)}
        if self.unavailable:
            return info, None, self.unavailable
        if not used:
            if not self.samples and not self.alive() and self._proc is not None:
                return info, None, self.exit_reason()
            return info, None, "no usable tegrastats samples during the power pass (%d lines read)" % counts["lines"]
        powers = [s.record["board_power_mw"] for s in used]
        rails = sorted(usual)
        info.update({
            "board_power_mw_mean": sum(powers) / float(len(powers)),
            "board_power_mw_min": min(powers),
            "board_power_mw_max": max(powers),
            "board_power_source": used[0].record["board_power_source"],
            "rails_mean_mw": dict((r, sum(s.record["rails"][r] for s in used) / float(len(used))) for r in rails),
            "temps_start_c": used[0].record["temps_c"],
            "temps_end_c": used[-1].record["temps_c"],
            "gpu_load_pct_mean": _mean([s.record["gpu_load_pct"] for s in used]),
        })
        return info, info["board_power_mw_mean"] / 1000.0, None


def _usual_rails(samples):
    """The most common rail-name set among the samples (ties: the larger set)."""
    tally = {}
    for s in samples:
        key = frozenset(s.record["rails"])
        tally[key] = tally.get(key, 0) + 1
    if not tally:
        return frozenset()
    return max(tally, key=lambda k: (tally[k], len(k)))


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / float(len(values)) if values else None


def _killpg(pid, sig):
    try:
        os.killpg(pid, sig)
    except (OSError, ProcessLookupError):
        pass
