"""The latency protocol (thesis section 3.4) and its statistics, shared by the host and the agent.

Pushed to the device with the agent, so this file is Python 3.6 compatible and imports only the
standard library: the agent and the host read the same defaults and compute the same figures.

Protocols:
- `thesis`: batch 64, 50 runs of 50 batches; the first 20 runs and the first 5 batches of every
  run are discarded (warm-up), the rest are the samples (30 x 45 = 1350 batches).
- `adaptive`: after `warmup_batches`, time batch after batch and stop only when all hold:
  the 95% confidence interval of the median lies within +-`ci_rel` (1%) of the median; no
  drift that is both significant and larger than the tolerance (a step between the last two
  windows, a Mann-Kendall trend over block medians), and the drift bounded (Sen's slope, at the
  far end of its +-1 sigma interval, would not move the figure by the tolerance over as long
  again as has been timed); at least `min_batches` batches are kept and `min_seconds` seconds
  have been timed (MLPerf LoadGen's minimum duration). See `AdaptiveStop`. A drift discards the
  samples before it (they were warm-up after all). `max_batches` is a ceiling on timed batches.
  The power pass has its own rule on the power samples (`PowerStop`).

Timings: `sync` (device time of the forward pass: inputs already on the device, synchronised
before and after) and `thesis` (the thesis' own script: host clock per batch including loading and
preprocessing the images, no synchronize).

The confidence interval of the median is the distribution-free order-statistic interval:
[x_(l), x_(n+1-l)] with l the largest rank such that P(Binomial(n, 1/2) < l) <= (1 - conf)/2.
"""

import bisect
import math
from typing import Optional

PROTOCOLS = ("thesis", "adaptive")
TIMINGS = ("sync", "thesis")

DEFAULTS = {
    "thesis": {
        "batch": 64,
        "runs": 50,
        "batches": 50,
        "warmup_runs": 20,
        "warmup_batches": 5,
        "min_batches": None,
        "max_batches": None,
        "ci_rel": None,
        "min_seconds": None,
    },
    "adaptive": {
        "batch": 64,
        "runs": 1,
        "batches": None,
        "warmup_runs": 0,
        "warmup_batches": 20,
        "min_batches": 30,
        "max_batches": 2500,
        "ci_rel": 0.01,
        "min_seconds": 20.0,  # the drift bound guards slow ramps; the minimum duration is a floor
    },
}
CONFIDENCE = 0.95
FIELDS = ("protocol", "timing", "batch", "runs", "batches", "warmup_runs", "warmup_batches",
          "min_batches", "max_batches", "ci_rel", "min_seconds")


