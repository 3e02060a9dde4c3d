"""core.report and core.reference: derived energy, the table formats, the scatter, CSV parsing."""

from __future__ import annotations

import csv
import io

import pytest

from core.errors import InputError
from core.pareto import Objective, front_2d
from core.reference import THESIS_TABLE1, parse_results_csv, thesis_results
from core.report import energy_per_image_j, render, scatter, to_csv, with_derived

HEADER = "K,L,M,channels,accuracy,params_m,latency_s,power_w"


def test_energy_per_image_uses_the_batch_and_needs_all_three():
    row = {"power_w": 4.0, "latency_s": 1.6, "extra": {"batch": 64}}
    assert energy_per_image_j(row) == pytest.approx(0.1)
    assert energy_per_image_j({**row, "batch": 32}) == pytest.approx(0.2)  # the row's own batch wins
    assert energy_per_image_j({**row, "power_w": None}) is None
    assert energy_per_image_j({"power_w": 4.0, "latency_s": 1.6}) is None  # batch unknown: no guess
    assert with_derived(row)["energy_mj"] == pytest.approx(100.0)


def test_thesis_source_rows():
    rows = thesis_results()
    by_id = {r["arch_id"]: r for r in rows}
    r = by_id["6-4-8@36"]
    assert (r["source"], r["id"], r["accuracy"], r["params_m"], r["latency_s"], r["power_w"]) == (
        "thesis", "thesis:6-4-8@36", 97.49, 3.1, 1.8, 4.66)
    assert r["extra"]["batch"] == 64 and r["extra"]["table1"] is True
    assert sum(r["extra"]["table1"] for r in rows) == len(THESIS_TABLE1) == 9
    # energy per image of the thesis rows: batch 64
    assert with_derived(r)["energy_j"] == pytest.approx(4.66 * 1.8 / 64)


def test_markdown_and_latex_have_the_table1_shape():
    rows = [r for r in thesis_results() if r["arch_id"] in THESIS_TABLE1]
    md = render(rows, "md", caption="Table 1 rows")
    lines = md.splitlines()
    assert lines[0].startswith("| Architecture | Init Channels | Accuracy (%) | Params (M) | Latency (s)")
    assert "| 6 - 4 - 8 | 36 | 97.49 | 3.1 | 1.80 | 4.66 | 131.1 |" in lines
    assert len([l for l in lines if l.startswith("| ") and "- " in l]) == 9
    tex = render(rows, "latex", caption="SNAS_mild & 100%")
    assert r"\begin{tabular}{lrrrrrr}" in tex and r"\toprule" in tex
    assert r"Accuracy (\%)" in tex and r"SNAS\_mild \& 100\%" in tex
    # the architecture is written once per group, as in Appendix A
    assert "4 - 10 - 4 & 36 & 97.19" in tex and "\n & 24 & 96.94" in tex


def test_csv_is_full_precision_and_reimportable():
    rows = thesis_results()
    text = to_csv(rows)
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert len(parsed) == 54 and float(parsed[0]["energy_j"]) == pytest.approx(4.66 * 1.68 / 64)
    again = parse_results_csv(text, "copy")
    assert [(r["arch_id"], r["accuracy"], r["power_w"]) for r in again] == [
        (r["arch_id"], r["accuracy"], r["power_w"]) for r in rows]
    assert again[0]["extra"]["batch"] == "64"  # extra columns are kept


def test_scatter_highlights_the_front():
    rows = thesis_results()
    x, y = Objective("latency_s", "min"), Objective("accuracy", "max")
    front = {r["arch_id"] for r in front_2d(rows, x, y).front}
    text = scatter(rows, x, y, front, width=70, height=18, title="thesis")
    assert "●" in text and "·" in text and "\x1b[" not in text
    assert f"● Pareto front ({len(front)})   · other rows ({54 - len(front)})" in text
    assert "latency_s (min)" in text and "accuracy (max)" in text
    assert max(len(l) for l in text.splitlines()) <= 70


def test_csv_parsing_arch_column_extras_and_blank_cells():
    text = "arch,accuracy,params_m,latency_s,power_w,notes\n6-6-6@36,97.0,2.7,,4.7,ours\n4-10-4@12,96.1,0.3,0.53,4.0,\n"
    rows = parse_results_csv(text, "mine")
    assert rows[0]["arch_id"] == "6-6-6@36" and rows[0]["latency_s"] is None and rows[0]["extra"] == {"notes": "ours"}
    assert rows[1]["extra"] == {}


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "is empty"),
        ("K,L,M,channels,accuracy,params_m,latency_s\n6,6,6,36,97,2.7,1.8\n", "missing column(s) power_w"),
        (f"{HEADER}\n6,6,6,36,97,2.7,1.8,4.7\n6,6,6,24,abc,1.2,1.1,4.4\n", "line 3: accuracy 'abc' is not a number"),
        (f"{HEADER}\n6,x,6,36,97,2.7,1.8,4.7\n", "line 2: L 'x' is not a whole number"),
        (f"{HEADER}\n0,6,6,36,97,2.7,1.8,4.7\n", "line 2: K must be >= 1"),
        ("arch,channels,accuracy,params_m,latency_s,power_w\n6-6@36,36,97,2.7,1.8,4.7\n", "line 2: malformed architecture"),
        (f"{HEADER}\n6,6,6,36,97,2.7,1.8,4.7\n6,6,6,36,97,2.7,1.8,4.7\n", "line 3: 6-6-6@36 already on line 2"),
        (f"{HEADER}\n", "no rows"),
        (f"{HEADER}\n6,6,6,36,97,2.7,1.8,inf\n", "not a finite number"),
    ],
)
def test_bad_csvs_are_refused_whole(text, message):
    with pytest.raises(InputError) as info:
        parse_results_csv(text, "bad", name="bad.csv")
    assert message in str(info.value)
    assert "\n" not in str(info.value)
