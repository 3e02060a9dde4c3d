"""`klmtui init|status|import-results|pareto|export` as a user runs them (subprocesses)."""

from __future__ import annotations

import json

import pytest

from core.arch import Arch
from core.reference import THESIS_TABLE1
from core.store import Store
from tests.fixtures.cli import assert_one_line_error

HEADER = "K,L,M,channels,accuracy,params_m,latency_s,power_w"


@pytest.fixture
def study(cli):
    r = cli("init")
    assert r.returncode == 0, r.stderr
    return cli


def test_init_is_idempotent_and_never_clobbers_measurements(cli):
    r = cli("init", "--json")
    assert r.returncode == 0, r.stderr
    first = r.json()[0]
    assert first["architectures"] == 57 and first["results"] == 54  # 19 sampled triples x 3, Appendix A
    store = Store(cli.store)
    assert store.get("architectures", "5-5-8@36")["in_thesis"] is False  # sampled by the text, not in the thesis
    assert store.get("architectures", "6-6-6@36")["params"] == 2663542
    store.insert("runs", {"id": "t-00000001", "arch_id": "6-6-6@36", "status": "running", "epoch": 3})
    store.insert("devices", {"id": "nano", "name": "nano", "host": "10.0.0.2"})
    store.update("architectures", "6-6-6@36", note="mine")
    r = cli("init", "--json")
    assert r.returncode == 0, r.stderr
    again = r.json()[0]
    assert (again["architectures_added"], again["results_added"], again["results_updated"]) == (0, 0, 0)
    assert store.get("runs", "t-00000001")["epoch"] == 3
    assert store.get("devices", "nano")["host"] == "10.0.0.2"
    assert store.get("architectures", "6-6-6@36")["note"] == "mine"


def test_pareto_thesis_json_is_the_35_row_front(study):
    r = study("pareto", "--source", "thesis", "--json")
    assert r.returncode == 0, r.stderr
    rows = r.json()
    assert len(rows) == 35
    assert set(THESIS_TABLE1) <= {f"{x['arch']}@{x['channels']}" for x in rows}
    for key in ("arch", "K", "L", "M", "channels", "accuracy", "params_m", "latency_s", "power_w"):
        assert key in rows[0]
    r = study("pareto", "--json", "--exact-params")
    assert len(r.json()) == 39
    r = study("pareto", "--json", "--objective", "latency_s:min", "--objective", "accuracy:max")
    assert 5 <= len(r.json()) < 35 and set(r.json()[0]) >= {"latency_s", "accuracy"}


def test_pareto_table_states_what_it_computed_and_plots(study):
    r = study("pareto", "--tolerance", "power_w=5%", "--plot", "latency_s,accuracy",
              "--reference", "accuracy=95", "--reference", "params_m=4", "--reference", "latency_s=3",
              "--reference", "power_w=5")
    assert r.returncode == 0, r.stderr
    out = " ".join(r.stdout.split())
    assert "tolerances: power_w 5% (relative)" in out
    assert "as published (rounded to 0.1M)" in out
    assert "hypervolume" in out
    assert r.stdout.count(" yes ") == 9  # the thesis' Table 1 rows are marked
    assert "● Pareto front (8)" in r.stdout  # the 2-D latency/accuracy front of Appendix A
    assert r.stdout.count("●") > 20


@pytest.mark.parametrize(
    "args, message",
    [
        (("pareto", "--source", "nope"), "source 'nope' has no results"),
        (("pareto", "--objective", "accuracy:up"), "direction must be max or min"),
        (("pareto", "--tolerance", "accuracy"), "bad tolerance"),
        (("pareto", "--tolerance", "energy=1"), "not an objective"),
        (("pareto", "--plot", "latency_s"), "--plot wants two columns"),
        (("pareto", "--reference", "accuracy=95"), "reference point needs a value for every objective"),
        (("pareto", "--objective", "acuracy:max"), "no row has a value for 'acuracy'"),
        (("pareto", "--plot", "latency_s,acc"), "no row has a value for 'acc'"),
        (("export", "--format", "pdf"), "pdf"),
        (("import-results", "missing.csv", "--source", "x"), "no such file"),
        (("import-results", "missing.csv", "--source", "measured"), "reserved"),
    ],
)
def test_bad_options_are_one_line(study, args, message):
    before = study.store.read_bytes()
    line = assert_one_line_error(study(*args), 2)
    assert message in line
    assert study.store.read_bytes() == before


