"""core.pareto: the thesis fronts, tolerances, ties, missing values, and the hypervolume."""

from __future__ import annotations

import itertools
import random

import pytest

from core.counting import count_params
from core.errors import InputError
from core.pareto import (
    DEFAULT_OBJECTIVES,
    Objective,
    Tolerance,
    dominates,
    front_2d,
    hypervolume,
    pareto_front,
    parse_objective,
    parse_tolerance,
)
from core.reference import THESIS_TABLE1, thesis_results
from core.study import arch_of

MAX, MIN = "max", "min"


def test_thesis_front_as_published_has_35_rows_with_all_of_table1():
    rows = thesis_results()
    assert len(rows) == 54
    result = pareto_front(rows, DEFAULT_OBJECTIVES)
    front = {r["arch_id"] for r in result.front}
    assert len(front) == 35
    assert set(THESIS_TABLE1) <= front
    assert len(THESIS_TABLE1) == 9
    # Table 1 is a strict subset: the plain front is not Table 1 (docs/architecture.md, Figures and the thesis)
    assert len(front - set(THESIS_TABLE1)) == 26
    assert not result.excluded and not result.ties
    assert "plain dominance" in result.describe() and "35 of 54" in result.describe()


def test_thesis_front_over_exact_params_has_39_rows():
    rows = thesis_results()
    exact = [{**r, "params_m": count_params(arch_of(r)) / 1e6} for r in rows]
    # the published figures are the exact counts rounded to 0.1M, every one of them
    assert all(round(e["params_m"], 1) == r["params_m"] for e, r in zip(exact, rows))
    published = {r["arch_id"] for r in pareto_front(rows).front}
    exact_front = {r["arch_id"] for r in pareto_front(exact).front}
    assert len(exact_front) == 39
    assert exact_front - published == {"7-7-4@24", "6-8-4@12", "8-6-4@12", "7-7-4@12"}
    assert published <= exact_front


def _row(name, **values):
    return {"arch_id": name, **values}


def test_plain_dominance_and_directions():
    objs = (Objective("acc", MAX), Objective("lat", MIN))
    assert dominates((2, 1), (1, 2), objs)
    assert dominates((2, 1), (2, 2), objs)  # equal on one, better on the other
    assert not dominates((2, 2), (2, 2), objs)  # identical: no
    assert not dominates((3, 3), (2, 2), objs)  # a trade-off: no
    rows = [_row("a", acc=90, lat=1), _row("b", acc=95, lat=2), _row("c", acc=94, lat=2.5), _row("d", acc=89, lat=1)]
    front = pareto_front(rows, objs)
    assert [r["arch_id"] for r in front.front] == ["a", "b"]
    assert [r["on_front"] for r in front.rows] == [True, True, False, False]


def test_ties_are_all_on_the_front_and_reported():
    objs = (Objective("acc", MAX), Objective("lat", MIN))
    rows = [_row("a", acc=95, lat=1), _row("b", acc=95, lat=1), _row("c", acc=90, lat=2)]
    result = pareto_front(rows, objs)
    assert [r["arch_id"] for r in result.front] == ["a", "b"]
    assert [[r["arch_id"] for r in g] for g in result.ties] == [["a", "b"]]
    assert "identical points" in result.describe()


def test_missing_values_are_excluded_and_counted():
    objs = (Objective("acc", MAX), Objective("lat", MIN))
    rows = [_row("a", acc=95, lat=None), _row("b", acc=float("nan"), lat=1), _row("c", acc=90, lat=2),
            _row("d", lat=0.5), _row("e", acc="n/a", lat=1)]
    result = pareto_front(rows, objs)
    assert [r["arch_id"] for r in result.front] == ["c"]
    assert [r["arch_id"] for r in result.excluded] == ["a", "b", "d", "e"]
    assert "4 row(s) excluded" in result.describe()


def test_absolute_and_relative_tolerances():
    objs = (Objective("acc", MAX), Objective("lat", MIN))
    # b is 0.05 points less accurate but much faster; c is 0.05 more accurate, 4% slower than a
    rows = [_row("a", acc=97.00, lat=1.00), _row("b", acc=96.95, lat=0.50), _row("c", acc=97.05, lat=1.04)]
    assert {r["arch_id"] for r in pareto_front(rows, objs).front} == {"a", "b", "c"}
    # accuracy within 0.1 counts as "no worse" and not as "better": b now dominates a and c
    name, tol = parse_tolerance("acc=0.1")
    assert (name, tol) == ("acc", Tolerance(0.1, relative=False))
    result = pareto_front(rows, objs, {name: tol})
    assert [r["arch_id"] for r in result.front] == ["b"]
    assert "acc 0.1 (absolute)" in result.describe()
    # latency within 5% of the compared value: c's 4% is no longer a loss, so c dominates a
    name, tol = parse_tolerance("lat=5%")
    assert tol == Tolerance(0.05, relative=True)
    result = pareto_front(rows, objs, {name: tol})
    assert {r["arch_id"] for r in result.front} == {"b", "c"}
    assert "lat 5% (relative)" in result.describe()


