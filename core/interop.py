"""Weights across code bases: the thesis' / DARTS' / SNAS' `NetworkCIFAR` <-> klmtui, ONNX, TorchScript.

Key layouts. Both code bases name modules alike (`stem`, `cells.<i>.preprocess0/1`,
`cells.<i>._ops.<j>`, `auxiliary_head`, `classifier`); `<j>` is the edge's position in the
genotype's edge list. So the layouts differ only where the genotypes differ:

- `compact` (DARTS style, 2 edges per node): klmtui's `SNAS_mild`, DARTS' `NetworkCIFAR` run with a
  compact genotype;
- `thesis` (`*_edge_all`, every predecessor of a node is an edge; unused ones are `none` and hold no
  weights): what the thesis trained (`--arch SNAS_edge_all`), and klmtui's `SNAS_mild_edge_all`.

Moving weights between them renames `_ops.<j>` by *edge* (node, op, input), never by position:
in the reduction cell of SNAS_mild, `_ops.6` exists in both layouts with the same shape
(a max-pool's BatchNorm) but is a different edge (max_pool_3x3 from input 0 into node 3 in the
compact layout, max_pool_3x3 from input 1 into node 2 in the thesis layout), so a non-strict
load by name would load the wrong weights without a word. Every import here is strict: the file
must hold exactly the keys of one layout, with the same shapes, or it is refused with one line.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from core.arch import Arch
from core.errors import InputError

LAYOUTS = ("auto", "thesis", "compact")
EXPORT_FORMATS = ("thesis", "onnx", "torchscript")
# TensorRT 8.2 (JetPack 4.6) parses ONNX opsets 7..13.
ONNX_OPSET = 13
_OPS_KEY = re.compile(r"^cells\.(\d+)\._ops\.(\d+)\.(.+)$")
_WRAPPERS = ("state_dict", "model", "model_state_dict", "network", "net")
_AUX = "auxiliary_head."


# --------------------------------------------------------------------------- genotype layouts


def edge_all_twin(genotype: str) -> str | None:
    """The `*_edge_all` genotype with the same cells as `genotype` (itself if it is one), or None."""
    from core.genotypes import GENOTYPES

    if genotype.endswith("_edge_all"):
        return genotype
    twin = genotype + "_edge_all"
    return twin if twin in GENOTYPES else None


def compact_twin(genotype: str) -> str:
    """The compact genotype of an `*_edge_all` one (itself otherwise)."""
    return genotype.removesuffix("_edge_all")


def layout_genotype(arch: Arch, layout: str) -> str:
    """The genotype whose key layout `layout` ('thesis' or 'compact') is, for `arch`'s cells."""
    if layout == "compact":
        return compact_twin(arch.genotype)
    twin = edge_all_twin(arch.genotype)
    # a genotype without an edge_all form (DARTS_V1/V2) is what DARTS' NetworkCIFAR itself builds
    return twin or arch.genotype


@dataclass(frozen=True)
class EdgeInfo:
    """One edge of a cell: what it computes, for messages and for mapping by edge."""

    node: int
    op: str
    source: int

    def __str__(self) -> str:
        return f"{self.op} from state {self.source} into node {self.node}"


def cell_edges(genotype: str, reduction: bool) -> dict[int, EdgeInfo]:
    """Edge index -> EdgeInfo for one cell kind of a registered genotype."""
    from core.genotypes import cell_nodes, get_genotype

    g = get_genotype(genotype)
    edges, concat = (g.reduce, g.reduce_concat) if reduction else (g.normal, g.normal_concat)
    return {index: EdgeInfo(node, name, source)
            for node, node_edges in enumerate(cell_nodes(edges, concat))
            for index, name, source in node_edges}


def edge_mapping(from_genotype: str, to_genotype: str, reduction: bool) -> dict[int, int]:
    """Index in `from_genotype`'s cell -> index of the same edge (node, op, input) in `to_genotype`'s,
    for every edge that is not `none`. ValueError when the cells are not the same cells."""
    src, dst = cell_edges(from_genotype, reduction), cell_edges(to_genotype, reduction)
    by_edge: dict[EdgeInfo, int] = {}
    for index, edge in dst.items():
        if edge.op != "none":
            if edge in by_edge:
                raise ValueError(f"{to_genotype}: two edges are {edge}")
            by_edge[edge] = index
    mapping = {}
    for index, edge in src.items():
        if edge.op == "none":
            continue
        if edge not in by_edge:
            raise ValueError(f"{from_genotype} and {to_genotype} differ: {edge} has no twin")
        mapping[index] = by_edge.pop(edge)
    if by_edge:
        raise ValueError(f"{from_genotype} and {to_genotype} differ: {next(iter(by_edge))} has no twin")
    return mapping