def test_export_formats(study, tmp_path):
    r = study("export", "--format", "md", "--front")
    assert r.returncode == 0, r.stderr
    table_rows = [l for l in r.stdout.splitlines() if l.startswith("| ") and " - " in l]
    assert len(table_rows) == 35
    assert "Pareto front rows only" in r.stdout
    r = study("export", "--format", "latex", "--source", "thesis")
    assert r"\begin{tabular}" in r.stdout and r.stdout.count(r"\\") >= 55
    out = tmp_path / "thesis.csv"
    r = study("export", "--format", "csv", "-o", out)
    assert r.returncode == 0 and r.stdout == ""
    lines = out.read_text().splitlines()
    assert lines[0].startswith("arch_id,K,L,M,channels,accuracy,params_m,latency_s,power_w,batch,energy_j")
    assert len(lines) == 55 and sum(l.endswith(",True") for l in lines) == 35
    # round trip: the export imports as a new source with the same front
    r = study("import-results", out, "--source", "copy", "--json")
    assert r.returncode == 0, r.stderr
    assert r.json()[0]["added"] == 54
    assert len(study("pareto", "--source", "copy", "--json").json()) == 35


def test_import_results_adds_architectures_and_keeps_extras(study, tmp_path):
    from core.counting import count_macs, count_params
    from core.study import source_rows

    csv_file = tmp_path / "mine.csv"
    csv_file.write_text(f"{HEADER},device\n2,2,14,16,94.5,0.2,0.3,3.5,xavier\n6,6,6,36,97.1,2.7,,,\n")
    r = study("import-results", csv_file, "--source", "mine")
    assert r.returncode == 0, r.stderr
    assert "2 added" in r.stdout and "1 new architectures" in r.stdout
    store = Store(study.store)
    rec = {r["id"]: r for r in source_rows(store, "mine")}["mine:2-2-14@16"]
    assert rec["extra"] == {"device": "xavier"} and rec["accuracy"] == 94.5
    # an architecture only the source knows is in status (not sampled, exact counts), not in `architectures`
    assert store.get("architectures", "2-2-14@16") is None
    r = study("status", "--json")
    [entry] = [e for e in json.loads(r.stdout) if e["id"] == "2-2-14@16"]
    arch = Arch(2, 2, 14, 16)
    assert (entry["sampled"], entry["params"], entry["macs"]) == (False, count_params(arch), count_macs(arch))
    assert entry["results"] == {"mine": {"accuracy": 94.5, "params_m": 0.2, "latency_s": 0.3, "power_w": 3.5,
                                         "batch": None, "energy_j": None}}
    r = study("pareto", "--source", "mine")
    assert r.returncode == 0, r.stderr
    assert "excluded for a missing objective value: 6-6-6@36" in r.stdout


BAD_CSVS = {
    "missing column": ("K,L,M,channels,accuracy,params_m,latency_s\n6,6,6,36,97,2.7,1.8\n", "missing column"),
    "non-numeric": (f"{HEADER}\n6,6,6,36,97,2.7,1.8,4.7\n6,6,6,24,high,1.2,1.1,4.4\n", "line 3"),
    "bad K-L-M": ("arch,channels,accuracy,params_m,latency_s,power_w\n6-6@36,36,97,2.7,1.8,4.7\n", "line 2"),
    "empty": ("", "empty"),
}


@pytest.mark.parametrize("case", sorted(BAD_CSVS))
def test_bad_csv_imports_nothing(study, tmp_path, case):
    text, message = BAD_CSVS[case]
    csv_file = tmp_path / "bad.csv"
    csv_file.write_text(text)
    before = study.store.read_bytes()
    line = assert_one_line_error(study("import-results", csv_file, "--source", "bad"), 2)
    assert message in line
    assert study.store.read_bytes() == before


