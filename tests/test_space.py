"""The thesis sampler (sections 3.2-3.3): defaults reproduce Appendix A's 18 triples plus 5-5-8,
and every knob does what the text says."""

import csv
import subprocess
import sys

import pytest

from core.arch import Arch
from core.counting import count_params
from core.errors import InputError
from core.space import (
    all_triples,
    balanced_start,
    manhattan,
    sample,
    sample_triples,
    spread_out,
    thesis_configurations,
    within_balance,
)
from core.reference import THESIS_CSV
from tests.fixtures.paths import REPO, shared_file


def appendix_a_configurations():
    """Appendix A's configurations, from the project's own copy (core/reference/)."""
    with THESIS_CSV.open(newline="") as f:
        return {(int(r["K"]), int(r["L"]), int(r["M"]), int(r["channels"])) for r in csv.DictReader(f)}


def test_shipped_reference_equals_the_shared_appendix():
    """The shipped table is the spec's (checked where the spec folder is present)."""
    assert THESIS_CSV.read_text(encoding="utf-8") == shared_file("spec/thesis_appendix_a.csv").read_text(encoding="utf-8")
    assert thesis_configurations() == appendix_a_configurations()


def test_defaults_give_the_thesis_triples_plus_5_5_8():
    rows = sample()
    thesis = appendix_a_configurations()
    thesis_triples = {c[:3] for c in thesis}
    triples = {(r.K, r.L, r.M) for r in rows}
    assert len(thesis_triples) == 18
    assert triples == thesis_triples | {(5, 5, 8)}
    assert len(rows) == 57
    assert {r.channels for r in rows} == {12, 24, 36}
    for r in rows:
        assert r.in_thesis == ((r.K, r.L, r.M, r.channels) in thesis)
        assert r.params == count_params(Arch(r.K, r.L, r.M, r.channels))
        assert r.genotype == "SNAS_mild"
    assert [r.triple for r in rows if not r.in_thesis] == ["5-5-8"] * 3


def test_row_dict_keys():
    row = sample()[0].to_dict()
    assert set(row) >= {"arch", "K", "L", "M", "channels", "genotype", "params", "macs", "in_thesis"}
    assert row["arch"] == f"{row['K']}-{row['L']}-{row['M']}"


def test_enumeration_sorted_and_complete():
    triples = all_triples(20, 2)
    assert triples == sorted(triples)
    assert all(sum(t) == 18 and min(t) >= 2 for t in triples)
    # stars and bars: K', L', M' >= 0 summing to 12
    assert len(triples) == 14 * 13 // 2
    assert len(all_triples(11, 1)) == 8 * 7 // 2


def test_balance_is_inclusive():
    triples = all_triples(20, 2)
    kept = within_balance(triples, 6)
    assert (8, 8, 2) in kept and (2, 8, 8) in kept  # spread exactly 6
    assert (9, 7, 2) not in kept
    assert (8, 8, 2) not in within_balance(triples, 5)
    assert within_balance(triples, 0) == [(6, 6, 6)]


def test_start_is_the_balanced_triple():
    assert within_balance(all_triples(20, 2), 6)[balanced_start(within_balance(all_triples(20, 2), 6))] == (6, 6, 6)
    triples = all_triples(23, 2)
    assert triples[balanced_start(triples)] == (7, 7, 7)
    triples = all_triples(21, 2)  # 19 normal cells: 6-6-7, 6-7-6, 7-6-6 tie; the middle one
    assert triples[balanced_start(triples)] == (6, 7, 6)


def test_walk_measures_distance_to_the_last_kept():
    line = [(0, 0, 10), (0, 1, 9), (0, 2, 8), (0, 3, 7), (0, 4, 6), (0, 5, 5)]
    # from the middle (0,2,8): up: (0,3,7) d=2 dropped, (0,4,6) d=4 kept, (0,5,5) d=2 to it: dropped
    assert spread_out(line, 2, 4) == [(0, 0, 10), (0, 2, 8), (0, 4, 6)]
    assert spread_out(line, 2, 0) == line
    assert spread_out(line, 2, 100) == [(0, 2, 8)]


def test_default_walk_keeps_only_well_separated_neighbours():
    candidates = within_balance(all_triples(20, 2), 6)
    start = balanced_start(candidates)
    kept = spread_out(candidates, start, 4)
    up = [t for t in kept if t >= candidates[start]]
    down = sorted((t for t in kept if t <= candidates[start]), reverse=True)
    for walk in (up, down):
        assert all(manhattan(a, b) >= 4 for a, b in zip(walk, walk[1:]))
    assert (5, 5, 8) in kept and manhattan((5, 5, 8), (5, 7, 6)) == 4


def test_parameter_cap_is_exclusive_and_checked_at_params_channels():
    params_666 = count_params(Arch(6, 6, 6, 36))
    at_cap = sample_triples(max_params=params_666)
    assert (6, 6, 6) not in at_cap
    assert (6, 6, 6) in sample_triples(max_params=params_666 + 1)
    assert all(count_params(Arch(*t, 36)) < params_666 for t in at_cap)
    # checked at 12 channels the default cap removes nothing the walk kept
    lenient = {(r.K, r.L, r.M) for r in sample(params_channels=12)}
    assert {(3, 7, 8), (4, 4, 10)} <= lenient
    assert {(3, 7, 8), (4, 4, 10)}.isdisjoint({(r.K, r.L, r.M) for r in sample()})


def test_channels_and_genotype_knobs():
    rows = sample(channels=(16,), genotype="SNAS_mild_edge_all")
    assert {r.channels for r in rows} == {16}
    assert all(not r.in_thesis for r in rows)
    assert all(r.genotype == "SNAS_mild_edge_all" for r in rows)
    darts = sample(genotype="DARTS_V2")
    assert all(not r.in_thesis for r in darts)
    assert len(darts) < len(sample())  # DARTS_V2 cells are heavier: the cap removes more


def test_min_block_and_cells_knobs():
    rows = sample(cells=11, min_block=1, balance=9, min_distance=0, max_params=1e12, channels=(8,))
    assert len(rows) == len(all_triples(11, 1))
    assert min(min(r.K, r.L, r.M) for r in rows) == 1


@pytest.mark.parametrize("kwargs", [
    {"balance": -1}, {"cells": 3}, {"cells": 7}, {"channels": ()}, {"channels": (0, 12)},
    {"min_distance": -1}, {"max_params": 0}, {"min_block": 0}, {"params_channels": 0},
    {"genotype": "Foo"},
])
def test_bad_knobs_are_input_errors(kwargs):
    with pytest.raises(InputError):
        sample(**kwargs)


def test_sampling_needs_no_torch():
    code = "import sys, core.space as s; assert len(s.sample()) == 57; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "False"
