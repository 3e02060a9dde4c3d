"""`klmtui runs / show / rm / compare` as a user runs them: subprocesses on a store with real history."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from core.latency import median
from core.store import Store
from tests.fixtures.cli import assert_one_line_error
from tests.fixtures.runs import TINY, running_record


def klmtui(store: Path, *args: str, columns: int = 200, input: str | None = None):
    env = {**os.environ, "KLMTUI_HOME": str(store.parent / "home"), "COLUMNS": str(columns)}
    env.pop("KLMTUI_STORE", None)
    return subprocess.run([sys.executable, "-m", "klmtui", "--store", str(store), *args], env=env,
                          capture_output=True, text=True, timeout=120, input=input)


def ids(store: Path, *args: str) -> list[str]:
    out = klmtui(store, "runs", "--json", *args)
    assert out.returncode == 0, out.stderr
    return [r["id"] for r in json.loads(out.stdout)]


def test_runs_lists_filters_and_rejects_bad_filters(history):
    rows = json.loads(klmtui(history, "runs", "--json").stdout)
    kinds = {r["kind"]: r for r in rows}
    assert set(kinds) == {"train", "bench"} and all(r["status"] == "done" for r in rows)
    assert kinds["train"]["id"].startswith("t-") and kinds["train"]["epochs"] == 2
    assert kinds["bench"]["where"] == "local" and kinds["bench"]["latency_s"] > 0
    assert ids(history, "--kind", "bench") == [kinds["bench"]["id"]]
    assert ids(history, "--arch", "1-1-1") == ids(history, "--arch", TINY) == [r["id"] for r in rows]
    assert ids(history, "--arch", "2-2-2@8") == [] and ids(history, "--status", "failed") == []
    assert "unknown status 'bogus'" in assert_one_line_error(klmtui(history, "runs", "--status", "bogus"))
    assert_one_line_error(klmtui(history, "runs", "--arch", "6-6"))


def test_runs_table_at_80_columns_keeps_ids_whole_and_says_what_it_left_out(history):
    out = klmtui(history, "runs", columns=80)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert max(len(l) for l in lines) <= 80
    for run_id in ids(history):
        assert run_id in out.stdout  # full ids, never `t-12…`
    assert TINY in out.stdout and "…" not in out.stdout
    assert "left out at 80 columns" in out.stdout and "--wide" in out.stdout
    wide = klmtui(history, "--wide", "runs", columns=80)
    assert "left out" not in wide.stdout and "error" in wide.stdout and "when" in wide.stdout
    assert max(len(l) for l in wide.stdout.splitlines()) > 80


def test_show_prints_config_metrics_log_and_files(history):
    run_id, bench_id = ids(history, "--kind", "train")[0], ids(history, "--kind", "bench")[0]
    info = json.loads(klmtui(history, "show", run_id, "--json").stdout)
    assert info["kind"] == "train" and info["config"]["epochs"] == 2 and info["config"]["train_subset"] == 200
    assert [m["epoch"] for m in info["metrics"]] == [1, 2]
    assert any("done: test accuracy" in line for line in info["log"])
    assert {"metrics.jsonl", "model.pt", "log.txt"} <= {f["name"] for f in info["files"]}
    text = klmtui(history, "show", run_id, columns=80).stdout
    assert "configuration" in text and "metrics (2 epochs)" in text and "checkpoint.pt" in text
    bench = json.loads(klmtui(history, "show", bench_id, "--json").stdout)
    assert bench["kind"] == "bench" and bench["record"]["device"] == "local" and "events.jsonl" in {
        f["name"] for f in bench["files"]}
    assert "no training run or benchmark 't-nope'" in assert_one_line_error(klmtui(history, "show", "t-nope"))


def test_rm_refuses_running_asks_and_removes_record_and_folder(history):
    store = Store(history)
    run_id = ids(history, "--kind", "train", "--status", "done")[0]
    with running_record(history) as running:
        line = assert_one_line_error(klmtui(history, "rm", running, run_id, "--yes"))
        assert "still active" in line and running in line
    assert store.get("runs", run_id) is not None and (history.parent / "runs" / run_id).is_dir()  # all or nothing
    assert "add --yes" in assert_one_line_error(klmtui(history, "rm", run_id))  # no terminal to ask on
    out = klmtui(history, "rm", run_id, "--yes")
    assert out.returncode == 0 and f"removed {run_id}" in out.stdout
    assert store.get("runs", run_id) is None and not (history.parent / "runs" / run_id).exists()
    assert_one_line_error(klmtui(history, "rm", run_id, "--yes"))  # gone: unknown id


def test_compare_runs_benchmarks_and_architectures(history):
    run_id, bench_id = ids(history, "--kind", "train")[0], ids(history, "--kind", "bench")[0]
    items = json.loads(klmtui(history, "compare", run_id, bench_id, "--json").stdout)
    assert [i["ref"] for i in items] == [run_id, bench_id]
    assert [m["epoch"] for m in items[0]["curve"]] == [1, 2] and items[0]["latency_s"] == []
    assert len(items[1]["latency_s"]) == 6 and items[1]["figures"]["weights"] == "trained"  # 2 runs x 3 batches timed
    assert median(items[1]["latency_s"]) == items[1]["figures"]["latency_s"]  # the samples the summary came from
    by_arch = json.loads(klmtui(history, "compare", TINY, run_id, "--json").stdout)
    assert by_arch[0]["figures"]["run"] == run_id and by_arch[0]["figures"]["bench"] == bench_id
    text = klmtui(history, "compare", run_id, bench_id, columns=80).stdout
    assert "differences" in text and "distributions" in text and "latency ms/batch" in text
    assert "test accuracy % by epoch" in text
    assert "at least two" in assert_one_line_error(klmtui(history, "compare", run_id))
    assert_one_line_error(klmtui(history, "compare", run_id, "nonsense"))
