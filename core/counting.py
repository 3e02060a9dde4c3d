"""Parameters and multiply-accumulates of a K-L-M network, computed from op shapes (no torch).

Counted the DARTS way: every trainable parameter except the auxiliary head (which only exists
while training). MACs are those of the convolutions and the classifier for one 32x32 image in
inference (pooling, BatchNorm, additions and the `none` edges' x*0 are not counted; the
auxiliary head is not run). The formulas mirror core.ops / core.network one module at a time;
tests/test_counting.py checks them against instantiated torch models. `network_cost` walks the
cells; `count_many` (and count_params / count_macs through it) reads per-(channels, genotype)
integer tables built from seven such walks, bit-identical (tests/test_counting_many.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

from core.arch import Arch
from core.genotypes import Edge, Genotype, cell_nodes
from core.limits import MAX_BLOCK
from core.models import resolve_genotype

STEM_MULTIPLIER = 3
IMAGE_SIZE = 32
NUM_CLASSES = 10


@dataclass(frozen=True)
class Cost:
    """Parameters and MACs of a module; `size` is its output's spatial side."""

    params: int
    macs: int
    size: int

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(self.params + other.params, self.macs + other.macs, other.size)


def _conv(c_in: int, c_out: int, k: int, size: int, stride: int = 1, padding: int = 0,
          dilation: int = 1, groups: int = 1) -> Cost:
    out = (size + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    weights = c_out * (c_in // groups) * k * k
    return Cost(weights, weights * out * out, out)


def _bn(c: int, size: int) -> Cost:
    return Cost(2 * c, 0, size)


def _relu_conv_bn(c_in: int, c_out: int, size: int) -> Cost:
    return _conv(c_in, c_out, 1, size) + _bn(c_out, size)


def _factorized_reduce(c_in: int, c_out: int, size: int) -> Cost:
    half = c_out // 2
    conv_1 = _conv(c_in, half, 1, size, stride=2)
    conv_2 = _conv(c_in, half, 1, size - 1, stride=2)  # reads x[:, :, 1:, 1:]
    return Cost(conv_1.params + conv_2.params, conv_1.macs + conv_2.macs, conv_1.size) + _bn(c_out, conv_1.size)


def _sep_conv(c: int, k: int, stride: int, size: int) -> Cost:
    pad = k // 2
    first = _conv(c, c, k, size, stride, pad, groups=c)
    first = first + _conv(c, c, 1, first.size) + _bn(c, first.size)
    second = _conv(c, c, k, first.size, 1, pad, groups=c)
    second = second + _conv(c, c, 1, second.size) + _bn(c, second.size)
    return first + second


def _dil_conv(c: int, k: int, stride: int, size: int) -> Cost:
    depthwise = _conv(c, c, k, size, stride, padding=2 * (k // 2), dilation=2, groups=c)
    return depthwise + _conv(c, c, 1, depthwise.size) + _bn(c, depthwise.size)


def _pooled_size(size: int, stride: int) -> int:
    return (size - 1) // stride + 1  # 3x3, padding 1


@lru_cache(maxsize=None)
def op_cost(name: str, c: int, stride: int, size: int) -> Cost:
    """One edge operation of core.ops, applied to a `size` x `size` input with `c` channels."""
    if name == "none":
        return Cost(0, 0, _pooled_size(size, stride))
    if name == "skip_connect":
        return Cost(0, 0, size) if stride == 1 else _factorized_reduce(c, c, size)
    if name in ("max_pool_3x3", "avg_pool_3x3"):
        return _bn(c, _pooled_size(size, stride))
    kind, _, kernel = name.rpartition("_")
    k = int(kernel.split("x")[0])
    if kind == "sep_conv":
        return _sep_conv(c, k, stride, size)
    if kind == "dil_conv":
        return _dil_conv(c, k, stride, size)
    raise ValueError(f"no cost formula for operation {name!r}")


def _cell_cost(nodes: list[list[Edge]], multiplier: int, c_pp: int, c_p: int, c: int, reduction: bool,
               reduction_prev: bool, size_pp: int, size_p: int) -> tuple[Cost, int]:
    """Cost of one cell and its output channel count."""
    if reduction_prev:
        cost = _factorized_reduce(c_pp, c, size_pp)
    else:
        cost = _relu_conv_bn(c_pp, c, size_pp)
    cost = cost + _relu_conv_bn(c_p, c, size_p)
    params, macs = cost.params, cost.macs  # summed as ints: no Cost per edge (count_many's tables)
    sizes = [size_p, size_p]
    for node in nodes:
        node_size = size_p
        for _, name, source in node:
            stride = 2 if reduction and source < 2 else 1
            edge = op_cost(name, c, stride, sizes[source])
            params, macs = params + edge.params, macs + edge.macs
            node_size = edge.size
        if not node:
            node_size = size_p
        sizes.append(node_size)
    out_size = _pooled_size(size_p, 2) if reduction else size_p
    return Cost(params, macs, out_size), multiplier * c


_CELL_CACHE: dict[tuple, tuple[Cost, int]] = {}
_CELL_CACHE_MAX = 200_000
_SHAPES: dict[int, tuple] = {}


def _cell_shapes(genotype: Genotype) -> tuple[str, tuple, tuple]:
    """(a key for the genotype, (normal nodes, multiplier), (reduce nodes, multiplier)), once per genotype object."""
    hit = _SHAPES.get(id(genotype))
    if hit is None or hit[0] is not genotype:
        hit = (genotype, repr(genotype),
               (cell_nodes(genotype.normal, genotype.normal_concat), len(list(genotype.normal_concat))),
               (cell_nodes(genotype.reduce, genotype.reduce_concat), len(list(genotype.reduce_concat))))
        if len(_SHAPES) > 256:
            _SHAPES.clear()
        _SHAPES[id(genotype)] = hit
    return hit[1], hit[2], hit[3]


def _cell_costs(C: int, K: int, L: int, M: int, genotype: Genotype, image_size: int = IMAGE_SIZE):
    """The stem's cost, then each cell's: yields (index, reduction, Cost, output channels, count); -1 is
    the stem. `count` > 1: the `count` cells from `index` on are identical (a block's normal cells once
    their input shapes settle), so a 64-cell block costs like a 3-cell one."""
    reductions = (K, K + L + 1)
    genotype_key, normal, reduce = _cell_shapes(genotype)
    c_curr = STEM_MULTIPLIER * C
    yield -1, False, _conv(3, c_curr, 3, image_size, padding=1) + _bn(c_curr, image_size), c_curr, 1
    c_pp, c_p, c_curr = c_curr, c_curr, C
    size_pp = size_p = image_size
    reduction_prev = False
    if len(_CELL_CACHE) > _CELL_CACHE_MAX:
        _CELL_CACHE.clear()
    cells = K + L + M + 2
    i = 0
    while i < cells:
        reduction = i in reductions
        if reduction:
            c_curr *= 2
        nodes, multiplier = reduce if reduction else normal
        # the cells of a block repeat one shape: each distinct one is costed once (issue 12: importing
        # 100k architectures must not cost every cell of every one)
        key = (genotype_key, multiplier, c_pp, c_p, c_curr, reduction, reduction_prev, size_pp, size_p)
        cached = _CELL_CACHE.get(key)
        if cached is None:
            cached = _CELL_CACHE[key] = _cell_cost(nodes, multiplier, c_pp, c_p, c_curr, reduction, reduction_prev,
                                                   size_pp, size_p)
        cell, c_out = cached
        count = 1
        if not reduction and not reduction_prev and (c_p, c_out, size_p, cell.size) == (c_pp, c_p, size_pp, size_p):
            count = min([r for r in reductions if r > i] + [cells]) - i  # a fixed point until the next reduction
        yield i, reduction, cell, c_out, count
        reduction_prev = reduction
        c_pp, c_p = c_p, c_out
        size_pp, size_p = size_p, cell.size
        i += count


def network_cost(C: int, K: int, L: int, M: int, genotype: Genotype, num_classes: int = NUM_CLASSES,
                 image_size: int = IMAGE_SIZE) -> Cost:
    """Parameters (without the auxiliary head) and inference MACs of core.network.Network."""
    params = macs = c_p = 0
    for _, _, cost, c_out, count in _cell_costs(C, K, L, M, genotype, image_size):
        params, macs, c_p = params + cost.params * count, macs + cost.macs * count, c_out
    classifier = c_p * num_classes
    return Cost(params + classifier + num_classes, macs + classifier, 1)


def block_macs(arch: Arch) -> tuple[int, int, int, int, int]:
    """MACs of (stem, block 1, reduction 1, block 2, reduction 2 + block 3 + classifier) for one image.

    The parts the latency predictor (core.predict) uses as features; they sum to count_macs.
    """
    K, L = arch.K, arch.L
    parts = [0, 0, 0, 0, 0]
    c_p = 0
    for i, _, cost, c_out, count in _cell_costs(arch.channels, K, L, arch.M, resolve_genotype(arch.genotype)):
        part = 0 if i < 0 else 1 if i < K else 2 if i == K else 3 if i <= K + L else 4
        parts[part] += cost.macs * count  # a run of identical cells stays within one block
        c_p = c_out
    parts[4] += c_p * NUM_CLASSES
    return tuple(parts)  # type: ignore[return-value]


@lru_cache(maxsize=4096)
def _registered_cost(C: int, K: int, L: int, M: int, genotype_name: str) -> Cost:
    return network_cost(C, K, L, M, _genotype(genotype_name))


@lru_cache(maxsize=256)
def _genotype(name: str) -> Genotype:
    return resolve_genotype(name)


# Fast exact counting (issue 12: 100k imported architectures). For one (C, genotype) the network's
# cost is exactly separable and affine in each of K, L and M from 2 on:
#   cost(K, L, M) = cost(1, 1, 1) + d_K(K) + d_L(L) + d_M(M),  d(1) = 0,  d(n) = d(2) + (n - 2) * step.
# Why: a cell's output (channels, size) depends only on its own position (multiplier * its block's
# channels; the input size, pooled in a reduction), never on its inputs, so a cell's cost depends
# only on what the two cells before it are. A block of n >= 2 normal cells is its first two cells and
# n - 2 copies of one fixed-point cell (inputs and output all multiplier * c at one size); whatever
# follows the block (the reduction, the classifier) sees the same inputs for every n >= 2, and the
# first cell of the next block reads the reduction and the block's last normal cell, whose shapes do
# not depend on n at all. So block j's length only moves block j and the cell right after it. Seven
# exact network_cost calls per (C, genotype) give every coefficient; everything is integer
# arithmetic, so the result is bit-identical to network_cost (tests/test_counting_many.py).


@lru_cache(maxsize=1024)  # ~200 ints each; recomputing one takes well under a millisecond
def _block_tables(C: int, genotype_name: str) -> tuple:
    """(table_K, table_L, table_M, shift) for one (C, genotype): params + (MACs << shift) of
    cost(K, L, M) is table_K[K] + table_L[L] + table_M[M] for K, L, M in 1..MAX_BLOCK.

    table_K[n] holds cost(1, 1, 1) + d_K(n), the others d_L(n) and d_M(n) (slot 0 is None).
    Packing both counts in one integer halves the lookups and additions per architecture; `shift`
    leaves room above any params sum the tables can make, so the low bits are exactly params.
    """
    genotype = _genotype(genotype_name)
    base = network_cost(C, 1, 1, 1, genotype)
    lines = []  # per axis: d(2) and the step, as (params, MACs)
    for axis in range(3):
        klm = [[1, 1, 1], [1, 1, 1]]
        klm[0][axis], klm[1][axis] = 2, 3  # block `axis` with 2, then 3 cells, the others with 1
        two, three = (network_cost(C, K, L, M, genotype) for K, L, M in klm)
        lines.append(((two.params - base.params, two.macs - base.macs), (three.params - two.params, three.macs - two.macs)))
    # d is affine from 2 on, so its largest |params| over 2..MAX_BLOCK is at an end
    bound = base.params + sum(max(abs(first[0]), abs(first[0] + (MAX_BLOCK - 2) * step[0])) for first, step in lines)
    shift = max(64, bound.bit_length() + 1)
    tables = []
    for axis, (first, step) in enumerate(lines):
        one = base.params + (base.macs << shift) if axis == 0 else 0
        packed_first, packed_step = one + first[0] + (first[1] << shift), step[0] + (step[1] << shift)
        # packing is linear: a + (b << s) + k * (c + (d << s)) == (a + k c) + ((b + k d) << s)
        tables.append((None, one) + tuple(packed_first + k * packed_step for k in range(MAX_BLOCK - 1)))
    return tuple(tables) + (shift,)


def count_many(archs: Iterable[Arch]) -> list[tuple[int, int]]:
    """(params, MACs) of each architecture, exactly `(count_params(a), count_macs(a))`, in order.

    Under 1 us per architecture once each (channels, genotype) is costed (seven exact network
    costs per pair, cached): 100k distinct K-L-M@C in ~0.1 s where the cell-by-cell path takes
    ~2 s (bench/counting_many.py). An unknown genotype is an InputError
    (core.models.resolve_genotype): no partial list.
    """
    out: list[tuple[int, int]] = []
    append = out.append
    groups: dict[tuple[int, str], tuple] = {}
    for arch in archs:
        key = (arch.channels, arch.genotype)
        tables = groups.get(key)
        if tables is None:
            table_k, table_l, table_m, shift = _block_tables(*key)
            tables = groups[key] = (table_k, table_l, table_m, (1 << shift) - 1, shift)
        table_k, table_l, table_m, mask, shift = tables
        try:
            both = table_k[arch.K] + table_l[arch.L] + table_m[arch.M]
        except (IndexError, TypeError):
            append(_counts(arch))
            continue
        append((both & mask, both >> shift))
    return out


def _counts(arch: Arch) -> tuple[int, int]:
    """(params, MACs) of one architecture from count_many's tables (a few lookups when cached)."""
    table_k, table_l, table_m, shift = _block_tables(arch.channels, arch.genotype)
    try:
        both = table_k[arch.K] + table_l[arch.L] + table_m[arch.M]
    except (IndexError, TypeError):  # past MAX_BLOCK or 0: only an object that skipped Arch's checks
        cost = _registered_cost(arch.channels, arch.K, arch.L, arch.M, arch.genotype)
        return cost.params, cost.macs
    return both & ((1 << shift) - 1), both >> shift


def arch_cost(arch: Arch) -> Cost:
    """Cost of an `Arch` (count_many's tables, cached by C and genotype); an unknown genotype is an
    InputError. `_registered_cost` is the cell-by-cell path they are tested against."""
    params, macs = _counts(arch)
    return Cost(params, macs, 1)


def count_params(arch: Arch) -> int:
    """Trainable parameters except the auxiliary head (the DARTS / thesis count)."""
    return _counts(arch)[0]


def count_macs(arch: Arch) -> int:
    """Multiply-accumulates of the convolutions and classifier for one 32x32 image."""
    return _counts(arch)[1]
