"""Cell genotypes by name: SNAS (mild / moderate / aggressive) and DARTS V1 / V2.

A genotype lists, for the normal and the reduction cell, one `(op_name, input_index)` pair per
edge, plus the nodes concatenated into the cell output. Inputs 0 and 1 are the two previous cells;
input `2 + i` is intermediate node `i`.

Two edge layouts occur (the SNAS repository ships both, genotypes copied from it and from
quark0/darts):
- compact (DARTS style): two edges per intermediate node (8 edges for 4 nodes);
- `*_edge_all` (what the thesis ran): every intermediate node takes ALL its predecessors, so node
  `i` has `2 + i` edges (2 + 3 + 4 + 5 = 14 for 4 nodes); unused edges are `none` (computes x*0).

The thesis code derives the number of nodes from the edge count with the edge_all formula, so the
compact forms crash there. Here the node count comes from the concat list (the last concatenated
node) and the edge layout is recognised from the edge count for that node count
(`cell_nodes`), so both forms build, with identical parameters: `none` edges hold none.

This file is pushed to Jetson devices: Python 3.6 syntax, no torch import.
"""

from collections import namedtuple
from typing import Dict, List, Sequence, Tuple, Union

Genotype = namedtuple("Genotype", "normal normal_concat reduce reduce_concat")

DEFAULT_GENOTYPE = "SNAS_mild"

PRIMITIVES = [
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
]

_CONCAT = [2, 3, 4, 5]

DARTS_V1 = Genotype(
    normal=[
        ("sep_conv_3x3", 1), ("sep_conv_3x3", 0),
        ("skip_connect", 0), ("sep_conv_3x3", 1),
        ("skip_connect", 0), ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 0), ("skip_connect", 2),
    ],
    normal_concat=_CONCAT,
    reduce=[
        ("max_pool_3x3", 0), ("max_pool_3x3", 1),
        ("skip_connect", 2), ("max_pool_3x3", 0),
        ("max_pool_3x3", 0), ("skip_connect", 2),
        ("skip_connect", 2), ("avg_pool_3x3", 0),
    ],
    reduce_concat=_CONCAT,
)

DARTS_V2 = Genotype(
    normal=[
        ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 1), ("skip_connect", 0),
        ("skip_connect", 0), ("dil_conv_3x3", 2),
    ],
    normal_concat=_CONCAT,
    reduce=[
        ("max_pool_3x3", 0), ("max_pool_3x3", 1),
        ("skip_connect", 2), ("max_pool_3x3", 1),
        ("max_pool_3x3", 0), ("skip_connect", 2),
        ("skip_connect", 2), ("max_pool_3x3", 1),
    ],
    reduce_concat=_CONCAT,
)

SNAS_mild = Genotype(
    normal=[
        ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
        ("skip_connect", 0), ("dil_conv_3x3", 1),
        ("skip_connect", 0), ("skip_connect", 1),
        ("skip_connect", 0), ("sep_conv_3x3", 1),
    ],
    normal_concat=_CONCAT,
    reduce=[
        ("max_pool_3x3", 0), ("max_pool_3x3", 1),
        ("max_pool_3x3", 1), ("skip_connect", 2),
        ("max_pool_3x3", 1), ("skip_connect", 2),
        ("max_pool_3x3", 0), ("dil_conv_5x5", 2),
    ],
    reduce_concat=_CONCAT,
)

