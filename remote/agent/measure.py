"""Which power source, which pass, and the figures that come from pairing batches with power samples.

Python 3.6 compatible. `Measurement(args, emit)` decides, from `--power-source auto|sysfs|tegrastats`
and `--power-pass auto|same|separate`:
- the source: `auto` is the INA monitors in sysfs when the board exposes them
  (remote.agent.sysfs_power), else tegrastats;
- the pass: `auto` is one pass with sysfs (cheap: latency and power are measured together) and
  the thesis' two passes with tegrastats (tegrastats slowed the network by >= 33% in the thesis).

The recorder (an `on_batch` hook for remote.agent.timing's loops) keeps every kept batch's
[t0, t1] (perf_counter, the samplers' clock) and seconds. In one pass it interleaves blocks with
the sampler on and off (thesis protocol: whole runs, alternately; adaptive: blocks of
BLOCK_BATCHES) so the agent measures its own overhead:
`power_overhead_pct` = 100 x (median of sampled batches / median of unsampled batches - 1);
with two passes it is the power pass' median against the latency pass' median. Energy per image
is integrated per sampled batch (remote.agent.energy).
"""

import time

from core.latency import MIN_POWER_SAMPLES, PowerStop, median
from remote.agent.energy import summarize_energy
from remote.agent.power import TegrastatsSampler

SOURCES = ("auto", "sysfs", "tegrastats")
PASSES = ("auto", "same", "separate")
BLOCK_BATCHES = 10


class Recorder(object):
    """on_batch hook: kept batches' intervals; in one pass also switches the sampler per block."""

    def __init__(self, timer, sampler=None, interleave=False, per_run=True):
        self.timer = timer
        self.sampler = sampler
        self.interleave = interleave
        self.per_run = per_run
        self.sampled = []  # (t0, t1, seconds) of kept batches taken with the sampler on
        self.unsampled = []  # seconds of kept batches with the sampler off (one pass only)
        self._on = sampler is not None

    def restart(self):
        """Forget the batches so far (a drift in the adaptive power pass: see PowerPassStop)."""
        self.sampled = []
        self.unsampled = []

    def __call__(self, phase, run, batch, warmup, seconds):
        if phase == "before":
            if self.interleave:
                block = run if self.per_run else batch // BLOCK_BATCHES
                self._on = block % 2 == 0
                self.sampler.paused = not self._on
                self.sampler.measuring = self._on and not warmup
            return
        if warmup:
            return
        if self._on:
            self.sampled.append((self.timer.t0, self.timer.t1, seconds))
        else:
            self.unsampled.append(seconds)


class PowerPassStop(object):
    """The adaptive power pass' stop (core.latency.PowerStop) fed from a running sampler.

    Each timed batch counts one batch and hands the rule every power sample (the chosen figure,
    `--power-rail`) the sampler has taken since the pass' timed part started, with its time
    since then (perf_counter, the samplers' clock). run_adaptive(stop=...) drives it. When the
    rule sees a drift, the sampler's window and the recorder's batches restart there: power_w
    (the window's mean) and the energy per image come from what follows the last drift.
    """

    def __init__(self, sampler, protocol, min_samples=MIN_POWER_SAMPLES, recorder=None):
        self.sampler = sampler
        self.recorder = recorder
        self.rule = PowerStop(protocol.ci_rel, protocol.min_batches, protocol.max_batches,
                              min_seconds=protocol.min_seconds, min_samples=max(min_samples, MIN_POWER_SAMPLES))
        self.t_start = None
        self.pos = 0
        self.stopped = False

    def start(self):
        self.t_start = time.perf_counter()
        self.pos = len(self.sampler.series()[0])

    def add(self, seconds, elapsed):
        ts, mw = self.sampler.series()
        end = min(len(ts), len(mw))  # the reader thread appends t, then mW
        for i in range(self.pos, end):
            if ts[i] >= self.t_start:
                self.rule.add_sample(mw[i], ts[i] - self.t_start)
        self.pos = end
        self.rule.add_batch()

    def done(self):
        if not self.sampler.alive():  # tegrastats exited (or the sysfs thread died): no more samples
            self.stopped = True       # will come, the power pass ends (power_reason says why)
            return True
        drifts = self.rule.samples.drifts
        stop = self.rule.done()
        if self.rule.samples.drifts != drifts:  # what came before the drift was warm-up: power_w and
            self.sampler.restart_window()     # energy come from what follows its detection
            if self.recorder is not None:
                self.recorder.restart()
        return stop

    @property
    def reason(self):
        return "sampler stopped" if self.stopped else self.rule.reason

    def report(self):
        return self.rule.report()


class Measurement(object):
    def __init__(self, args, emit):
        self.args = args
        self.emit = emit
        self.source = args.power_source
        if self.source == "auto":
            from remote.agent.sysfs_power import find_rails

            self.source = "sysfs" if find_rails(args.sysfs_root) else "tegrastats"
        mode = args.power_pass
        self.same_pass = (mode == "same") or (mode == "auto" and self.source == "sysfs")
        self.sampler = None
        self.recorder = None

    def new_sampler(self):
        args = self.args
        if self.source == "sysfs":
            from remote.agent.sysfs_power import SysfsSampler

            self.sampler = SysfsSampler(args.sysfs_root, args.sysfs_rate_hz, self.emit, args.power_rail,
                                        emit_hz=args.power_events_hz)
        else:
            self.sampler = TegrastatsSampler(args.tegrastats, args.tegrastats_interval, self.emit, args.power_rail)
        return self.sampler

    def hook(self, timer, per_run, interleave=False):
        self.recorder = Recorder(timer, self.sampler, interleave, per_run)
        return self.recorder

    def latency_hook(self, timer, per_run):
        """The latency pass' on_batch: None for two passes; in one pass the sampler starts here."""
        if self.args.no_power or not self.same_pass:
            return None
        sampler = self.new_sampler()
        if not sampler.start():
            self.same_pass = False  # the separate pass then tries again, and reports why it failed
            return None
        return self.hook(timer, per_run, interleave=True)

    def finish_same(self):
        """(info, power_w, reason) after a one-pass measurement."""
        if self.sampler is None:
            return {}, None, "no power sampler"
        self.sampler.measuring = False
        self.sampler.stop()
        return self.sampler.result()

    def close(self):
        if self.sampler is not None:
            self.sampler.stop()

    def fields(self, latency_kept, batch):
        """The summary's power_pass, energy_j, energy_j_ci, power_overhead_pct (+ details)."""
        out = {"power_pass": "same" if self.same_pass else "separate", "power_source": self.source,
               "power_rail": self.args.power_rail, "energy_j": None, "energy_j_ci": None,
               "power_overhead_pct": None, "energy": None}
        rec = self.recorder
        if self.args.no_power or rec is None or self.sampler is None:
            out["power_source"] = None if self.args.no_power else self.source
            return out
        ts, mw = self.sampler.series()
        energy = summarize_energy(ts, mw, [(t0, t1) for t0, t1, _ in rec.sampled], batch)
        out["energy"] = energy
        out["energy_j"] = energy["energy_j"]
        out["energy_j_ci"] = energy["energy_j_ci"]
        on = median([s for _, _, s in rec.sampled])
        off = median(rec.unsampled if self.same_pass else latency_kept)
        if on and off:
            out["power_overhead_pct"] = 100.0 * (on / off - 1.0)
        out["power_overhead_method"] = (
            "interleaved blocks, sampler on vs off (%d vs %d batches)" % (len(rec.sampled), len(rec.unsampled))
            if self.same_pass else "power pass vs latency pass medians")
        return out
