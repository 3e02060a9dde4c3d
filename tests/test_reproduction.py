"""`klmtui figures` and `klmtui report` (issue 14): the thesis' figures for a source, and a
reproduction report with Kendall's tau, front overlap and what was not comparable."""

import csv
import io
import struct

import pytest

from core.reference import THESIS_CSV
from core.reproduction import kendall_tau
from tests.fixtures.cli import assert_one_line_error


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", data[16:24])


def test_kendall_tau_b():
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    # one discordant pair of 6: (5 - 1) / 6
    assert kendall_tau([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(4 / 6)
    # ties: tau-b = (C - D) / sqrt((n0 - n1)(n0 - n2)); x has one tied pair -> 5/sqrt(5*6)
    assert kendall_tau([1, 1, 2, 3], [1, 2, 3, 4]) == pytest.approx(5 / (5 * 6) ** 0.5)
    assert kendall_tau([1, 1], [2, 2]) is None


def test_figures_for_the_thesis_source(cli, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "figs"
    r = cli("figures", "--source", "thesis", "-o", out, "--json")  # no `init` needed for the thesis
    assert r.returncode == 0, r.stderr
    written = {w["figure"]: w for w in r.json()}
    assert set(written) == {"figure3", "figure4a", "figure4b", "figure4c", "figure4d", "figure4e", "figure4"}
    for w in written.values():
        width, height = _png_size(out / f"{w['figure']}.png")
        assert width > 300 and height > 200 and (out / f"{w['figure']}.png").stat().st_size > 20_000
        assert "Source: thesis" in w["note"] and "Jetson Nano" in w["note"]
    assert written["figure4a"]["rows"] == 54
    # bad input: one line, exit 2
    assert "no results" in assert_one_line_error(cli("figures", "--source", "nope", "-o", out))
    assert "--source measured" in assert_one_line_error(cli("figures", "--device", "nano", "-o", out))


def _variant_csv(tmp_path):
    """The thesis' Appendix A with known differences: +0.5 accuracy everywhere, latency x2 on the
    12-channel rows, another timing recorded, and 9-5-4@36 (on the thesis' front) made better than
    every row in every objective, so the variant's front is that one row."""
    rows = list(csv.DictReader(io.StringIO(THESIS_CSV.read_text())))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*rows[0].keys(), "timing"])
    writer.writeheader()
    for r in rows:
        r = dict(r)
        r["accuracy"] = f"{float(r['accuracy']) + 0.5:.2f}"
        if r["channels"] == "12":
            r["latency_s"] = f"{float(r['latency_s']) * 2:.4f}"
        r["timing"] = "sync"
        if (r["K"], r["L"], r["M"], r["channels"]) == ("9", "5", "4", "36"):
            r.update(accuracy="99.0", params_m="0.1", latency_s="0.1", power_w="1.0")
        writer.writerow(r)
    path = tmp_path / "variant.csv"
    path.write_text(out.getvalue())
    return path


def test_report_thesis_against_itself(cli, tmp_path):
    r = cli("report", "--source", "thesis", "--against", "thesis", "--json")
    assert r.returncode == 0, r.stderr
    rep = r.json()
    assert rep["paired"] == 54
    assert all(t["tau"] == 1.0 and t["pairs"] == 54 for t in rep["kendall_tau"].values())
    o = rep["overlap"]
    assert o["source_front"] == o["against_front"] == o["source_on_against"] == o["against_on_source"] == 35
    assert rep["not_comparable"] == []
    assert all(row["accuracy_delta"] == 0 and row["latency_ratio"] == 1 for row in rep["rows"])
    md = tmp_path / "report.md"
    r = cli("report", "--source", "thesis", "--against", "thesis", "-o", md)
    assert r.returncode == 0, r.stderr
    text = md.read_text()
    assert "Kendall" in text and "| accuracy | 1.000 | 54 |" in text and "35 of `thesis`'s 35" in text


def test_report_on_an_imported_variant(cli, tmp_path):
    path = _variant_csv(tmp_path)
    assert cli("init").returncode == 0
    r = cli("import-results", path, "--source", "variant")
    assert r.returncode == 0, r.stderr
    r = cli("report", "--source", "variant", "--against", "thesis", "--json")
    assert r.returncode == 0, r.stderr
    rep = r.json()
    rows = {row["arch"]: row for row in rep["rows"]}
    assert len(rows) == 54
    best = rows.pop("9-5-4@36")
    assert best["accuracy_delta"] == pytest.approx(99.0 - 97.08) and best["power_ratio"] == pytest.approx(1 / 4.54)
    assert all(row["accuracy_delta"] == pytest.approx(0.5, abs=1e-9) for row in rows.values())
    assert rows["4-10-4@12"]["latency_ratio"] == pytest.approx(2.0) and rows["4-10-4@24"]["latency_ratio"] == 1.0
    assert all(row["power_ratio"] == 1.0 for row in rows.values())
    tau = {k: v["tau"] for k, v in rep["kendall_tau"].items()}
    assert all(-1 < t < 1 for t in tau.values()), tau  # 9-5-4@36 moved to the top of every ranking
    assert tau["accuracy"] > tau["power_w"] > 0.5
    # the variant's front is 9-5-4@36 alone, which is one of the thesis' 35
    o = rep["overlap"]
    assert (o["source_front"], o["source_on_against"], o["against_front"], o["against_on_source"]) == (1, 1, 35, 1)
    assert rep["fronts"]["variant"]["front"] == ["9-5-4@36"] and len(o["only_against"]) == 34
    caveats = {d["condition"]: d for d in rep["not_comparable"]}
    assert caveats["timing"]["source"] == "sync" and caveats["timing"]["rows"] == 54
    assert caveats["recipe"]["source"] == "not recorded"
    r = cli("report", "--source", "variant", "--against", "thesis")
    assert r.returncode == 0 and "| 4-10-4@12 |" in r.stdout and "+0.50" in r.stdout and "2.000" in r.stdout
    assert "no results" in assert_one_line_error(cli("report", "--source", "measured"))


@pytest.mark.slow
def test_report_measured_from_imported_weights(cli, tmp_path):
    """Weights in the thesis' layout imported and benchmarked on this machine: the report pairs
    the architecture with Appendix A and lists what differs from the thesis' set-up."""
    import torch

    from core.genotypes import SNAS_mild_edge_all
    from tests.thesis_layout import ThesisNetworkCIFAR

    weights = tmp_path / "weights.pt"
    torch.save(ThesisNetworkCIFAR(12, 10, 9, 5, 4, True, SNAS_mild_edge_all).state_dict(), weights)
    assert cli("init").returncode == 0
    r = cli("import-checkpoint", weights, "9-5-4@12", "--accuracy", "95.5", "--note", "test weights", "--json")
    assert r.returncode == 0, r.stderr
    r = cli("bench", "9-5-4@12", "--device", "local", "--batch", "2", "--runs", "1", "--batches", "2",
            "--warmup-runs", "0", "--warmup-batches", "0", "--no-power", "--json")
    assert r.returncode == 0, r.stderr
    [bench] = r.json()
    assert bench["weights"] == "trained"
    r = cli("report", "--source", "measured", "--against", "thesis", "--json")
    assert r.returncode == 0, r.stderr
    rep = r.json()
    [row] = rep["rows"]
    assert row["arch"] == "9-5-4@12" and row["accuracy_delta"] == pytest.approx(95.5 - 95.72)
    assert row["latency_ratio"] == pytest.approx(bench["latency_s"] / 0.66)
    assert row["latency_per_image_ratio"] == pytest.approx((bench["latency_s"] / 2) / (0.66 / 64))
    assert row["power_ratio"] is None and rep["kendall_tau"]["accuracy"]["tau"] is None  # one pair
    caveats = {d["condition"]: d for d in rep["not_comparable"]}
    assert caveats["recipe"]["source"].startswith("imported (test weights")
    assert caveats["timing"]["source"] == "sync" and caveats["batch"]["source"] == "2"
    assert caveats["device"]["source"] == "local" and caveats["none_edges"]["source"] == "not timed"
    assert "rail" not in caveats or caveats["rail"]["against"] == "input"


def test_figure3_against_a_second_device_source(cli, tmp_path):
    """--vs-device B: Figure 3's second series from a source named B (here T4-like latencies, 1/20)."""
    pytest.importorskip("matplotlib")
    rows = list(csv.DictReader(io.StringIO(THESIS_CSV.read_text())))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0].keys()))
    writer.writeheader()
    for r in rows:
        writer.writerow(dict(r, latency_s=f"{float(r['latency_s']) / 20:.4f}"))
    (tmp_path / "t4.csv").write_text(out.getvalue())
    assert cli("init").returncode == 0
    assert cli("import-results", tmp_path / "t4.csv", "--source", "t4").returncode == 0
    r = cli("figures", "--vs-device", "t4", "-o", tmp_path / "f", "--format", "svg", "--json")
    assert r.returncode == 0, r.stderr
    [fig3] = [w for w in r.json() if w["figure"] == "figure3"]
    assert "Second series: t4" in fig3["note"]
    svg3 = (tmp_path / "f" / "figure3.svg").read_text()
    assert "Latency (s per batch, log scale)" in svg3 and "t4" in svg3
    svg = (tmp_path / "f" / "figure4c.svg").read_text()  # axes in units, the front in the legend
    assert "Parameters (M)" in svg and "Accuracy (%)" in svg and "Pareto front" in svg
    assert "no benchmarks on a device" in assert_one_line_error(cli("figures", "--vs-device", "xavier", "-o",
                                                                    tmp_path / "g"))
