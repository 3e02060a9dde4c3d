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

from remote.agent.tegrastats import parse


class RailGroup(object):
    """Running sums over the in-window samples that share one set of rail names.

    Constant memory: a thesis power pass on a Nano lasts over an hour at 10 samples/s.
    """

    def __init__(self, record):
        self.n = 0
        self.power_sum = 0
        self.power_min = None
        self.power_max = None
        self.rails_sum = dict((name, 0) for name in record["rails"])
        self.gpu_sum = 0
        self.gpu_n = 0
        self.source = record["board_power_source"]
        self.first = record
        self.last = record

    def add(self, record):
        power = record["board_power_mw"]
        self.n += 1
        self.power_sum += power
        self.power_min = power if self.power_min is None else min(self.power_min, power)
        self.power_max = power if self.power_max is None else max(self.power_max, power)
        for name, value in record["rails"].items():
            self.rails_sum[name] += value
        if record["gpu_load_pct"] is not None:
            self.gpu_sum += record["gpu_load_pct"]
            self.gpu_n += 1
        self.last = record


class TegrastatsSampler(object):
    """Start/stop tegrastats and collect parsed samples; `measuring` marks the averaging window."""

    def __init__(self, command="tegrastats", interval_ms=100, emit=None):
        self.argv = shlex.split(command)
        if "--interval" not in self.argv:
            self.argv += ["--interval", str(int(interval_ms))]
        self.emit = emit
        self.measuring = False
        self.groups = {}  # frozenset(rail names) -> RailGroup, in-window samples only
        self.counts = {"lines": 0, "skipped_garbage": 0, "skipped_torn": 0, "skipped_no_power": 0,
                       "in_window": 0, "outside_window": 0}
        self.unavailable = None  # the reason, when tegrastats cannot run
        self._proc = None
        self._thread = None
        self._stderr = []
        self._died = False  # tegrastats exited before we stopped it
        self._stopping = False

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
            self._take(line.rstrip("\n"))

    def _read_stderr(self):
        for line in iter(self._proc.stderr.readline, ""):
            if len(self._stderr) < 50:
                self._stderr.append(line.rstrip())

    def _take(self, line):
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
        in_window = self.measuring
        if in_window:
            key = frozenset(record["rails"])
            if key not in self.groups:
                self.groups[key] = RailGroup(record)
            self.groups[key].add(record)
            self.counts["in_window"] += 1
        else:
            self.counts["outside_window"] += 1
        if self.emit:
            self.emit("power", board_power_mw=record["board_power_mw"], rails=record["rails"],
                      temps_c=record["temps_c"], gpu_load_pct=record["gpu_load_pct"],
                      ram_used_mb=record["ram_used_mb"], in_window=in_window)

    def window_count(self):
        return self.counts["in_window"]

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
        self._died = self._died or (proc.poll() is not None and not self._stopping)
        self._stopping = True
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
        """The power figure over the window: (summary dict, power_w or None, reason or None).

        Only samples with the board's usual rail set count (the most common set in the window;
        ties go to the larger set): a line cut so that it still looks whole lacks some rails.
        """
        usual = max(self.groups.values(), key=lambda g: (g.n, len(g.rails_sum))) if self.groups else None
        counts = dict(self.counts)
        counts["used"] = usual.n if usual else 0
        counts["skipped_inconsistent"] = counts.pop("in_window") - counts["used"]
        counts["skipped"] = (counts["skipped_garbage"] + counts["skipped_torn"] + counts["skipped_no_power"]
                             + counts["skipped_inconsistent"])
        info = {"tegrastats": counts, "command": " ".join(shlex.quote(a) for a in self.argv)}
        if self.unavailable:
            return info, None, self.unavailable
        if usual is None:
            reason = "no usable tegrastats samples during the power pass (%d lines read)" % counts["lines"]
            if self._died or (self._proc is not None and not self._stopping and not self.alive()):
                reason = "%s; %s" % (self.exit_reason(), reason)
            return info, None, reason
        n = float(usual.n)
        info.update({
            "board_power_mw_mean": usual.power_sum / n,
            "board_power_mw_min": usual.power_min,
            "board_power_mw_max": usual.power_max,
            "board_power_source": usual.source,
            "rails_mean_mw": dict((name, total / n) for name, total in sorted(usual.rails_sum.items())),
            "temps_start_c": usual.first["temps_c"],
            "temps_end_c": usual.last["temps_c"],
            "gpu_load_pct_mean": usual.gpu_sum / float(usual.gpu_n) if usual.gpu_n else None,
        })
        return info, info["board_power_mw_mean"] / 1000.0, None


def _killpg(pid, sig):
    try:
        os.killpg(pid, sig)
    except (OSError, ProcessLookupError):
        pass