def expected_shapes(arch: Arch, genotype: str, auxiliary: bool) -> dict[str, tuple[int, ...]]:
    """State-dict key -> shape of `arch` built with `genotype` (on the meta device: no memory)."""
    import torch

    from core.models import build_network

    with torch.device("meta"):
        model = build_network(replace(arch, genotype=genotype), auxiliary=auxiliary)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def rename_keys(state: Mapping[str, Any], arch: Arch, from_genotype: str, to_genotype: str) -> dict[str, Any]:
    """`state` with `cells.<i>._ops.<j>` renamed edge by edge from one genotype's layout to the other's."""
    if from_genotype == to_genotype:
        return dict(state)
    from core.network import reduction_indices

    reductions = set(reduction_indices(arch.K, arch.L, arch.M))
    maps = {r: edge_mapping(from_genotype, to_genotype, r) for r in (False, True)}
    out = {}
    for key, value in state.items():
        m = _OPS_KEY.match(key)
        if m:
            cell, index, rest = int(m.group(1)), int(m.group(2)), m.group(3)
            key = f"cells.{cell}._ops.{maps[cell in reductions][index]}.{rest}"
        out[key] = value
    return out


# --------------------------------------------------------------------------- reading a file


def read_state_dict(path: str | Path) -> dict[str, Any]:
    """A state_dict from a file: a plain one, or a checkpoint dict holding one (`state_dict`,
    `model`, ...); a `module.` prefix (DataParallel) is dropped. InputError otherwise."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise InputError(f"no checkpoint file {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt, truncated, pickled objects, not a torch file: torch raises anything
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if "weights only" in str(exc).lower():  # pickled Python objects (argparse args, a whole model)
            first = ("it holds Python objects besides tensors, which klmtui does not unpickle; "
                     "save model.state_dict() (or a dict of tensors) instead")
        raise InputError(f"{path} is not a readable torch state_dict: {first[:160]}") from None
    state = data
    if isinstance(data, dict) and not _is_state(data):
        for key in _WRAPPERS:
            if isinstance(data.get(key), dict) and _is_state(data[key]):
                state = data[key]
                break
    if not isinstance(state, dict) or not state or not _is_state(state):
        raise InputError(f"{path} holds no state_dict (name -> tensor), nor a checkpoint dict with one")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _is_state(data: dict) -> bool:
    import torch

    return bool(data) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in data.items())


def file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- matching


def _mismatch(state: Mapping[str, Any], shapes: Mapping[str, tuple[int, ...]]) -> str | None:
    """The first difference between a state dict and a layout's keys and shapes, or None."""
    missing = sorted(set(shapes) - set(state))
    unexpected = sorted(set(state) - set(shapes))
    if unexpected:
        return f"unexpected key {unexpected[0]}" + (f" (+{len(unexpected) - 1} more)" if len(unexpected) > 1 else "")
    if missing:
        return f"missing key {missing[0]}" + (f" (+{len(missing) - 1} more)" if len(missing) > 1 else "")
    for key, shape in shapes.items():
        got = tuple(state[key].shape)
        if got != shape:
            return f"{key} has shape {list(got)}, expected {list(shape)}"
    return None


def _trap(state: Mapping[str, Any], arch: Arch, layouts: dict[str, str],
          shapes: dict[str, dict[str, tuple[int, ...]]]) -> str:
    """A note on the keys that exist in both layouts with the same shape but are different edges
    (the `_ops.6` trap): loading by name would take the wrong weights. Empty when there are none."""
    if len(layouts) < 2:
        return ""
    from core.network import reduction_indices

    reductions = set(reduction_indices(arch.K, arch.L, arch.M))
    (a, ga), (b, gb) = layouts.items()
    trapped = []
    for key, value in state.items():
        m = _OPS_KEY.match(key)
        if not m or any(shapes[name].get(key) != tuple(value.shape) for name in layouts):
            continue
        cell, index = int(m.group(1)), int(m.group(2))
        ea = cell_edges(ga, cell in reductions).get(index)
        eb = cell_edges(gb, cell in reductions).get(index)
        if ea != eb:
            trapped.append((f"cells.{cell}._ops.{index}", ea, eb))
    if not trapped:
        return ""
    trapped = sorted(set(trapped), key=lambda t: t[0])
    name, ea, eb = trapped[0]
    more = f" (and {len(trapped) - 1} more)" if len(trapped) > 1 else ""
    return (f"; {name}{more} matches both layouts by name and shape but is a different edge "
            f"({a}: {ea}; {b}: {eb}), so nothing is loaded by name")


@dataclass
class Matched:
    """A state dict recognised as one layout, renamed into klmtui's layout for `arch`."""

    state: dict[str, Any]
    layout: str
    genotype: str  # the genotype whose layout the file had
    auxiliary: bool
    renamed: int  # keys whose name changed


