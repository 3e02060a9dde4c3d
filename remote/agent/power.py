"""Board power during a measured window: from tegrastats (this module) or the INA sensors in sysfs
(remote.agent.sysfs_power), averaged per rail, with a timestamped series for energy per batch.

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
  looks whole, e.g. a TX2 line cut before VDD_IN), decided at the end by majority,
- discarded_drift: an in-window sample from before the adaptive power pass' last drift
  (restart_window; present only when that happened).

Every rail is kept: the result carries the mean of each rail over the window (`rails_mean_mw`),
and `power_rail` (`--power-rail`: input, gpu, cpu, sum or a rail name, see
remote.agent.tegrastats.select_power) chooses which figure is `power_w`. Each in-window sample
also goes into a time series (perf_counter seconds, the clock the batch timers use; mW of the
chosen figure) from which remote.agent.energy integrates the energy of every batch.

Lines are read with a length cap (MAX_LINE): a longer line is cut, counted torn, and the rest of it
is discarded. `sudo` in the tegrastats command always runs as `sudo -n`, with no terminal and stdin
from /dev/null: where it would ask for a password it fails at once, never hangs.
"""

import os
import shlex
import signal
import subprocess
import threading
import time
from array import array

from remote.agent.tegrastats import MAX_LINE, parse, select_power


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


class PowerWindow(object):
    """What both samplers share: in-window rail groups, the energy series, the power figure."""

    source = "none"

    def __init__(self, power_rail="input"):
        self.power_rail = power_rail or "input"
        self.measuring = False
        self.groups = {}  # frozenset(rail names) -> RailGroup, in-window samples only
        self.series_t = array("d")  # perf_counter seconds of every whole sample
        self.series_mw = array("d")  # the chosen figure (power_rail) of those samples, mW
        self.unavailable = None  # the reason, when the source cannot run
        self.emit = None
        self.counts = {"in_window": 0, "outside_window": 0}

    def _window(self, record, t):
        """Add one whole in-window sample ({"rails", "board_power_mw", ...}) taken at perf_counter t."""
        key = frozenset(record["rails"])
        if key not in self.groups:
            self.groups[key] = RailGroup(record)
        self.groups[key].add(record)

    def _accept(self, record, t, emit):
        """A whole sample at perf_counter t: into the series, into the window when measuring, and
        (when `emit`) out as a `power` event. Subclasses keep `counts` with in/outside_window."""
        in_window = self.measuring
        self._series(record, t)
        if in_window:
            self._window(record, t)
            self.counts["in_window"] += 1
        else:
            self.counts["outside_window"] += 1
        if emit:
            self.emit("power", board_power_mw=record["board_power_mw"], rails=record["rails"],
                      temps_c=record.get("temps_c") or {}, gpu_load_pct=record.get("gpu_load_pct"),
                      ram_used_mb=record.get("ram_used_mb"), in_window=in_window, t_mono=t,
                      power_source=self.source)

    def restart_window(self):
        """Forget the in-window samples so far (the adaptive power pass saw a drift: what came
        before it was warm-up); they are counted in `discarded_drift`, the series is kept."""
        dropped = sum(g.n for g in self.groups.values())
        self.groups = {}
        self.counts["in_window"] -= dropped
        self.counts["discarded_drift"] = self.counts.get("discarded_drift", 0) + dropped

    def _series(self, record, t):
        """Every whole sample, in the window or not, goes into the energy series (chosen figure)."""
        mw, _ = select_power(record["rails"], self.power_rail)
        if mw is not None:
            self.series_t.append(t)
            self.series_mw.append(float(mw))

    def usual(self):
        """The board's usual rail set in the window (most samples; ties: the larger set)."""
        return max(self.groups.values(), key=lambda g: (g.n, len(g.rails_sum))) if self.groups else None

    def figures(self, usual):
        """(info, power_w, reason) from the usual group: every rail's mean and the chosen figure."""
        n = float(usual.n)
        rails_mean = dict((name, total / n) for name, total in sorted(usual.rails_sum.items()))
        power_mw, chosen = select_power(rails_mean, self.power_rail)
        info = {
            "board_power_mw_mean": usual.power_sum / n,
            "board_power_mw_min": usual.power_min,
            "board_power_mw_max": usual.power_max,
            "board_power_source": usual.source,
            "rails_mean_mw": rails_mean,
            "power_rails_w": dict((name, v / 1000.0) for name, v in rails_mean.items()),
            "power_rail": self.power_rail,
            "power_rail_used": chosen if power_mw is not None else None,
            "power_source": self.source,
            "samples_used": usual.n,
            "temps_start_c": usual.first.get("temps_c"),
            "temps_end_c": usual.last.get("temps_c"),
            "gpu_load_pct_mean": usual.gpu_sum / float(usual.gpu_n) if usual.gpu_n else None,
        }
        if power_mw is None:
            return info, None, "--power-rail %s: %s" % (self.power_rail, chosen)
        return info, power_mw / 1000.0, None

    def series(self):
        return self.series_t, self.series_mw


