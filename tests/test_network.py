"""The K-L-M network: every genotype trains on CPU, reductions sit where the thesis puts them,
drop path acts in training, and dropping `none` edges leaves inference outputs bit-identical."""

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from core.arch import Arch  # noqa: E402
from core.errors import InputError  # noqa: E402
from core.genotypes import GENOTYPES  # noqa: E402
from core.models import build_network  # noqa: E402
from core.network import Network  # noqa: E402
from core.ops import Zero  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _batch(n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)


def _train_step(net, x, y, lr=0.05):
    """One DARTS-style step: main loss + 0.4 * auxiliary loss, SGD."""
    net.train()
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    logits, logits_aux = net(x)
    loss = F.cross_entropy(logits, y) + 0.4 * F.cross_entropy(logits_aux, y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


@pytest.mark.parametrize("name", sorted(GENOTYPES))
def test_forward_and_training_step_for_every_genotype(name):
    torch.manual_seed(0)
    net = build_network(Arch(1, 1, 1, 8, name))
    net.drop_path_prob = 0.2
    x, y = _batch()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    loss = _train_step(net, x, y)
    assert torch.isfinite(loss)
    changed = [k for k, v in net.state_dict().items() if v.dtype.is_floating_point and not torch.equal(v, before[k])]
    assert any(k.startswith("cells.") and k.endswith("weight") for k in changed)
    assert any(k.startswith("auxiliary_head.") for k in changed)
    net.eval()
    with torch.no_grad():
        logits, logits_aux = net(x)
    assert logits.shape == (2, 10) and logits_aux is None
    assert torch.isfinite(logits).all()


def test_aux_logits_only_when_training_with_auxiliary():
    x, _ = _batch()
    net = Network(8, 10, 1, 2, 1, "SNAS_mild", auxiliary=True)
    net.train()
    logits, logits_aux = net(x)
    assert logits_aux is not None and logits_aux.shape == (2, 10)
    no_aux = Network(8, 10, 1, 2, 1, "SNAS_mild", auxiliary=False)
    no_aux.train()
    assert no_aux(x)[1] is None
    assert not any(k.startswith("auxiliary_head") for k in no_aux.state_dict())


@pytest.mark.parametrize("K,L,M", [(1, 1, 1), (2, 3, 1), (1, 2, 4)])
def test_reductions_at_K_and_K_plus_L_plus_1_and_aux_after_the_second(K, L, M):
    C = 4
    net = Network(C, 10, K, L, M, "SNAS_mild")
    shapes = []
    hooks = [cell.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape))) for cell in net.cells]
    aux_in = []
    net.auxiliary_head.register_forward_hook(lambda m, i, o: aux_in.append(tuple(i[0].shape)))
    net.train()
    net(_batch()[0])
    for h in hooks:
        h.remove()
    assert len(shapes) == K + L + M + 2
    expected = []
    size, channels = 32, C
    for i in range(K + L + M + 2):
        if i in (K, K + L + 1):
            size, channels = size // 2, channels * 2
        expected.append((2, 4 * channels, size, size))
    assert shapes == expected
    assert aux_in == [expected[K + L + 1]]


def test_drop_path_acts_only_in_training():
    torch.manual_seed(1)
    net = Network(8, 10, 1, 1, 1, "SNAS_mild")
    x, _ = _batch(4)
    net.train()
    net.drop_path_prob = 0.0
    plain = net(x)[0].detach()
    net.drop_path_prob = 0.5
    torch.manual_seed(2)
    dropped = net(x)[0].detach()
    assert not torch.equal(plain, dropped)
    net.eval()
    with torch.no_grad():
        a = net(x)[0]
        net.drop_path_prob = 0.0
        b = net(x)[0]
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", sorted(n for n in GENOTYPES if n.startswith("SNAS")))
def test_drop_none_gives_bit_identical_eval_outputs(name):
    torch.manual_seed(3)
    trained = Network(8, 10, 2, 1, 2, name)
    x, y = _batch(4, seed=5)
    trained.drop_path_prob = 0.1
    for _ in range(2):  # non-trivial weights and BN statistics
        _train_step(trained, x, y)
    state = trained.state_dict()

    full = Network(8, 10, 2, 1, 2, name)
    lean = Network(8, 10, 2, 1, 2, name, drop_none=True)
    full.load_state_dict(state)
    lean.load_state_dict(state)  # strict: same keys, `none` holds no parameters
    assert sum(isinstance(m, Zero) for m in lean.modules()) == 0
    if name.endswith("_edge_all"):
        assert sum(isinstance(m, Zero) for m in full.modules()) > 0
    full.eval()
    lean.eval()
    x_test, _ = _batch(3, seed=9)
    with torch.no_grad():
        a, _ = full(x_test)
        b, _ = lean(x_test)
    assert torch.equal(a, b)


def test_drop_none_loads_a_full_checkpoint_without_auxiliary_head():
    full = Network(8, 10, 1, 1, 1, "SNAS_mild_edge_all", auxiliary=True)
    lean = Network(8, 10, 1, 1, 1, "SNAS_mild_edge_all", auxiliary=False, drop_none=True)
    result = lean.load_state_dict(full.state_dict(), strict=False)
    assert result.missing_keys == []
    assert all(k.startswith("auxiliary_head.") for k in result.unexpected_keys)


def test_build_network_turns_bad_genotypes_and_sizes_into_input_errors():
    with pytest.raises(InputError, match="unknown genotype"):
        build_network(Arch(1, 1, 1, 8, "Foo"))
    with pytest.raises(ValueError):
        Network(8, 10, 0, 1, 1, "SNAS_mild")