SNAS_mild_edge_all = Genotype(
    normal=[
        ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
        ("skip_connect", 0), ("dil_conv_3x3", 1), ("none", 2),
        ("skip_connect", 0), ("skip_connect", 1), ("none", 3), ("none", 2),
        ("skip_connect", 0), ("sep_conv_3x3", 1), ("none", 4), ("none", 3), ("none", 2),
    ],
    normal_concat=_CONCAT,
    reduce=[
        ("max_pool_3x3", 0), ("max_pool_3x3", 1),
        ("none", 0), ("max_pool_3x3", 1), ("skip_connect", 2),
        ("none", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("none", 3),
        ("max_pool_3x3", 0), ("dil_conv_5x5", 2), ("none", 1), ("none", 3), ("none", 4),
    ],
    reduce_concat=_CONCAT,
)

SNAS_moderate = Genotype(
    normal=[
        ("dil_conv_5x5", 0), ("skip_connect", 1),
        ("sep_conv_3x3", 0), ("skip_connect", 1),
        ("skip_connect", 0), ("skip_connect", 1),
        ("sep_conv_3x3", 0), ("dil_conv_5x5", 1),
    ],
    normal_concat=_CONCAT,
    reduce=[
        ("max_pool_3x3", 0), ("max_pool_3x3", 1),
        ("sep_conv_5x5", 0), ("dil_conv_5x5", 1),
        ("sep_conv_5x5", 0), ("sep_conv_5x5", 1),
        ("sep_conv_5x5", 0), ("sep_conv_5x5", 1),
    ],
    reduce_concat=_CONCAT,
)

SNAS_moderate_edge_all = Genotype(
    normal=[
        ("dil_conv_5x5", 0), ("skip_connect", 1),
        ("sep_conv_3x3", 0), ("skip_connect", 1), ("none", 2),
        ("skip_connect", 0), ("none", 3), ("none", 2), ("skip_connect", 1),
        ("sep_conv_3x3", 0), ("dil_conv_5x5", 1), ("none", 4), ("none", 3), ("none", 2),
    ],
    normal_concat=_CONCAT,
    reduce=[
        ("max_pool_3x3", 0), ("max_pool_3x3", 1),
        ("sep_conv_5x5", 0), ("none", 2), ("dil_conv_5x5", 1),
        ("none", 3), ("none", 2), ("sep_conv_5x5", 0), ("sep_conv_5x5", 1),
        ("none", 4), ("none", 3), ("none", 2), ("sep_conv_5x5", 0), ("sep_conv_5x5", 1),
    ],
    reduce_concat=_CONCAT,
)

SNAS_aggressive = Genotype(
    normal=[
        ("sep_conv_5x5", 0), ("skip_connect", 1),
        ("skip_connect", 0), ("skip_connect", 1),
        ("dil_conv_5x5", 1), ("skip_connect", 0),
        ("skip_connect", 0), ("dil_conv_5x5", 1),
    ],
    normal_concat=_CONCAT,
    reduce=[
        ("sep_conv_5x5", 0), ("none", 1),
        ("sep_conv_5x5", 0), ("none", 1),
        ("none", 1), ("none", 0),
        ("none", 1), ("none", 0),
    ],
    reduce_concat=_CONCAT,
)

SNAS_aggressive_edge_all = Genotype(
    normal=[
        ("sep_conv_5x5", 0), ("skip_connect", 1),
        ("skip_connect", 0), ("skip_connect", 1), ("none", 2),
        ("dil_conv_5x5", 1), ("skip_connect", 0), ("none", 2), ("none", 3),
        ("skip_connect", 0), ("dil_conv_5x5", 1), ("none", 2), ("none", 3), ("none", 4),
    ],
    normal_concat=_CONCAT,
    reduce=[
        ("sep_conv_5x5", 0), ("none", 1),
        ("sep_conv_5x5", 0), ("none", 1), ("none", 2),
        ("none", 0), ("none", 1), ("none", 2), ("none", 3),
        ("none", 0), ("none", 1), ("none", 2), ("none", 3), ("none", 4),
    ],
    reduce_concat=_CONCAT,
)

GENOTYPES = {
    "SNAS_mild": SNAS_mild,
    "SNAS_mild_edge_all": SNAS_mild_edge_all,
    "SNAS_moderate": SNAS_moderate,
    "SNAS_moderate_edge_all": SNAS_moderate_edge_all,
    "SNAS_aggressive": SNAS_aggressive,
    "SNAS_aggressive_edge_all": SNAS_aggressive_edge_all,
    "DARTS_V1": DARTS_V1,
    "DARTS_V2": DARTS_V2,
}  # type: Dict[str, Genotype]

# One edge of a cell: (edge index in the genotype list, op name, input state index).
Edge = Tuple[int, str, int]


def get_genotype(name_or_genotype):
    # type: (Union[str, Genotype]) -> Genotype
    """The genotype registered under `name` (a `Genotype` passes through, after validation).

    Raises `ValueError` naming the known genotypes, or describing what is wrong with the cells.
    """
    if isinstance(name_or_genotype, Genotype):
        genotype = name_or_genotype
    else:
        found = GENOTYPES.get(str(name_or_genotype))
        if found is None:
            raise ValueError(
                "unknown genotype {!r}; known: {}".format(name_or_genotype, ", ".join(sorted(GENOTYPES)))
            )
        genotype = found
    cell_nodes(genotype.normal, genotype.normal_concat)
    cell_nodes(genotype.reduce, genotype.reduce_concat)
    return genotype


def cell_nodes(edges, concat):
    # type: (Sequence[Tuple[str, int]], Sequence[int]) -> List[List[Edge]]
    """Group a cell's edges by the intermediate node they feed.

    The node count is the last concatenated state minus the two inputs. The layout is recognised
    from the edge count: 2 per node (compact) or 2, 3, ... per node (edge_all, every predecessor).
    Raises `ValueError` when neither fits or an edge reads a state that does not exist yet.
    """
    concat = list(concat)
    if not concat or min(concat) < 0:
        raise ValueError("a cell needs a non-empty concat list of state indices, got {}".format(concat))
    steps = max(concat) - 1
    if steps < 1:
        raise ValueError("concat {} names no intermediate node".format(concat))
    compact = [2] * steps
    edge_all = [2 + i for i in range(steps)]
    if len(edges) == sum(compact):
        per_node = compact
    elif len(edges) == sum(edge_all):
        per_node = edge_all
    else:
        raise ValueError(
            "{} edges fit neither 2 per node ({}) nor all predecessors ({}) for {} nodes".format(
                len(edges), sum(compact), sum(edge_all), steps
            )
        )
    nodes = []  # type: List[List[Edge]]
    start = 0
    for node, count in enumerate(per_node):
        node_edges = []  # type: List[Edge]
        for index in range(start, start + count):
            name, source = edges[index]
            if name not in PRIMITIVES:
                raise ValueError("unknown operation {!r} (known: {})".format(name, ", ".join(PRIMITIVES)))
            if not 0 <= source < 2 + node:
                raise ValueError("edge {} of node {} reads state {}, which is not computed yet".format(
                    index, node, source))
            node_edges.append((index, name, source))
        nodes.append(node_edges)
        start += count
    return nodes


def genotype_name(genotype):
    # type: (Genotype) -> str
    """The registry name of a genotype, or 'custom'."""
    for name, known in GENOTYPES.items():
        if known == genotype:
            return name
    return "custom"


def edge_all_form(genotype):
    # type: (Genotype) -> Tuple[Genotype, Dict[str, Dict[int, int]]]
    """The `*_edge_all` form of a genotype (what the thesis built), and where each edge moved.

    Every intermediate node takes every predecessor; the edges the genotype does not use become
    `none` (x*0: computed, no parameters). Returns (genotype, {"normal": {old: new}, "reduce":
    {old: new}}) mapping each original edge index to its index in the new form (module keys
    `cells.N._ops.<index>` move with it). A registered `*_edge_all` genotype with the same edges
    is returned as it is (the edge_all form of SNAS_mild is SNAS_mild_edge_all). A genotype already
    in that form maps to itself. Raises ValueError when a node reads one input twice (no
    edge_all form has room for that).
    """
    genotype = get_genotype(genotype)
    built = {}
    for kind in ("normal", "reduce"):
        edges, concat = getattr(genotype, kind), getattr(genotype, kind + "_concat")
        ops = {}  # type: Dict[Tuple[int, int], str]  # (node, source) -> op
        moved = {}  # type: Dict[int, Tuple[int, int]]  # old index -> (node, source)
        for node, node_edges in enumerate(cell_nodes(edges, concat)):
            for index, name, source in node_edges:
                if (node, source) in ops and ops[(node, source)] != "none":
                    raise ValueError("{} cell node {} reads state {} twice: it has no edge_all form".format(
                        kind, node, source))
                if name != "none" or (node, source) not in ops:
                    ops[(node, source)] = name
                moved[index] = (node, source)
        built[kind] = (ops, moved, len(cell_nodes(edges, concat)))

    def layout(kind, candidate):
        """{(node, source): index} of a candidate edge_all genotype's cell, or None if it differs."""
        ops, _, steps = built[kind]
        edges, concat = getattr(candidate, kind), getattr(candidate, kind + "_concat")
        if list(concat) != list(getattr(genotype, kind + "_concat")):
            return None
        nodes = cell_nodes(edges, concat)
        if len(nodes) != steps or len(edges) != sum(2 + i for i in range(steps)):
            return None
        where = {}
        for node, node_edges in enumerate(nodes):
            for index, name, source in node_edges:
                if ops.get((node, source), "none") != name or (node, source) in where:
                    return None
                where[(node, source)] = index
        return where

    for candidate in [genotype] + [GENOTYPES[n] for n in sorted(GENOTYPES) if n.endswith("_edge_all")]:
        wheres = dict((kind, layout(kind, candidate)) for kind in ("normal", "reduce"))
        if all(w is not None for w in wheres.values()):
            return candidate, dict((kind, dict((old, wheres[kind][ns]) for old, ns in built[kind][1].items()))
                                   for kind in ("normal", "reduce"))
    fields = {}
    maps = {}
    for kind in ("normal", "reduce"):
        ops, moved, steps = built[kind]
        edges, where = [], {}
        for node in range(steps):
            for source in range(2 + node):
                where[(node, source)] = len(edges)
                edges.append((ops.get((node, source), "none"), source))
        fields[kind] = edges
        fields[kind + "_concat"] = list(getattr(genotype, kind + "_concat"))
        maps[kind] = dict((old, where[ns]) for old, ns in moved.items())
    return Genotype(**fields), maps