class Protocol(object):
    """A fully resolved protocol: defaults of its kind overridden by whatever is not None."""

    # The FIELDS, set in __init__ from DEFAULTS and the overrides (declared for type checkers only).
    protocol: str
    timing: str
    batch: int
    runs: int
    batches: "Optional[int]"  # thesis: batches per run; adaptive: None
    warmup_runs: int
    warmup_batches: int
    min_batches: "Optional[int]"  # adaptive only (None for thesis)
    max_batches: "Optional[int]"
    ci_rel: "Optional[float]"
    min_seconds: "Optional[float]"

    def __init__(self, protocol="thesis", timing="sync", **overrides):
        if protocol not in PROTOCOLS:
            raise ValueError("unknown protocol %r (known: %s)" % (protocol, ", ".join(PROTOCOLS)))
        if timing not in TIMINGS:
            raise ValueError("unknown timing %r (known: %s)" % (timing, ", ".join(TIMINGS)))
        unknown = sorted(set(overrides) - set(FIELDS))
        if unknown:
            raise ValueError("unknown protocol option(s): %s" % ", ".join(unknown))
        self.protocol = protocol
        self.timing = timing
        values = dict(DEFAULTS[protocol])
        for key, value in overrides.items():
            if value is not None:
                values[key] = value
        for key, value in values.items():
            setattr(self, key, value)
        self._validate()

    def _validate(self):
        positive = ["batch"]
        if self.protocol == "thesis":
            positive += ["runs", "batches"]
            if self.warmup_runs >= self.runs:
                raise ValueError("warm-up runs (%d) must be fewer than runs (%d)" % (self.warmup_runs, self.runs))
            if self.warmup_batches >= self.batches:
                raise ValueError(
                    "warm-up batches (%d) must be fewer than batches per run (%d)" % (self.warmup_batches, self.batches))
        else:
            positive += ["min_batches", "max_batches"]
            if self.min_batches > self.max_batches:
                raise ValueError("min batches (%d) above max batches (%d)" % (self.min_batches, self.max_batches))
            if not 0 < float(self.ci_rel) < 1:
                raise ValueError("ci_rel must be between 0 and 1 (got %r)" % self.ci_rel)
            if not 0 <= float(self.min_seconds) < 1e6:
                raise ValueError("min seconds must be >= 0 (got %r)" % self.min_seconds)
        for key in positive:
            if int(getattr(self, key)) < 1:
                raise ValueError("%s must be >= 1 (got %r)" % (key.replace("_", " "), getattr(self, key)))
        for key in ("warmup_runs", "warmup_batches"):
            if int(getattr(self, key)) < 0:
                raise ValueError("%s must be >= 0 (got %r)" % (key.replace("_", " "), getattr(self, key)))

    def measured_batches(self):
        """How many timed batches the protocol keeps (the ceiling for `adaptive`)."""
        if self.protocol == "thesis":
            return (self.runs - self.warmup_runs) * (self.batches - self.warmup_batches)
        return self.max_batches

    def to_dict(self):
        return dict((key, getattr(self, key)) for key in FIELDS)

    @classmethod
    def from_dict(cls, data):
        data = dict((k, v) for k, v in data.items() if k in FIELDS)
        return cls(**data)

    def args(self):
        """The agent's command-line options for this protocol (all plain strings)."""
        out = []
        for key in FIELDS:
            value = getattr(self, key)
            if value is not None:
                out += ["--" + key.replace("_", "-"), str(value)]
        return out

    def __repr__(self):
        return "Protocol(%s)" % ", ".join("%s=%r" % kv for kv in self.to_dict().items())


def median(values):
    """The median (mean of the middle two for an even count); None for no values."""
    xs = sorted(values)
    n = len(xs)
    if not n:
        return None
    mid = n // 2
    return xs[mid] if n % 2 else (xs[mid - 1] + xs[mid]) / 2.0


def percentile(values, q):
    """The q-th percentile (0..100) with linear interpolation (numpy's default); None if empty."""
    xs = sorted(values)
    if not xs:
        return None
    pos = (len(xs) - 1) * q / 100.0
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def median_ci_ranks(n, confidence=CONFIDENCE):
    """0-based ranks (lo, hi) of the order-statistic CI of the median, or None if n is too small.

    Coverage of [x_(l), x_(n+1-l)] (1-based) is 1 - 2 P(B <= l - 1), B ~ Binomial(n, 1/2); take
    the largest l whose coverage is still >= confidence. Log-space, so n in the thousands is fine.
    """
    alpha_half = (1.0 - confidence) / 2.0
    log_half_n = n * math.log(0.5)
    cdf = 0.0
    best = None
    for k in range(0, n // 2 + 1):  # cdf = P(B <= k)
        cdf += math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + log_half_n)
        if cdf <= alpha_half:
            best = k + 1  # l = k + 1 keeps P(B <= l - 1) <= alpha/2
        else:
            break
    if best is None:
        return None
    return best - 1, n - best


def median_ci(values, confidence=CONFIDENCE, presorted=False):
    """(low, high) bounds of the `confidence` CI of the median, or None when n is too small."""
    xs = values if presorted else sorted(values)
    ranks = median_ci_ranks(len(xs), confidence)
    if ranks is None:
        return None
    return xs[ranks[0]], xs[ranks[1]]


def summarize(values, confidence=CONFIDENCE):
    """The figures a benchmark reports for a list of seconds-per-batch samples."""
    xs = sorted(values)
    n = len(xs)
    if not n:
        return {"n": 0, "median_s": None, "p90_s": None, "mean_s": None, "std_s": None,
                "min_s": None, "max_s": None, "ci_low_s": None, "ci_high_s": None, "ci_rel": None}
    mean = sum(xs) / float(n)
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else 0.0
    med = median(xs)
    ci = median_ci(xs, confidence, presorted=True)
    return {
        "n": n,
        "median_s": med,
        "p90_s": percentile(xs, 90),
        "mean_s": mean,
        "std_s": std,
        "min_s": xs[0],
        "max_s": xs[-1],
        "ci_low_s": ci[0] if ci else None,
        "ci_high_s": ci[1] if ci else None,
        "ci_rel": relative_halfwidth(med, ci),
        "confidence": confidence,
    }


