"""The latency protocol (thesis section 3.4) and its statistics, shared by the host and the agent.

Pushed to the device with the agent, so this file is Python 3.6 compatible and imports only the
standard library: the agent and the host read the same defaults and compute the same figures.

Protocols:
- `thesis`: batch 64, 50 runs of 50 batches; the first 20 runs and the first 5 batches of every
  run are discarded (warm-up), the rest are the samples (30 x 45 = 1350 batches).
- `adaptive`: after `warmup_batches`, time batch after batch and stop once the 95% confidence
  interval of the median lies within +-`ci_rel` (1%) of the median, with a floor
  (`min_batches`) and a ceiling (`max_batches`) on the number of timed batches.

Timings: `sync` (device time of the forward pass: inputs already on the device, synchronised
before and after) and `thesis` (the thesis' own script: host clock per batch including loading and
preprocessing the images, no synchronize).

The confidence interval of the median is the distribution-free order-statistic interval:
[x_(l), x_(n+1-l)] with l the largest rank such that P(Binomial(n, 1/2) < l) <= (1 - conf)/2.
"""

import bisect
import math

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
    },
}
CONFIDENCE = 0.95
FIELDS = ("protocol", "timing", "batch", "runs", "batches", "warmup_runs", "warmup_batches",
          "min_batches", "max_batches", "ci_rel")


class Protocol(object):
    """A fully resolved protocol: defaults of its kind overridden by whatever is not None."""

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


class AdaptiveStop(object):
    """The `adaptive` stop rule: feed samples with add(); done() once the CI is tight enough.

    Keeps the samples sorted as they arrive (bisect.insort), so checking after every batch is cheap.
    """

    def __init__(self, ci_rel=0.01, min_batches=30, max_batches=2500, confidence=CONFIDENCE):
        self.ci_rel = float(ci_rel)
        self.min_batches = int(min_batches)
        self.max_batches = int(max_batches)
        self.confidence = confidence
        self.sorted = []
        self.reason = None

    def add(self, seconds):
        bisect.insort(self.sorted, seconds)

    def converged(self):
        """True when the CI of the median is within +-ci_rel (regardless of the floor)."""
        ci = median_ci(self.sorted, self.confidence, presorted=True)
        rel = relative_halfwidth(median(self.sorted), ci)
        return rel is not None and rel <= self.ci_rel

    def done(self):
        n = len(self.sorted)
        if n >= self.max_batches:
            self.reason = "ceiling"
            return True
        if n >= self.min_batches and self.converged():
            self.reason = "converged"
            return True
        return False
