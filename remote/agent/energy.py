"""Energy per batch: the integral of power over each batch's own interval (trapezoid rule).

Python 3.6 compatible, standard library only. Power samples are (t, mW) with t from
time.perf_counter(), the clock the batch timers read, so a batch's [t0, t1] and the samples line
up. Between two samples power is taken as linear (the trapezoid rule), so a batch that starts or
ends between samples gets the interpolated value at its edges; a batch not covered by samples on
both sides has no energy (it is counted, not guessed).

energy per image = energy per batch / batch size; reported as the median with its 95% confidence
interval (core.latency's distribution-free interval), in joules: `energy_j`, `energy_j_ci`.
"""

import bisect

from core.latency import median, median_ci


def power_at(ts, mw, t):
    """Power (mW) at time t, linear between the samples around it; None outside the samples."""
    if not ts or t < ts[0] or t > ts[-1]:
        return None
    i = bisect.bisect_left(ts, t)
    if ts[i] == t:
        return mw[i]
    t_a, t_b = ts[i - 1], ts[i]
    return mw[i - 1] + (mw[i] - mw[i - 1]) * (t - t_a) / (t_b - t_a)


def integrate(ts, mw, t0, t1):
    """Energy in joules over [t0, t1] from samples (ts ascending, mW); None when not covered."""
    if t1 < t0:
        t0, t1 = t1, t0
    p0, p1 = power_at(ts, mw, t0), power_at(ts, mw, t1)
    if p0 is None or p1 is None:
        return None
    lo = bisect.bisect_right(ts, t0)
    hi = bisect.bisect_left(ts, t1)
    points_t = [t0] + [ts[i] for i in range(lo, hi)] + [t1]
    points_p = [p0] + [mw[i] for i in range(lo, hi)] + [p1]
    mj = 0.0
    for k in range(1, len(points_t)):
        mj += (points_p[k] + points_p[k - 1]) * 0.5 * (points_t[k] - points_t[k - 1])
    return mj / 1000.0


def per_batch(ts, mw, intervals):
    """[joules or None] for each (t0, t1) batch interval."""
    return [integrate(ts, mw, t0, t1) for t0, t1 in intervals]


def summarize_energy(ts, mw, intervals, batch):
    """The energy fields of the summary: median J per image, its 95% CI, counts."""
    joules = per_batch(ts, mw, intervals)
    covered = [j / float(batch) for j in joules if j is not None]
    out = {
        "energy_j": None, "energy_j_ci": None, "energy_batches": len(covered),
        "energy_batches_uncovered": len(joules) - len(covered),
        "energy_method": "trapezoid integral of power over each batch's interval, / batch",
    }
    if covered:
        out["energy_j"] = median(covered)
        ci = median_ci(covered)
        out["energy_j_ci"] = list(ci) if ci is not None else None
        out["energy_batch_j_median"] = median([j for j in joules if j is not None])
    return out