def match_state_dict(state: Mapping[str, Any], arch: Arch, layout: str = "auto") -> Matched:
    """Recognise `state` as the `thesis` or `compact` layout of `arch` (names, shapes, edges) and
    rename it into klmtui's layout for `arch`; InputError (one line) when it is neither, or both."""
    if layout not in LAYOUTS:
        raise InputError(f"unknown layout {layout!r} (known: {', '.join(LAYOUTS)})")
    auxiliary = any(k.startswith(_AUX) for k in state)
    candidates = {name: layout_genotype(arch, name) for name in ("thesis", "compact")}
    if candidates["thesis"] == candidates["compact"]:
        candidates = {"compact": candidates["compact"]}  # DARTS genotypes: one layout
    if layout != "auto" and layout not in candidates:
        raise InputError(f"{arch.genotype} has only one key layout (DARTS' own): use --layout auto")
    tried = candidates if layout == "auto" else {layout: candidates[layout]}
    shapes = {name: expected_shapes(arch, genotype, auxiliary) for name, genotype in candidates.items()}
    fits, problems = [], {}
    for name in tried:
        problem = _mismatch(state, shapes[name])
        if problem is None:
            fits.append(name)
        else:
            problems[name] = problem
    if len(fits) > 1:
        raise InputError(f"the weights fit both the thesis and the compact layout of {arch.id}: "
                         "choose one with --layout")
    if not fits:
        detail = "; ".join(f"{name} layout ({tried[name]}): {p}" for name, p in problems.items())
        raise InputError(f"the weights are not {arch.id}'s: {detail}{_trap(state, arch, candidates, shapes)}")
    (name,) = fits
    genotype = tried[name]
    renamed = rename_keys(state, arch, genotype, arch.genotype)
    changed = sum(1 for a, b in zip(state, renamed) if a != b)
    return Matched(renamed, name, genotype, auxiliary, changed)


def load_strict(arch: Arch, state: Mapping[str, Any], auxiliary: bool, drop_none: bool = False):
    """A klmtui network of `arch` with `state` loaded strictly (InputError on any mismatch)."""
    from core.models import build_network

    model = build_network(arch, auxiliary=auxiliary, drop_none=drop_none)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = " ".join(str(exc).split())[:240]
        raise InputError(f"the weights do not load strictly into {arch.id}: {first}") from None
    return model


def to_thesis_layout(state: Mapping[str, Any], arch: Arch) -> dict[str, Any]:
    """klmtui weights of `arch` renamed into the layout the thesis' `NetworkCIFAR` loads strictly
    (its `*_edge_all` genotype; DARTS genotypes are already DARTS' layout)."""
    return rename_keys(state, arch, arch.genotype, layout_genotype(arch, "thesis"))


# --------------------------------------------------------------------------- export


class _LogitsOnly:
    """Built lazily (torch is imported late): a module returning the logits of an eval network."""

    @staticmethod
    def wrap(model):
        import torch

        class LogitsOnly(torch.nn.Module):
            def __init__(self, net):
                super().__init__()
                self.net = net

            def forward(self, x):
                return self.net(x)[0]

        return LogitsOnly(model).eval()


def inference_model(arch: Arch, state: Mapping[str, Any]):
    """`arch` for deployment: `none` edges dropped, no auxiliary head, eval mode, logits only."""
    plain = {k: v for k, v in state.items() if not k.startswith(_AUX)}
    model = load_strict(arch, plain, auxiliary=False, drop_none=True)
    return _LogitsOnly.wrap(model.eval())


def export_onnx(arch: Arch, state: Mapping[str, Any], out: Path, batch: int = 1, opset: int = ONNX_OPSET) -> Path:
    """ONNX (TorchScript-based exporter, opset <= 13 for TensorRT 8.2), input `input` [batch,3,32,32]
    float32, output `logits` [batch,10]; a fixed batch (what TensorRT engines are built for)."""
    import torch

    model = inference_model(arch, state)
    example = torch.zeros(batch, 3, 32, 32)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, (example,), str(out), opset_version=opset, dynamo=False,
                      input_names=["input"], output_names=["logits"], do_constant_folding=True)
    return out


def export_torchscript(arch: Arch, state: Mapping[str, Any], out: Path, batch: int = 1) -> Path:
    """A traced TorchScript module (logits only, `none` edges dropped)."""
    import torch

    model = inference_model(arch, state)
    out.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch 2.x deprecates tracing; it still works
        traced = torch.jit.trace(model, torch.zeros(batch, 3, 32, 32))
        traced.save(str(out))
    return out


def export_thesis(arch: Arch, state: Mapping[str, Any], out: Path) -> Path:
    """A plain state_dict in the thesis' layout (what its `utils.load` reads)."""
    from core.train import atomic_torch_save

    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_torch_save(to_thesis_layout(state, arch), out)
    return out


