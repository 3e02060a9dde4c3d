"""core.counting.count_many (the batch path, issue 12) against the cell-by-cell exact path.

`network_cost` walks the network cell by cell (itself checked against torch models in
tests/test_counting.py); count_many, count_params and count_macs use per-(channels, genotype)
tables extrapolated with integers. They must agree bit for bit everywhere in the K-L-M space.
"""

import itertools
import random

import pytest

from core.arch import Arch
from core.counting import _block_tables, _genotype, count_macs, count_many, count_params, network_cost
from core.errors import InputError
from core.genotypes import GENOTYPES
from core.limits import MAX_BLOCK


def exact(arch):
    cost = network_cost(arch.channels, arch.K, arch.L, arch.M, _genotype(arch.genotype))
    return cost.params, cost.macs


def random_archs(n, seed):
    rng = random.Random(seed)
    names = sorted(GENOTYPES)
    return [Arch(rng.randint(1, MAX_BLOCK), rng.randint(1, MAX_BLOCK), rng.randint(1, MAX_BLOCK),
                 rng.choice(range(8, 513, 8)), rng.choice(names)) for _ in range(n)]


def test_thousands_of_random_archs_every_genotype_bit_identical():
    _block_tables.cache_clear()
    archs = random_archs(4000, seed=12)
    assert {a.genotype for a in archs} == set(GENOTYPES)  # SNAS_mild, SNAS_mild_edge_all and the rest
    got = count_many(archs)
    assert len(got) == len(archs)
    mismatches = [(a.id, g, exact(a)) for a, g in zip(archs, got) if g != exact(a)]
    assert mismatches == []
    assert all(type(p) is int and type(m) is int for p, m in got)
    # the single-architecture API returns the same figures (it goes through count_many's tables)
    for arch, (params, macs) in zip(archs[:300], got):
        assert (count_params(arch), count_macs(arch)) == (params, macs)


@pytest.mark.parametrize("name", sorted(GENOTYPES))
def test_small_blocks_and_odd_channels_every_genotype(name):
    """K, L, M = 1, 2, 3 (the points the tables are built from and the first extrapolated one) and 64,
    at odd and tiny channel counts where halving (factorized reduce) floors."""
    archs = [Arch(k, l, m, c, name) for k, l, m in itertools.product((1, 2, 3, 4, MAX_BLOCK), repeat=3)
             for c in (1, 3, 7, 12, 36, 512)]
    assert count_many(archs) == [exact(a) for a in archs]


def test_thesis_6_6_6_at_36_and_order_kept():
    archs = [Arch(6, 6, 6, 36), Arch(1, 1, 1, 8), Arch(6, 6, 6, 36, "SNAS_mild_edge_all"), Arch(64, 64, 64, 512)]
    got = count_many(archs)
    assert got[0][0] == 2_663_542 and got[2][0] == 2_663_542  # the thesis' exact figure
    assert got == [exact(a) for a in archs]
    assert count_many([]) == []
    assert count_many(iter(archs)) == got  # any iterable, one pass


def test_unknown_genotype_is_input_error():
    with pytest.raises(InputError, match="unknown genotype"):
        count_many([Arch(2, 2, 2, 8), Arch(2, 2, 2, 8, "Foo")])


def test_past_the_tables_falls_back_to_the_exact_path():
    arch = Arch(3, 2, 1, 8)
    object.__setattr__(arch, "K", MAX_BLOCK + 6)  # an object that skipped Arch's bounds check
    assert count_many([arch]) == [exact(arch)]
    assert (count_params(arch), count_macs(arch)) == exact(arch)


def test_extrapolated_counts_equal_a_torch_model():
    """Past the three points per block the tables are built from, against an instantiated model."""
    torch = pytest.importorskip("torch")
    from core.models import build_network
    from tests.test_counting import torch_macs, torch_params

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for arch in (Arch(7, 4, 6, 3), Arch(5, 6, 4, 2, "SNAS_mild_edge_all")):
            net = build_network(arch)
            assert count_many([arch]) == [(torch_params(net), torch_macs(net))], arch.id
    finally:
        torch.set_num_threads(threads)