@pytest.mark.parametrize("command", [("status",), ("pareto",), ("init",), ("export", "--format", "md")])
def test_store_that_is_not_json_is_one_line_and_untouched(cli, tmp_path, command):
    cli.store.write_text('{"runs": {"1": {"id": "t-1", "status": ')
    before = cli.store.read_bytes()
    line = assert_one_line_error(cli(*command), 2)
    assert "is not valid JSON" in line and "corrupt-" in line
    assert cli.store.read_bytes() == before
    kept = list(tmp_path.glob("runs.json.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == before


def test_import_into_a_corrupt_store_is_refused(cli, tmp_path):
    cli.store.write_text("[]")
    csv_file = tmp_path / "ok.csv"
    csv_file.write_text(f"{HEADER}\n6,6,6,36,97,2.7,1.8,4.7\n")
    line = assert_one_line_error(cli("import-results", csv_file, "--source", "ok"), 2)
    assert "not a TinyDB/klmtui store" in line
    assert cli.store.read_text() == "[]"


def test_measured_source_and_status(study):
    store = Store(study.store)
    for seed, acc in enumerate((96.0, 96.5)):
        store.insert("runs", {"id": f"t-0000000{seed}", "arch_id": "4-10-4@12", "arch": "4-10-4", "K": 4, "L": 10,
                              "M": 4, "channels": 12, "genotype": "SNAS_mild", "seed": seed, "status": "done",
                              "accuracy": acc})
    store.insert("runs", {"id": "t-00000009", "arch_id": "4-10-4@12", "arch": "4-10-4", "K": 4, "L": 10, "M": 4,
                          "channels": 12, "seed": 9, "status": "queued", "accuracy": None})  # running needs a live pid
    for bid, lat, when in (("b-00000001", 0.9, "2026-01-01T00:00:00Z"), ("b-00000002", 0.6, "2026-01-02T00:00:00Z")):
        store.insert("benchmarks", {"id": bid, "arch_id": "4-10-4@12", "arch": "4-10-4", "K": 4, "L": 10, "M": 4,
                                    "channels": 12, "device": "nano", "status": "done", "batch": 32,
                                    "latency_s": lat, "power_w": 4.0, "finished": when})
    store.insert("benchmarks", {"id": "b-00000003", "arch_id": "6-6-6@36", "arch": "6-6-6", "K": 6, "L": 6, "M": 6,
                                "channels": 36, "device": "nano", "status": "done", "batch": 64,
                                "latency_s": 1.9, "power_w": 4.8, "finished": "2026-01-03T00:00:00Z"})
    r = study("pareto", "--source", "measured", "--json")
    assert r.returncode == 0, r.stderr
    rows = {x["arch_id"]: x for x in r.json()}
    assert set(rows) == {"4-10-4@12"}  # 6-6-6@36 has no accuracy yet: excluded, not on the front
    m = rows["4-10-4@12"]
    assert m["accuracy"] == pytest.approx(96.25) and m["latency_s"] == 0.6
    assert m["params_m"] == pytest.approx(Store(study.store).get("architectures", "4-10-4@12")["params"] / 1e6)
    r = study("pareto", "--source", "measured")
    assert "excluded for a missing objective value: 6-6-6@36" in r.stdout
    assert study("pareto", "--source", "measured:nano", "--json").returncode == 0
    assert_one_line_error(study("pareto", "--source", "measured:tx2"), 2)

    r = study("status", "--json")
    assert r.returncode == 0, r.stderr
    status = {x["id"]: x for x in r.json()}
    s = status["4-10-4@12"]
    assert s["runs"]["total"] == 3 and s["runs"]["by_status"] == {"done": 2, "queued": 1}
    assert s["accuracy"] == pytest.approx(96.25) and s["best_accuracy"] == 96.5
    assert s["benchmarks"]["latest"]["id"] == "b-00000002"
    assert s["benchmarks"]["latest"]["energy_j"] == pytest.approx(4.0 * 0.6 / 32)
    assert s["results"]["measured"]["energy_j"] == pytest.approx(4.0 * 0.6 / 32)
    assert s["results"]["thesis"]["energy_j"] == pytest.approx(3.99 * 0.53 / 64)
    assert len(status) == 57
    r = study("status")
    assert r.returncode == 0 and "4-10-4@12" in r.stdout and "(1 active)" in r.stdout


def test_status_of_an_empty_store(cli):
    r = cli("status", "--json")
    assert r.returncode == 0 and r.json() == []
    assert not cli.store.exists()


def test_committed_runs_json_is_the_initialised_study(cli, repo_root):
    """The repository's runs.json is exactly `klmtui init`: re-running init changes nothing."""
    committed = (repo_root / "runs.json").read_bytes()
    cli.store.write_bytes(committed)
    r = cli("init", "--json")
    assert r.returncode == 0, r.stderr
    counts = r.json()[0]
    assert counts["architectures_added"] == counts["architectures_updated"] == 0
    assert counts["results_added"] == counts["results_updated"] == 0
    assert cli.store.read_bytes() == committed
    assert b"/work/" not in committed and b"/tmp/" not in committed and b"/home/" not in committed
    assert len(cli("pareto", "--json").json()) == 35