def relative_halfwidth(center, ci):
    """The largest distance from the median to a CI bound, relative to the median."""
    if ci is None or not center:
        return None
    return max(center - ci[0], ci[1] - center) / float(center)


def expected_pass_batches(protocol, latency_s, cv=0.02):
    """Batches one pass of a protocol is expected to run at `latency_s` s/batch, warm-up included.

    `protocol` is a Protocol or its dict. thesis: runs x batches. adaptive, on a steady device:
    warm-up plus the largest of the floor (min_batches), the minimum duration (min_seconds /
    latency_s) and the count at which the median's CI reaches +-ci_rel for a coefficient of
    variation `cv` (n ~ (1.96 * 1.2533 * cv / ci_rel)^2), capped by max_batches. A drift restarts
    the count, so for a drifting device this is a lower bound (for planning and ETAs).
    """
    p = protocol if isinstance(protocol, dict) else protocol.to_dict()
    if p.get("protocol") == "thesis":
        return int(p["runs"]) * int(p["batches"])
    need = (1.96 * 1.2533 * cv / float(p["ci_rel"])) ** 2
    duration = float(p.get("min_seconds") or 0) / latency_s if latency_s else 0
    timed = min(max(int(p["min_batches"]), int(math.ceil(duration)), int(math.ceil(need))), int(p["max_batches"]))
    return int(p.get("warmup_batches") or 0) + timed


def mann_kendall_z(values):
    """Mann-Kendall trend statistic Z (normal approximation, ties ignored); 0 for < 3 values."""
    n = len(values)
    if n < 3:
        return 0.0
    s = 0
    for i in range(n - 1):
        for j in range(i + 1, n):
            s += (values[j] > values[i]) - (values[j] < values[i])
    var = n * (n - 1) * (2 * n + 5) / 18.0
    if s == 0:
        return 0.0
    return (s - 1 if s > 0 else s + 1) / math.sqrt(var)


def sen_slope(values):
    """Theil-Sen slope: the median of the pairwise slopes (per step)."""
    slopes = [(values[j] - values[i]) / float(j - i) for i in range(len(values) - 1)
              for j in range(i + 1, len(values))]
    return median(slopes) or 0.0


def sen_slope_bound(values, z=1.0):
    """The larger magnitude of the two ends of Sen's slope's confidence interval at normal quantile z.

    The interval is the usual distribution-free one: the pairwise slopes, sorted, at ranks
    (N - C) / 2 and (N + C) / 2 with N pairs and C = z x sqrt(Var(S)) (S the Mann-Kendall statistic).
    """
    n = len(values)
    slopes = sorted((values[j] - values[i]) / float(j - i) for i in range(n - 1) for j in range(i + 1, n))
    if not slopes:
        return 0.0
    c = z * math.sqrt(n * (n - 1) * (2 * n + 5) / 18.0)
    lo = int(max(0, math.floor((len(slopes) - c) / 2.0)))
    hi = int(min(len(slopes) - 1, math.ceil((len(slopes) + c) / 2.0)))
    return max(abs(slopes[lo]), abs(slopes[hi]))


TREND_BLOCKS = 10  # the drift tests run over this many block medians (robust, and O(1) per check)
TREND_Z = 2.58     # a drift is a Mann-Kendall trend at two-sided 1% (checked often: few false alarms) ...
TREND_SPAN = 1.0   # ... whose Sen slope moves the block medians by more than the tolerance over the kept span
WINDOW_SHIFT = 1.0  # a step counts when the last two windows' medians differ by more than the tolerance
WINDOW_CONFIDENCE = 0.999  # ... and their 99.9% median CIs are disjoint (checked ~50 times a run: few false alarms)
BOUND_Z = 1.0      # steady: the end of Sen's slope's +-1 sigma interval, projected, within the tolerance


