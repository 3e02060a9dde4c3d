"""Weights across code bases (issue 14): the thesis' NetworkCIFAR layout both ways, the `_ops.6`
trap, ONNX vs torch, TorchScript, and the CLI's `import-checkpoint` / `export-model`.

The thesis side is `tests/thesis_layout.py`: an independent re-implementation of its key layout
(written from the DARTS layout, not from core/)."""

import numpy as np
import pytest
import torch

from core.arch import parse_arch
from core.genotypes import SNAS_mild_edge_all
from core.models import build_network
from core.store import Store
from tests.fixtures.cli import assert_one_line_error
from tests.thesis_layout import ThesisNetworkCIFAR

ARCH = "2-1-1@8"  # reductions at cells 2 and 4: both cell kinds, both reduction_prev paths


def _randomise(model, seed=0):
    """Non-trivial weights and BatchNorm statistics, so a misplaced tensor changes the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.dtype.is_floating_point:
                if name.endswith("running_var"):
                    t.copy_(0.5 + torch.rand(t.shape, generator=g))
                else:
                    t.copy_(torch.randn(t.shape, generator=g) * 0.3)
    return model.eval()


def _thesis_net(aux=True, seed=0):
    return _randomise(ThesisNetworkCIFAR(8, 10, 2, 1, 1, aux, SNAS_mild_edge_all), seed)


def _images(n=4):
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def test_thesis_weights_round_trip_through_the_cli(cli, tmp_path):
    thesis = _thesis_net()
    x = _images()
    with torch.no_grad():
        want = thesis(x)[0]
    # a checkpoint dict holding the state dict, as training scripts save them, with a DataParallel prefix
    src = tmp_path / "weights.pt"
    torch.save({"epoch": 600, "state_dict": {"module." + k: v for k, v in thesis.state_dict().items()}}, src)

    r = cli("import-checkpoint", src, ARCH, "--accuracy", "95.5", "--note", "thesis run", "--json")
    assert r.returncode == 0, r.stderr
    run = r.json()
    assert run["status"] == "done" and run["arch_id"] == ARCH and run["accuracy"] == 95.5
    info = run["imported"]
    assert info["layout"] == "thesis" and info["file_genotype"] == "SNAS_mild_edge_all" and info["keys_renamed"] > 0
    store = Store(cli.store)
    # klmtui's compact network, loaded strictly, computes exactly what the thesis' network computes
    ours = build_network(parse_arch(ARCH)).eval()
    ours.load_state_dict(torch.load(store.resolve(run["checkpoint"]), weights_only=True), strict=True)
    with torch.no_grad():
        assert torch.allclose(ours(x)[0], want, atol=1e-6, rtol=0)
    # bench picks these weights
    from remote.bench import latest_checkpoint

    assert latest_checkpoint(store, ARCH)["id"] == run["id"]

    # and back: export in the thesis layout, strict load into a fresh thesis network, same outputs
    out = tmp_path / "back.pt"
    r = cli("export-model", run["id"], "--format", "thesis", "-o", out, "--json")
    assert r.returncode == 0, r.stderr
    assert r.json()["genotype"] == "SNAS_mild_edge_all"
    fresh = _thesis_net(seed=7)
    fresh.load_state_dict(torch.load(out, weights_only=True), strict=True)
    with torch.no_grad():
        assert torch.equal(fresh(x)[0], want)
    # ONNX of the imported run through the CLI: onnxruntime computes the thesis network's logits
    ort = pytest.importorskip("onnxruntime")
    r = cli("export-model", ARCH, "--format", "onnx", "-o", tmp_path / "m.onnx", "--batch", "4", "--json")
    assert r.returncode == 0, r.stderr
    assert r.json()["run"] == run["id"] and r.json()["opset"] <= 13
    got = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"input": x.numpy()})[0]
    assert np.abs(got - want.numpy()).max() <= 1e-5
    # klmtui's own weights do not load into the thesis' code as they are (why the export exists)
    with pytest.raises(RuntimeError):
        _thesis_net().load_state_dict(ours.state_dict(), strict=True)


def test_edge_all_genotype_needs_no_renaming_and_takes_compact_weights(tmp_path):
    from core.interop import load_strict, match_state_dict, read_state_dict

    thesis = _thesis_net()
    edge_all = parse_arch(ARCH + "/SNAS_mild_edge_all")
    matched = match_state_dict(thesis.state_dict(), edge_all)
    assert matched.layout == "thesis" and matched.renamed == 0
    # compact (DARTS-style) weights into the edge_all id: renamed by edge, same outputs
    compact = _randomise(build_network(parse_arch(ARCH)), seed=3)
    matched = match_state_dict(compact.state_dict(), edge_all)
    assert matched.layout == "compact" and matched.renamed > 0
    x = _images()
    with torch.no_grad():
        got = load_strict(edge_all, matched.state, auxiliary=True).eval()(x)[0]
        assert torch.allclose(got, compact(x)[0], atol=1e-6, rtol=0)
    # a checkpoint that pickles Python objects is refused, not unpickled
    import argparse

    bad = tmp_path / "args.pt"
    torch.save({"args": argparse.Namespace(lr=0.025), "state_dict": thesis.state_dict()}, bad)
    from core.errors import InputError

    with pytest.raises(InputError, match="Python objects"):
        read_state_dict(bad)


def test_the_ops6_trap_is_refused(cli, tmp_path):
    """In SNAS_mild's reduction cell `_ops.6` exists in both layouts with one shape, as different edges."""
    thesis = _thesis_net()
    state = thesis.state_dict()
    compact = build_network(parse_arch(ARCH)).eval()
    key = "cells.2._ops.6.op.1.weight"  # the first reduction cell: max-pool BN
    assert key in state and key in compact.state_dict() and state[key].shape == compact.state_dict()[key].shape
    # the trap itself: a non-strict load by name silently takes the thesis' _ops.6 (another edge)
    result = compact.load_state_dict(state, strict=False)
    assert result.unexpected_keys and torch.equal(compact.state_dict()[key], state[key])
    # klmtui maps by edge: compact _ops.6 (max-pool of input 0 into node 3) is the thesis' _ops.9
    from core.interop import match_state_dict

    matched = match_state_dict(state, parse_arch(ARCH))
    assert torch.equal(matched.state[key], state["cells.2._ops.9.op.1.weight"])
    assert not torch.equal(matched.state[key], state[key])

    # a file renamed by position (the thesis' keys cut to the compact names) is refused, naming the trap
    naive = {k: v for k, v in state.items()
             if not (k.startswith(("cells.2._ops.", "cells.4._ops.")) and int(k.split(".")[3]) >= 8)}
    bad = tmp_path / "naive.pt"
    torch.save(naive, bad)
    line = assert_one_line_error(cli("import-checkpoint", bad, ARCH))
    assert "_ops.6" in line and "different edge" in line, line
    # klmtui's compact weights declared as the thesis layout: refused too
    from core.errors import InputError

    with pytest.raises(InputError, match="thesis layout"):
        match_state_dict(compact.state_dict(), parse_arch(ARCH), "thesis")
    # nothing was registered
    assert Store(cli.store).all("runs") == []