# --------------------------------------------------------------------------- the store


def import_checkpoint(store, path: str | Path, arch: Arch, layout: str = "auto", *,
                      accuracy: float | None = None, note: str | None = None) -> dict:
    """Register weights from another code base as a `done` training run of `arch` (so `bench`
    uses them): recognised, renamed and loaded strictly, saved as the run's `model.pt` in
    klmtui's layout. The run's `imported` field says where they came from. Returns the record."""
    from core.jobs import ensure_architecture
    from core.models import resolve_genotype
    from core.store import new_id, now_iso
    from core.train import MODEL, atomic_torch_save

    resolve_genotype(arch.genotype)
    if accuracy is not None and not 0.0 <= float(accuracy) <= 100.0:
        raise InputError(f"--accuracy is a percentage in [0, 100] (got {accuracy})")
    path = Path(path).expanduser().resolve()
    matched = match_state_dict(read_state_dict(path), arch, layout)
    model = load_strict(arch, matched.state, auxiliary=matched.auxiliary)
    ensure_architecture(store, arch)
    run_id = new_id("t-")
    run_dir = store.run_dir(run_id)
    atomic_torch_save(model.state_dict(), run_dir / MODEL)
    stamp = now_iso()
    record = {
        "id": run_id, "arch_id": arch.id, "arch": arch.triple, "K": arch.K, "L": arch.L, "M": arch.M,
        "channels": arch.channels, "genotype": arch.genotype, "seed": None, "profile": "imported",
        "epochs": None, "epoch": 0, "status": "done", "accuracy": accuracy, "best_accuracy": accuracy,
        "checkpoint": store.relative(run_dir / MODEL), "executor": "import", "pid": None, "host": None,
        "created": stamp, "started": None, "finished": stamp, "error": None, "config": {},
        "run_dir": store.relative(run_dir),
        "imported": {"file": str(path), "sha256": file_digest(path), "layout": matched.layout,
                     "file_genotype": matched.genotype, "keys_renamed": matched.renamed,
                     "auxiliary_head": matched.auxiliary, "note": note},
    }
    with store.transaction() as tx:
        tx.insert("runs", record)
    return record


def run_weights(store, ref: str) -> tuple[dict, Arch, dict[str, Any]]:
    """(run record, arch, klmtui state dict) of a training run id, or of an architecture id's latest
    done run that has weights. InputError when there is none."""
    from core.arch import ArchError, parse_arch

    record = store.get("runs", ref)
    if record is None:
        try:
            arch = parse_arch(ref)  # not a run id: an architecture's latest done run
        except ArchError:
            raise InputError(f"no training run {ref!r} in {store.path} (nor is it an architecture K-L-M@C)") from None
        runs = [r for r in store.find("runs", arch_id=arch.id, status="done") if r.get("checkpoint")]
        if not runs:
            raise InputError(f"no training run {ref!r} and no done run of {arch.id} with weights in {store.path}")
        record = max(runs, key=lambda r: (r.get("finished") or "", r.get("created") or ""))
    if not record.get("checkpoint"):
        raise InputError(f"run {record['id']} has no weights yet (status {record.get('status')})")
    from core.study import arch_of

    arch = arch_of(record)
    path = store.resolve(record["checkpoint"])
    return record, arch, read_state_dict(path)


def export_model(store, ref: str, fmt: str, out: str | Path, batch: int = 1) -> dict:
    """Write a run's weights as `thesis` (state_dict in the thesis' layout), `onnx` or `torchscript`."""
    if fmt not in EXPORT_FORMATS:
        raise InputError(f"unknown format {fmt!r} (known: {', '.join(EXPORT_FORMATS)})")
    if batch < 1:
        raise InputError(f"--batch must be >= 1 (got {batch})")
    record, arch, state = run_weights(store, ref)
    out = Path(out)
    if out.is_dir():
        raise InputError(f"-o {out} is a folder: give a file name")
    detail: dict[str, Any]
    if fmt == "thesis":
        export_thesis(arch, state, out)
        detail = {"layout": "thesis", "genotype": layout_genotype(arch, "thesis"),
                  # the thesis' NetworkCIFAR must be built with --auxiliary exactly when the head is there
                  "auxiliary_head": "kept" if any(k.startswith(_AUX) for k in state) else "absent"}
    elif fmt == "onnx":
        export_onnx(arch, state, out, batch=batch)
        detail = {"opset": ONNX_OPSET, "batch": batch, "none_edges": "dropped", "auxiliary_head": "dropped"}
    else:
        export_torchscript(arch, state, out, batch=batch)
        detail = {"batch": batch, "none_edges": "dropped", "auxiliary_head": "dropped"}
    return {"run": record["id"], "arch": arch.id, "format": fmt, "file": str(out.resolve()),
            "bytes": out.stat().st_size, **detail}