class AdaptiveStop(object):
    """The `adaptive` stop rule: feed samples with add(seconds, elapsed); done() says when to stop.

    Everything is judged against the tolerance tol = ci_rel x the median of the kept samples
    (what the result promises), on TREND_BLOCKS block medians of the kept samples in arrival
    order. Medians only, so spikes and heavy-tailed jitter (a shared VM, a preempted batch) move
    nothing, and a swing that goes up and comes back is no trend.

    done() is True only when every condition holds (else the protocol keeps timing):
    - `min_batches` samples kept, and `min_seconds` of timing elapsed since the first kept batch
      (a drift restarts that clock: what is kept must span the minimum duration on its own);
    - the `confidence` CI of the median of the kept samples lies within +-ci_rel of it;
    - no drift; a drift must be statistically AND practically significant:
      (a) a step: the last two windows of `window()` samples have disjoint 99.9% median CIs AND their
          medians differ by more than tol (interference started or stopped, a clock change);
          it discards all but the last window;
      (b) a ramp: Mann-Kendall finds a trend in the block medians (|Z| >= 2.58) AND Theil-Sen's
          slope of them, projected over the kept span (9 block steps), exceeds tol; it discards
          the older half of the kept samples.
      What a drift discards was warm-up after all; `drifts` counts the events, `discarded` the
      samples;
    - steady: the drift is bounded, not merely unproven: the larger end of Sen's slope's +-1 sigma
      interval (sen_slope_bound), per second, times everything timed so far (max of the kept span
      and the whole elapsed time, discarded part included), is within tol. A device that has
      drifted for E seconds must show a rate that would not move the figure by tol in another E.
      This is what keeps a warming Jetson (clocks ramping, then thermal throttling: a monotone
      drift over minutes, each window too short to prove it) from stopping on a ramp, while a
      steady device passes it at the floors.
    `reason` is `converged` or `ceiling` (max_batches timed in all, kept or discarded).
    """

    def __init__(self, ci_rel=0.01, min_batches=30, max_batches=2500, confidence=CONFIDENCE, min_seconds=0.0):
        self.ci_rel = float(ci_rel)
        self.min_batches = int(min_batches)
        self.max_batches = int(max_batches)
        self.min_seconds = float(min_seconds or 0.0)
        self.confidence = confidence
        self.kept = []      # in arrival order
        self.sorted = []    # the same, sorted
        self.stamps = []    # elapsed seconds at the end of each kept sample
        self.since = 0.0    # elapsed seconds when the first kept sample started
        self.timed = 0      # every timed batch, discarded ones included
        self.discarded = 0
        self.drifts = 0
        self.elapsed = 0.0
        self.reason = None
        self.last_check = 0

    def add(self, seconds, elapsed=None):
        """One timed batch; `elapsed` is the wall time since the first timed batch (default: the sum)."""
        self.kept.append(seconds)
        bisect.insort(self.sorted, seconds)
        self.timed += 1
        self.elapsed = self.elapsed + seconds if elapsed is None else float(elapsed)
        self.stamps.append(self.elapsed)

    def converged(self):
        """True when the CI of the median is within +-ci_rel (regardless of the floor and drift)."""
        ci = median_ci(self.sorted, self.confidence, presorted=True)
        rel = relative_halfwidth(median(self.sorted), ci)
        return rel is not None and rel <= self.ci_rel

    def tolerance(self):
        """What a drift must exceed to matter: ci_rel x the median of the kept samples."""
        return self.ci_rel * abs(median(self.sorted) or 0.0)

    def blocks(self):
        """(block medians, index of the first sample in them): TREND_BLOCKS blocks, fewer below 30."""
        n = len(self.kept)
        count = TREND_BLOCKS if n >= 3 * TREND_BLOCKS else n // 3
        if count < 3:
            return [], n
        size = n // count
        start = n - size * count
        return [median(self.kept[start + b * size:start + (b + 1) * size]) for b in range(count)], start

    def window(self):
        """Samples per step-test window: a quarter of the kept ones, at least half the floor (>= 8)."""
        return max(8, self.min_batches // 2, len(self.kept) // 4)

    def drift(self):
        """`window` (a step), `trend` (a ramp) or None; see the class docstring. Discards nothing."""
        w = self.window()
        if len(self.kept) >= 2 * w:
            older, newer = self.kept[-2 * w:-w], self.kept[-w:]
            ci_old, ci_new = median_ci(older, WINDOW_CONFIDENCE), median_ci(newer, WINDOW_CONFIDENCE)
            if ci_old and ci_new and (ci_new[0] > ci_old[1] or ci_new[1] < ci_old[0]):
                if abs(median(newer) - median(older)) > WINDOW_SHIFT * self.tolerance():
                    return "window"
        if len(self.kept) < 3 * TREND_BLOCKS:
            return None
        blocks, _ = self.blocks()
        if abs(mann_kendall_z(blocks)) >= TREND_Z:
            if abs(sen_slope(blocks)) * (len(blocks) - 1) > TREND_SPAN * self.tolerance():
                return "trend"
        return None

    def drift_bound(self):
        """The drift the kept samples cannot rule out (see the class docstring), in seconds."""
        blocks, start = self.blocks()
        if not blocks:
            return 0.0  # below 9 samples there is nothing to judge: the floors are the user's choice
        span_s = self.stamps[-1] - (self.stamps[start - 1] if start else self.since)
        if span_s <= 0:
            return float("inf")
        steps = len(blocks) - 1
        per_second = sen_slope_bound(blocks, BOUND_Z) * steps / span_s
        return per_second * max(span_s, self.elapsed)

    def steady(self):
        return self.drift_bound() <= self.tolerance()

    def _discard_before(self, keep):
        dropped = len(self.kept) - keep
        self.since = self.stamps[dropped - 1]
        self.kept = self.kept[-keep:]
        self.stamps = self.stamps[-keep:]
        self.sorted = sorted(self.kept)
        self.discarded += dropped
        self.drifts += 1
        self.last_check = len(self.kept)

    def done(self):
        if self.timed >= self.max_batches:
            self.reason = "ceiling"
            return True
        n = len(self.kept)
        if n < self.min_batches or self.elapsed - self.since < self.min_seconds:
            return False
        # checking costs O(n): do it every ~2% of the samples (and at once when the floors are met)
        if self.last_check and n - self.last_check < max(1, n // 50):
            return False
        self.last_check = n
        kind = self.drift()
        if kind == "window":  # a step: what came before the last window is another regime
            self._discard_before(self.window())
            return False
        if kind == "trend":
            self._discard_before(len(self.kept) - len(self.kept) // 2)
            return False
        if self.converged() and self.steady():
            self.reason = "converged"
            return True
        return False

    def report(self):
        """The summary's view of the stop: kept and discarded batches, drifts, why it stopped."""
        return {"batches": len(self.kept), "reason": self.reason, "converged": self.reason == "converged",
                "timed": self.timed, "discarded": self.discarded, "drifts": self.drifts,
                "seconds": self.elapsed, "seconds_kept": self.elapsed - self.since}


MIN_POWER_SAMPLES = 10  # the adaptive power pass keeps at least this many power samples


class PowerStop(object):
    """The adaptive POWER pass' own stop rule (it does not repeat the latency pass' batch count).

    Power samples (mW of the chosen figure, with their time since the pass started) go to
    add_sample(), every timed batch to add_batch(). done() is True when
    - `max_batches` batches were timed (`ceiling`), or
    - at least `min_batches` batches were timed and the samples satisfy AdaptiveStop's rule on
      their own: >= `min_samples` kept, `min_seconds` since the last drift, the CI of the median
      power within +-ci_rel, and the same drift guard (window and trend, practically significant
      only; a Jetson's power rises as it warms up, like its latency drifts) -> `converged`.
    """

    def __init__(self, ci_rel=0.01, min_batches=30, max_batches=2500, min_seconds=0.0,
                 min_samples=MIN_POWER_SAMPLES, confidence=CONFIDENCE):
        self.min_batches = int(min_batches)
        self.max_batches = int(max_batches)
        self.samples = AdaptiveStop(ci_rel, max(int(min_samples), 3), 1 << 62, confidence, min_seconds)
        self.batches = 0
        self.reason = None

    def add_batch(self):
        self.batches += 1

    def add_sample(self, value, elapsed):
        self.samples.add(value, elapsed)

    def done(self):
        if self.batches >= self.max_batches:
            self.reason = "ceiling"
            return True
        if self.batches < self.min_batches or not self.samples.done():
            return False
        self.reason = "converged"
        return True

    def report(self):
        """Like AdaptiveStop.report(), for the power samples, plus the batches this pass timed."""
        out = self.samples.report()
        out.update(reason=self.reason, converged=self.reason == "converged", batches_timed=self.batches,
                   samples=out.pop("batches"), samples_seen=out.pop("timed"))
        return out