def test_import_refuses_other_shapes_and_garbage(cli, tmp_path):
    wide = tmp_path / "wide.pt"
    torch.save(_randomise(ThesisNetworkCIFAR(12, 10, 2, 1, 1, True, SNAS_mild_edge_all)).state_dict(), wide)
    line = assert_one_line_error(cli("import-checkpoint", wide, ARCH))
    assert "shape" in line, line
    from core.errors import InputError
    from core.interop import read_state_dict

    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(InputError, match="not a readable"):
        read_state_dict(junk)
    torch.save({"epoch": 3, "note": "no weights"}, junk)
    with pytest.raises(InputError, match="holds no state_dict"):
        read_state_dict(junk)
    assert "no training run" in assert_one_line_error(cli("export-model", "t-nothing", "--format", "onnx",
                                                          "-o", tmp_path / "m.onnx"))


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_onnx_matches_torch(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from core.interop import ONNX_OPSET, export_onnx, export_torchscript

    arch = parse_arch("1-1-1@8/SNAS_mild_edge_all")  # with `none` edges, to see them dropped
    net = _randomise(build_network(arch))
    out = export_onnx(arch, net.state_dict(), tmp_path / "m.onnx", batch=4)
    graph = onnx.load(str(out))
    onnx.checker.check_model(graph)
    assert graph.opset_import[0].version == ONNX_OPSET <= 13  # TensorRT 8.2 (JetPack 4.6)
    ops = {n.op_type for n in graph.graph.node}
    assert "Mul" not in ops, ops  # the `none` edges (x * 0) are dropped
    assert [o.name for o in graph.graph.output] == ["logits"]  # no auxiliary head
    x = _images(4)
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        want = net(x)[0].numpy()
    assert np.abs(got - want).max() <= 1e-5
    ts = torch.jit.load(str(export_torchscript(arch, net.state_dict(), tmp_path / "m.ts", batch=4)))
    with torch.no_grad():
        assert torch.allclose(ts(x), torch.from_numpy(want), atol=1e-6, rtol=0)


def test_darts_genotypes_have_one_layout():
    """DARTS' own genotypes have no edge_all form: DARTS' NetworkCIFAR keys are klmtui's as they are."""
    from core.errors import InputError
    from core.interop import match_state_dict, to_thesis_layout

    arch = parse_arch("1-1-1@8/DARTS_V2")
    state = build_network(arch).state_dict()
    matched = match_state_dict(state, arch)
    assert matched.layout == "compact" and matched.renamed == 0
    assert list(to_thesis_layout(state, arch)) == list(state)
    with pytest.raises(InputError, match="only one key layout"):
        match_state_dict(state, arch, "thesis")