class TegrastatsSampler(PowerWindow):
    """Start/stop tegrastats and collect parsed samples; `measuring` marks the averaging window."""

    source = "tegrastats"

    def __init__(self, command="tegrastats", interval_ms=100, emit=None, power_rail="input"):
        PowerWindow.__init__(self, power_rail)
        self.argv = no_password_prompt(shlex.split(command))
        if "--interval" not in self.argv:
            self.argv += ["--interval", str(int(interval_ms))]
        self.emit = emit
        self.counts = {"lines": 0, "skipped_garbage": 0, "skipped_torn": 0, "skipped_no_power": 0,
                       "in_window": 0, "outside_window": 0}
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
        stream = self._proc.stdout
        while True:
            line = stream.readline(MAX_LINE + 1)
            if not line:
                return
            if len(line) > MAX_LINE and not line.endswith("\n"):
                while True:  # drop the rest of an overlong line, in bounded pieces
                    rest = stream.readline(MAX_LINE)
                    if not rest or rest.endswith("\n"):
                        break
            self._take(line.rstrip("\n"))

    def _read_stderr(self):
        for line in iter(lambda: self._proc.stderr.readline(1024), ""):
            if len(self._stderr) < 50:
                self._stderr.append(line.rstrip())

    def _take(self, line, t=None):
        t = time.perf_counter() if t is None else t
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
        self._accept(record, t, emit=bool(self.emit))

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
        usual = self.usual()
        counts = dict(self.counts)
        counts["used"] = usual.n if usual else 0
        counts["skipped_inconsistent"] = counts.pop("in_window") - counts["used"]
        counts["skipped"] = (counts["skipped_garbage"] + counts["skipped_torn"] + counts["skipped_no_power"]
                             + counts["skipped_inconsistent"])
        info = {"tegrastats": counts, "command": " ".join(shlex.quote(a) for a in self.argv),
                "power_source": self.source, "power_rail": self.power_rail}
        if self.unavailable:
            return info, None, self.unavailable
        if usual is None:
            reason = "no usable tegrastats samples during the power pass (%d lines read)" % counts["lines"]
            if self._died or (self._proc is not None and not self._stopping and not self.alive()):
                reason = "%s; %s" % (self.exit_reason(), reason)
            return info, None, reason
        figures, power_w, reason = self.figures(usual)
        info.update(figures)
        return info, power_w, reason


def no_password_prompt(argv):
    """`sudo X` -> `sudo -n X`: where sudo would ask for a password it fails at once instead."""
    if argv and os.path.basename(argv[0]) == "sudo" and "-n" not in argv[1:] and "--non-interactive" not in argv[1:]:
        return [argv[0], "-n"] + list(argv[1:])
    return list(argv)


def _killpg(pid, sig):
    try:
        os.killpg(pid, sig)
    except (OSError, ProcessLookupError):
        pass
