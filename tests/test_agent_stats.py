"""core.latency: the protocol definitions and the statistics the agent reports."""

import math
import random

import numpy as np
import pytest

from core.latency import AdaptiveStop, Protocol, median, median_ci, median_ci_ranks, percentile, summarize


def test_median_and_p90_agree_with_numpy():
    rng = random.Random(1)
    for n in (1, 2, 3, 10, 101, 1350):
        xs = [rng.lognormvariate(0, 0.3) for _ in range(n)]
        assert median(xs) == pytest.approx(float(np.median(xs)))
        assert percentile(xs, 90) == pytest.approx(float(np.percentile(xs, 90)))


def _coverage(n, lo, hi):
    """Exact coverage of [x_(lo), x_(hi)] (0-based ranks) for the median of a continuous law."""
    return sum(math.comb(n, k) for k in range(lo + 1, hi + 1)) / 2 ** n


@pytest.mark.parametrize("n", [6, 7, 10, 25, 100, 1350, 2500])
def test_median_ci_ranks_are_the_tightest_with_95_percent_coverage(n):
    lo, hi = median_ci_ranks(n)
    assert lo + hi == n - 1  # symmetric
    assert _coverage(n, lo, hi) >= 0.95
    if lo + 1 <= hi - 1:  # one rank tighter would fall short
        assert _coverage(n, lo + 1, hi - 1) < 0.95


def test_too_few_samples_have_no_ci():
    assert median_ci_ranks(5) is None
    assert median_ci([1.0, 2.0]) is None
    assert summarize([0.5])["ci_rel"] is None
    assert summarize([])["median_s"] is None


def test_median_ci_covers_the_true_median_about_95_percent_of_the_time():
    rng = random.Random(7)
    hits = 0
    trials = 400
    for _ in range(trials):
        xs = [rng.expovariate(1.0) for _ in range(40)]
        lo, hi = median_ci(xs)
        hits += lo <= math.log(2) <= hi
    assert 0.92 <= hits / trials <= 0.995


def test_adaptive_stop_converges_on_steady_samples_and_respects_floor_and_ceiling():
    rng = random.Random(3)
    stop = AdaptiveStop(ci_rel=0.01, min_batches=30, max_batches=5000)
    n = 0
    while not stop.done():
        stop.add(1.0 + rng.gauss(0, 0.01))
        n += 1
    assert stop.reason == "converged" and n >= 30
    lo, hi = median_ci(stop.sorted, presorted=True)
    assert hi / median(stop.sorted) - 1 <= 0.01 and 1 - lo / median(stop.sorted) <= 0.01

    noisy = AdaptiveStop(ci_rel=0.001, min_batches=5, max_batches=50)
    n = 0
    while not noisy.done():
        noisy.add(rng.uniform(0.5, 1.5))
        n += 1
    assert noisy.reason == "ceiling" and n == 50


def test_protocol_defaults_are_the_thesis_and_reject_bad_values():
    p = Protocol("thesis")
    assert (p.batch, p.runs, p.batches, p.warmup_runs, p.warmup_batches) == (64, 50, 50, 20, 5)
    assert p.measured_batches() == 30 * 45
    assert Protocol.from_dict(p.to_dict()).to_dict() == p.to_dict()
    assert Protocol("adaptive").ci_rel == 0.01
    for bad in ({"runs": 2, "warmup_runs": 2}, {"batch": 0}, {"warmup_batches": -1}):
        with pytest.raises(ValueError):
            Protocol("thesis", **bad)
    with pytest.raises(ValueError, match="unknown protocol"):
        Protocol("fast")
    with pytest.raises(ValueError, match="min batches"):
        Protocol("adaptive", min_batches=10, max_batches=5)