@pytest.mark.parametrize("text", ["acc", "acc=", "=1", "acc=x", "acc=-1", "acc=inf%"])
def test_bad_tolerances(text):
    with pytest.raises(InputError):
        parse_tolerance(text)


def test_objective_parsing_and_checks():
    assert parse_objective("accuracy:max") == Objective("accuracy", MAX)
    assert parse_objective("latency_s") == Objective("latency_s", MIN)
    with pytest.raises(InputError):
        parse_objective("accuracy:up")
    with pytest.raises(InputError):
        pareto_front([], (Objective("a"), Objective("a")))
    with pytest.raises(InputError, match="not an objective"):
        pareto_front([], (Objective("a"),), {"b": Tolerance(1)})


def test_front_2d_is_sorted_along_x():
    rows = thesis_results()
    x, y = Objective("latency_s", MIN), Objective("accuracy", MAX)
    result = front_2d(rows, x, y)
    lat = [r["latency_s"] for r in result.front]
    acc = [r["accuracy"] for r in result.front]
    assert lat == sorted(lat) and acc == sorted(acc)  # a staircase: slower only when more accurate
    assert result.front[0]["arch_id"] in ("3-9-6@12", "4-6-8@12")
    assert result.front[-1]["arch_id"] == "6-4-8@36"  # the most accurate


def test_hypervolume_2d_by_hand():
    objs = (Objective("acc", MAX), Objective("lat", MIN))
    rows = [_row("a", acc=3, lat=1), _row("b", acc=1, lat=0.5), _row("c", acc=2, lat=2)]  # c dominated
    # minimisation frame: points (-3, 1), (-1, .5); reference (0, 3)
    # area = 3*(3-1) + 1*(1-0.5) = 6.5
    assert hypervolume(rows, objs, {"acc": 0, "lat": 3}) == pytest.approx(6.5)
    # points not better than the reference add nothing
    assert hypervolume(rows, objs, {"acc": 0, "lat": 0.75}) == pytest.approx(1 * 0.25)
    with pytest.raises(InputError):
        hypervolume(rows, objs, {"acc": 0})


def _hv_inclusion_exclusion(points, ref):
    """The textbook oracle: the union of boxes [p, ref] by inclusion-exclusion (small sets only)."""
    total = 0.0
    for k in range(1, len(points) + 1):
        for subset in itertools.combinations(points, k):
            corner = [max(p[d] for p in subset) for d in range(len(ref))]
            vol = 1.0
            for c, r in zip(corner, ref):
                vol *= max(0.0, r - c)
            total += (-1) ** (k + 1) * vol
    return total


@pytest.mark.parametrize("dims", [2, 3, 4])
def test_hypervolume_matches_inclusion_exclusion(dims):
    rng = random.Random(dims)
    objs = tuple(Objective(f"o{d}", MIN) for d in range(dims))
    for _ in range(20):
        points = [tuple(round(rng.uniform(0, 1), 2) for _ in range(dims)) for _ in range(rng.randint(1, 9))]
        ref = (1.0,) * dims
        rows = [{f"o{d}": p[d] for d in range(dims)} for p in points]
        expected = _hv_inclusion_exclusion(points, ref)
        assert hypervolume(rows, objs, {f"o{d}": 1.0 for d in range(dims)}) == pytest.approx(expected, abs=1e-12)


def test_hypervolume_of_front_equals_that_of_all_rows():
    rows = thesis_results()
    ref = {"accuracy": 95.0, "params_m": 4.0, "latency_s": 3.0, "power_w": 5.0}
    front = pareto_front(rows).front
    hv_front = hypervolume(front, DEFAULT_OBJECTIVES, ref)
    assert hv_front > 0
    assert hv_front == pytest.approx(hypervolume(rows, DEFAULT_OBJECTIVES, ref))
    # dropping a front row loses volume
    assert hypervolume(front[1:], DEFAULT_OBJECTIVES, ref) < hv_front


def test_reference_point_and_column_checks():
    from core.pareto import check_columns, parse_reference

    objs = (Objective("acc", MAX), Objective("lat", MIN))
    assert parse_reference(["acc=90", "lat = 3"], objs) == {"acc": 90.0, "lat": 3.0}
    assert parse_reference([], objs) == {}
    with pytest.raises(InputError, match="missing lat"):
        parse_reference(["acc=90"], objs)
    with pytest.raises(InputError, match="bad reference"):
        parse_reference(["acc=high", "lat=3"], objs)
    rows = [_row("a", acc=90, lat=None), _row("b", acc=91, lat=2)]
    check_columns(rows, ["acc", "lat"])  # one missing value is not a typo
    with pytest.raises(InputError, match="no row has a value for 'latency'"):
        check_columns(rows, ["latency"])
