"""Analytic counting (core.counting, no torch) against instantiated torch models, and against the
thesis: every Params (M) of Appendix A and the exact 2,663,542 of 6-6-6@36."""

import csv
import random

import pytest

from core.arch import Arch
from core.counting import count_macs, count_params
from core.errors import InputError
from core.genotypes import GENOTYPES
from core.reference import THESIS_CSV

torch = pytest.importorskip("torch")

from core.models import build_network  # noqa: E402
from tests.test_network import _one_thread  # noqa: E402,F401  (autouse: torch on one thread)


def torch_params(net) -> int:
    """The DARTS count on a real model: trainable parameters outside the auxiliary head."""
    return sum(p.numel() for name, p in net.named_parameters()
               if p.requires_grad and not name.startswith("auxiliary_head."))


def torch_macs(net) -> int:
    """MACs of every Conv2d and Linear in an eval forward of one 32x32 image (forward hooks)."""
    total = []

    def conv_hook(module, inputs, output):
        kh, kw = module.kernel_size
        total.append(output.numel() * (module.in_channels // module.groups) * kh * kw)

    def linear_hook(module, inputs, output):
        total.append(output.numel() * module.in_features)

    hooks = []
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            hooks.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, torch.nn.Linear):
            hooks.append(module.register_forward_hook(linear_hook))
    net.eval()
    with torch.no_grad():
        net(torch.zeros(1, 3, 32, 32))
    for hook in hooks:
        hook.remove()
    return sum(total)


def appendix_a_rows():
    with THESIS_CSV.open(newline="") as f:
        return list(csv.DictReader(f))


def test_snas_mild_6_6_6_at_36_has_exactly_2663542_parameters():
    arch = Arch(6, 6, 6, 36)
    assert count_params(arch) == 2_663_542
    assert torch_params(build_network(arch)) == 2_663_542
    # The 14-edge form the thesis ran has the same parameters: `none` edges hold none.
    assert count_params(Arch(6, 6, 6, 36, "SNAS_mild_edge_all")) == 2_663_542


def test_every_params_figure_of_appendix_a():
    rows = appendix_a_rows()
    assert len(rows) == 54
    mismatches = []
    for row in rows:
        arch = Arch(int(row["K"]), int(row["L"]), int(row["M"]), int(row["channels"]))
        if round(count_params(arch) / 1e6, 1) != float(row["params_m"]):
            mismatches.append((arch.id, count_params(arch), row["params_m"]))
    assert mismatches == []


def test_thesis_set_analytic_equals_torch():
    """All 54 thesis configurations built with torch: params and MACs equal the analytic counts."""
    for row in appendix_a_rows():
        arch = Arch(int(row["K"]), int(row["L"]), int(row["M"]), int(row["channels"]))
        net = build_network(arch)
        assert torch_params(net) == count_params(arch), arch.id
        assert torch_macs(net) == count_macs(arch), arch.id


def _random_archs(n=25, seed=20210129):
    rng = random.Random(seed)
    names = sorted(GENOTYPES)
    return [Arch(rng.randint(1, 5), rng.randint(1, 5), rng.randint(1, 5), rng.randint(1, 12), rng.choice(names))
            for _ in range(n)]


@pytest.mark.parametrize("arch", _random_archs(), ids=str)
def test_random_archs_analytic_equals_torch(arch):
    net = build_network(arch)
    assert torch_params(net) == count_params(arch)
    assert torch_macs(net) == count_macs(arch)


@pytest.mark.parametrize("name", sorted(GENOTYPES))
def test_every_genotype_drop_none_counts_the_same(name):
    arch = Arch(2, 1, 2, 6, name)
    lean = build_network(arch, drop_none=True)
    assert torch_params(lean) == count_params(arch)
    assert torch_macs(lean) == count_macs(arch)


def test_compact_and_edge_all_count_the_same():
    for level in ("mild", "moderate", "aggressive"):
        a, b = Arch(3, 4, 5, 16, f"SNAS_{level}"), Arch(3, 4, 5, 16, f"SNAS_{level}_edge_all")
        assert count_params(a) == count_params(b)
        assert count_macs(a) == count_macs(b)


def test_unknown_genotype_is_input_error():
    with pytest.raises(InputError, match="unknown genotype"):
        count_params(Arch(6, 6, 6, 36, "Foo"))
