"""The genotype registry and the edge layouts (compact 8-edge and 14-edge edge_all)."""

import math

import pytest

from core.genotypes import GENOTYPES, PRIMITIVES, Genotype, cell_nodes, genotype_name, get_genotype

LEVELS = ("mild", "moderate", "aggressive")


def test_registry_holds_the_snas_levels_in_both_forms_and_darts():
    for level in LEVELS:
        assert f"SNAS_{level}" in GENOTYPES
        assert f"SNAS_{level}_edge_all" in GENOTYPES
    assert {"DARTS_V1", "DARTS_V2"} <= set(GENOTYPES)
    assert get_genotype("SNAS_mild") is GENOTYPES["SNAS_mild"]


def test_unknown_genotype_names_the_known_ones():
    with pytest.raises(ValueError) as info:
        get_genotype("Foo")
    message = str(info.value)
    assert "Foo" in message
    for name in GENOTYPES:
        assert name in message


@pytest.mark.parametrize("name", sorted(GENOTYPES))
def test_every_genotype_has_four_nodes_per_cell(name):
    genotype = GENOTYPES[name]
    for edges, concat in ((genotype.normal, genotype.normal_concat), (genotype.reduce, genotype.reduce_concat)):
        nodes = cell_nodes(edges, concat)
        assert len(nodes) == 4
        assert sum(len(node) for node in nodes) == len(edges)
        expected = [2, 3, 4, 5] if name.endswith("_edge_all") else [2, 2, 2, 2]
        assert [len(node) for node in nodes] == expected
        for i, node in enumerate(nodes):
            assert all(0 <= source < 2 + i and op in PRIMITIVES for _, op, source in node)


def test_the_thesis_step_formula_would_break_the_compact_forms():
    """The thesis derives steps from the edge count with the edge_all formula: 2 steps for 8 edges."""
    edges = GENOTYPES["SNAS_mild"].normal
    thesis_steps = int((-3 + math.sqrt(9 + 8 * len(edges))) // 2)
    assert thesis_steps == 2  # but concat reads states 4 and 5: the crash the thesis code has
    assert len(cell_nodes(edges, GENOTYPES["SNAS_mild"].normal_concat)) == 4


@pytest.mark.parametrize("level", LEVELS)
def test_edge_all_is_the_compact_cell_plus_none_edges(level):
    """Per node, the non-`none` edges of the 14-edge form are exactly the compact form's."""
    compact, edge_all = GENOTYPES[f"SNAS_{level}"], GENOTYPES[f"SNAS_{level}_edge_all"]
    for part in ("normal", "reduce"):
        concat = getattr(compact, part + "_concat")
        a = cell_nodes(getattr(compact, part), concat)
        b = cell_nodes(getattr(edge_all, part), concat)
        for node_a, node_b in zip(a, b):
            real_a = sorted((op, src) for _, op, src in node_a if op != "none")
            real_b = sorted((op, src) for _, op, src in node_b if op != "none")
            assert real_a == real_b, (level, part)
        assert any(op == "none" for node in b for _, op, _ in node)


def test_malformed_genotypes_are_rejected():
    with pytest.raises(ValueError, match="fit neither"):
        cell_nodes([("skip_connect", 0)] * 7, [2, 3, 4, 5])
    with pytest.raises(ValueError, match="not computed yet"):
        cell_nodes([("skip_connect", 3), ("skip_connect", 0)] + [("skip_connect", 0)] * 6, [2, 3, 4, 5])
    with pytest.raises(ValueError, match="unknown operation"):
        cell_nodes([("conv_9x9", 0)] * 8, [2, 3, 4, 5])
    custom = Genotype(normal=[("skip_connect", 0)] * 7, normal_concat=[2, 3, 4, 5],
                      reduce=GENOTYPES["SNAS_mild"].reduce, reduce_concat=[2, 3, 4, 5])
    with pytest.raises(ValueError):
        get_genotype(custom)


def test_custom_genotype_with_other_node_count():
    """Node count follows the concat list: 3 nodes, compact (6 edges) and edge_all (2+3+4 = 9)."""
    assert [len(n) for n in cell_nodes([("skip_connect", 0)] * 6, [2, 3, 4])] == [2, 2, 2]
    assert [len(n) for n in cell_nodes([("skip_connect", 0)] * 9, [2, 3, 4])] == [2, 3, 4]
    assert genotype_name(GENOTYPES["DARTS_V2"]) == "DARTS_V2"
