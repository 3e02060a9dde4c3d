"""Figures as people read them: 3 significant digits where decimals would hide them, whole numbers whole."""

from core.numbers import counted, figure
from core.report import format_value, render
from klmtui.cli.tables import fit


def test_figure_keeps_three_significant_digits_and_whole_numbers():
    assert figure(0.0242) == "0.0242" and figure(0.0242, 2) == "0.0242"
    assert figure(97.06, 2) == "97.06" and figure(1.68, 2) == "1.68"
    assert figure(2222) == "2222" and figure(2222.0) == "2222"  # a port, never 2.22e+03
    assert figure(None) == "-" and figure("trained") == "trained" and figure(True) == "True"
    assert counted(1, "architecture") == "1 architecture" and counted(57, "architecture") == "57 architectures"


def test_export_and_pareto_cells_do_not_round_small_latencies_away():
    assert format_value("latency_s", 0.0242) == "0.0242"  # was 0.02
    assert format_value("latency_s", 0.49) == "0.49"  # the thesis' figure as published
    assert format_value("params_m", 0.3, [{"params_m": 0.3}]) == "0.3"  # published rounding kept
    row = {"arch_id": "1-1-1@8", "arch": "1-1-1", "K": 1, "L": 1, "M": 1, "channels": 8, "accuracy": 42.0,
           "params_m": 0.032, "latency_s": 0.0242, "power_w": 4.5, "batch": 64}
    assert "0.0242" in render([row], "md", "caption")


def test_table_fit_drops_low_priority_columns_never_identifying_ones():
    columns = ["id", "arch", "status", "notes", "error"]
    rows = [["t-0123abcd", "10-10-10@36", "done", "x" * 30, "y" * 40]]
    chosen = fit(columns, rows, 60)
    assert chosen.hidden == ["notes", "error"] and [columns[i] for i in chosen.keep] == ["id", "arch", "status"]
    assert fit(columns, rows, 60, wide=True).hidden == []
    assert fit(columns, rows, 85).hidden == ["error"]  # the rightmost goes first ...
    assert fit(columns, rows, 85, priorities={"error": 1, "notes": 9}).hidden == ["notes"]  # ... unless told
    assert fit(columns, rows, 20).keep[:2] == [0, 1]  # too narrow for anything else: id and arch stay
