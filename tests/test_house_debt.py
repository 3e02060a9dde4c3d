"""Issue 15, the debt of the last round paid: no mypy exceptions, no ignored import, no swallowed
cancel error, one figure rule for every table, every figure with its unit, a capped event log."""

from __future__ import annotations

import ast
import asyncio
import threading
import tomllib
from pathlib import Path

from core.store import Store

ROOT = Path(__file__).resolve().parent.parent


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_no_module_is_excused_from_mypy_and_no_import_from_the_contracts():
    config = _pyproject()
    excused = [o["module"] for o in config["tool"]["mypy"].get("overrides", []) if o.get("ignore_errors")]
    assert excused == [], f"modules excused from mypy: {excused}"
    contracts = config["tool"]["importlinter"]["contracts"]
    ignored = {c["name"]: c["ignore_imports"] for c in contracts if c.get("ignore_imports")}
    assert ignored == {}, ignored


def test_remote_bench_sits_below_benchjobs():
    """remote.bench (one attempt) never imports remote.benchjobs (the lifecycle), not even lazily;
    the foreground forms and the wrappers the callers used live in benchjobs."""
    tree = ast.parse((ROOT / "remote" / "bench.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
            imported.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            imported.update(a.name for a in node.names)
    assert not any("benchjobs" in name for name in imported), imported
    from remote import bench, benchjobs

    for name in ("run_benchmark", "resume_benchmark", "refresh_benchmarks", "cancel_benchmark"):
        assert not hasattr(bench, name), name
    assert callable(benchjobs.run_benchmark) and callable(benchjobs.resume_benchmark)


def _queued_benchmark(tmp_path) -> tuple[Store, str]:
    from remote import benchjobs

    store = Store(tmp_path / "runs.json")
    [bench_id] = benchjobs.submit(store, ["1-1-1@8"], ["local"], {"batch": 2, "runs": 2, "batches": 2,
                                                                  "warmup_runs": 1, "warmup_batches": 1},
                                  start=False)  # queued, never started: nothing runs
    return store, bench_id


def test_following_hands_a_cancel_to_the_caller_once(tmp_path):
    """Services.follow_benchmarks starts no thread that could swallow an error: a set cancel is
    handed to `on_cancel` (once); here the caller cancels the queued benchmark, follow sees it end."""
    from klmtui.services import Services

    store, bench_id = _queued_benchmark(tmp_path)
    services = Services(store.path)
    asked: list[str] = []
    ended: list[dict] = []
    cancel = threading.Event()
    cancel.set()

    def on_cancel(i: str) -> None:
        asked.append(i)
        services.cancel(i)

    records = services.follow_benchmarks({bench_id: 0}, lambda i, e: None, ended.append, {bench_id: cancel},
                                         on_cancel, lambda: False, poll_s=0.05)
    assert asked == [bench_id]
    assert records is not None and records[0]["status"] == "cancelled"
    assert [r["id"] for r in ended] == [bench_id]


def test_a_late_cancel_is_reported_not_swallowed(tmp_path):
    """A stream's cancel that arrives after its benchmark ended is an ordinary cancel job: its
    error reaches the one handler and the user reads it (it used to vanish in a thread)."""
    from klmtui import messages as m
    from klmtui.app import KlmtuiApp
    from remote import benchjobs

    store, bench_id = _queued_benchmark(tmp_path)
    benchjobs.cancel(store, bench_id)  # it has ended (cancelled) before the stream's cancel arrives

    async def body() -> list[str]:
        app = KlmtuiApp(store.path)
        async with app.run_test(size=(100, 30)) as pilot:
            app.post_message(m.StreamCancelRequested(bench_id))
            for _ in range(200):
                await pilot.pause(0.05)
                texts = [n.message for n in app._notifications]
                if any(bench_id in t for t in texts):
                    return texts
            return [n.message for n in app._notifications]

    texts = asyncio.run(body())
    assert any(f"benchmark {bench_id} is not running (status cancelled)" in t for t in texts), texts


def test_the_ui_names_the_sources_through_core_schema():
    """klmtui never compares with, defaults to or falls back on a literal source name ("thesis",
    "measured"): core.schema's MEASURED_SOURCE / THESIS_SOURCE are the one spelling. ("thesis" as a
    protocol or a timing is another word and stays a choice value.)"""
    from core.schema import MEASURED_SOURCE, THESIS_SOURCE

    names = {MEASURED_SOURCE, THESIS_SOURCE}
    found = []
    for path in sorted((ROOT / "klmtui").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare):
                candidates = [node.left, *node.comparators]
            elif isinstance(node, ast.BoolOp):
                candidates = list(node.values)
            elif isinstance(node, ast.arguments):
                candidates = [*node.defaults, *[d for d in node.kw_defaults if d is not None]]
            else:
                continue
            for c in candidates:
                if isinstance(c, ast.Constant) and c.value in names:
                    found.append(f"{path.relative_to(ROOT)}:{c.lineno} spells {c.value!r}")
    assert not found, "\n".join(found)


def test_one_finite_number_check_for_options_and_csv_cells():
    """core.numbers.finite_in is the check; core.limits (InputError) and core.reference
    (ValueError with the CSV line) word its refusals in their own terms."""
    import pytest

    from core.errors import InputError
    from core.limits import check_float
    from core.numbers import NotANumber, NotFinite, OutOfRange, finite_in
    from core.reference import _number

    assert finite_in(3, 0, 10) == 3.0 and finite_in(0.0, 0, 1) == 0.0
    for bad, kind in ((True, NotANumber), ("1", NotANumber), (float("nan"), NotFinite), (float("-inf"), NotFinite),
                      (10**400, NotFinite), (0.0, OutOfRange), (10.5, OutOfRange)):
        with pytest.raises(kind):
            finite_in(bad, 0, 10, low_open=True)
    with pytest.raises(OutOfRange) as out:
        finite_in(-1, 0, 100)
    assert out.value.interval == "[0, 100]"
    with pytest.raises(InputError, match=r"^lr must be a finite number \(got an integer too large\)$"):
        check_float("lr", 10**400, 0.0, 10.0, low_open=True)
    with pytest.raises(InputError, match=r"^lr must be in \(0, 10\] \(got 11\)$"):
        check_float("lr", 11, 0.0, 10.0, low_open=True)
    with pytest.raises(ValueError, match=r"^latency_s 'inf' is not a finite number$"):
        _number("inf", "latency_s")
    with pytest.raises(ValueError, match=r"^power_w 0 is out of range \(must be > 0\)$"):
        _number("0", "power_w")
    assert _number(" 96.01 ", "accuracy") == 96.01 and _number("", "accuracy") is None


def test_one_figure_rule_for_every_table(tmp_path):
    """The thesis' 0.49 s is `0.49` in the home table, the Pareto table and the export alike (it
    was `0.4900` in the home table); a measured 0.0242 s keeps its digits everywhere."""
    from core.numbers import column_figure, figure
    from core.report import format_value
    from core.study import init_study
    from klmtui.services import Services
    from klmtui.views import arch_rows
    from klmtui.widgets.arch_table import row_cells

    assert figure(0.49) == "0.49" and figure(0.49, 2) == "0.49" and figure(1.0, 2) == "1.00"
    assert figure(0.0550) == "0.055" and figure(97.2, 2) == "97.20" and figure(31.084, 1) == "31.1"
    assert figure(1.2996, 1) == "1.30" and figure(0.0559234) == "0.0559"  # a rounding zero is a digit
    store = Store(tmp_path / "runs.json")
    init_study(store)
    rows = {r.id: r for r in arch_rows(Services(store.path).snapshot(), "thesis")}
    cells = [str(c) for c in row_cells(rows["3-9-6@12"], False)]
    assert "0.49" in cells and "0.4900" not in cells and "4.06" in cells and "96.01" in cells, cells
    assert column_figure("latency_s", 0.49) == format_value("latency_s", 0.49) == "0.49"
    assert column_figure("latency_s", 0.0242) == format_value("latency_s", 0.0242) == "0.0242"


def test_predict_states_the_unit_of_every_figure(cli):
    """`klmtui predict`'s table: energy_j is joules per image, and the table says so."""
    assert cli("init").returncode == 0
    r = cli("predict", "--target", "energy_j", "--target", "latency_s")
    assert r.returncode == 0, r.stderr
    header = next(line for line in r.stdout.splitlines() if "target" in line and "predicted" in line)
    assert "unit" in header, r.stdout
    energy = [line for line in r.stdout.splitlines() if " energy_j " in line]
    assert energy and all(" J/img " in line for line in energy), r.stdout
    assert all(" s/batch " in line for line in r.stdout.splitlines() if " latency_s " in line)


def test_an_endless_stream_of_valid_events_cannot_fill_the_disk(tmp_path, monkeypatch):
    """A device that prints valid latency events without end (`yes`): events.jsonl keeps the
    first MAX_EVENTS_BYTES and a rolling tail of EVENTS_TAIL_BYTES (the last events, written
    before `finished`); what was left out is counted in `finished` and on the record."""
    import json

    from remote import bench
    from remote.benchjobs import run_benchmark

    monkeypatch.setenv("KLMTUI_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(bench, "MAX_EVENTS_BYTES", 64 << 10)
    monkeypatch.setattr(bench, "EVENTS_TAIL_BYTES", 16 << 10)
    hello = '{"event": "hello", "pid": 4242, "protocol": {"protocol": "thesis", "runs": 1, "batches": 2}}'
    latency = '{"event": "latency", "pass": "latency", "run": 0, "batch": 1, "seconds": 0.01}'
    script = tmp_path / "endless-python"
    script.write_text(f"#!/bin/sh\necho '{hello}'\nexec yes '{latency}'\n")
    script.chmod(0o755)
    store = Store(tmp_path / "runs.json")
    store.insert("devices", {"id": "endless", "name": "endless", "host": "local", "python": str(script)})
    cancel = threading.Event()
    seen = {"latency": 0}

    def on_event(event: dict) -> None:
        if event["event"] == "latency":
            seen["latency"] += 1
            if seen["latency"] >= 5000:  # ~8x the cap: stop the device
                cancel.set()

    record = run_benchmark(store, "1-1-1@8", "endless", {"batch": 2, "runs": 2, "batches": 2, "warmup_runs": 1,
                                                         "warmup_batches": 1, "no_power": True},
                           on_event=on_event, cancel=cancel)
    path = store.run_dir(record["id"]) / "events.jsonl"
    events = [json.loads(line) for line in path.read_text().splitlines()]
    assert record["status"] == "cancelled", record.get("error")
    assert path.stat().st_size <= (64 << 10) + (16 << 10) + 4096  # the cap, the tail, the host's few events
    kept = sum(1 for e in events if e["event"] == "latency")
    assert record["events_dropped"] > 0 and kept + record["events_dropped"] == seen["latency"]
    assert events[-1]["event"] == "finished" and events[-1]["events_dropped"] == record["events_dropped"]
    assert [e["event"] for e in events[-20:-1]] == ["latency"] * 19  # the tail: the last events, kept
    assert [e["event"] for e in events[:2]] == ["benchmark", "stage"]  # the beginning, kept


def test_the_cli_cancel_of_a_followed_benchmark_handles_errors_by_type(tmp_path, monkeypatch, capsys):
    """`klmtui bench`'s Ctrl-C cancels each followed benchmark in a thread: one that ended meanwhile
    (InputError, real here) is no news; one that would not stop (OperationFailed) is a warning line."""
    from core.errors import OperationFailed
    from klmtui.cli.bench import _cancel_one
    from remote import benchjobs

    store, bench_id = _queued_benchmark(tmp_path)
    benchjobs.cancel(store, bench_id)
    _cancel_one(store, bench_id)  # "benchmark ... is not running (status cancelled)"
    assert capsys.readouterr().err == ""

    def stuck(store, bench_id, wait_s=20.0):
        raise OperationFailed(f"benchmark {bench_id} did not stop within 20 s (pid 4242)")

    monkeypatch.setattr(benchjobs, "cancel", stuck)
    _cancel_one(store, bench_id)
    assert capsys.readouterr().err == (f"klmtui: {bench_id}: warning: not cancelled: benchmark {bench_id} "
                                       "did not stop within 20 s (pid 4242)\n")


def test_a_malformed_keys_file_is_said_not_ignored(tmp_path, monkeypatch):
    """keys.json that is not JSON: a warning naming the file at start, and no keymap is set."""
    from klmtui.app import KlmtuiApp

    home = tmp_path / "home"
    home.mkdir()
    (home / "keys.json").write_text('{"klmtui.pareto": "f2",')
    monkeypatch.setenv("KLMTUI_HOME", str(home))
    app = KlmtuiApp(tmp_path / "runs.json")
    set_keymaps: list = []
    monkeypatch.setattr(app, "set_keymap", set_keymaps.append)

    async def body() -> list[str]:
        async with app.run_test(size=(100, 30)) as pilot:
            for _ in range(100):
                await pilot.pause(0.05)
                if app._notifications:
                    break
            return [n.message for n in app._notifications]

    texts = asyncio.run(body())
    assert any(str(home / "keys.json") in t and "not JSON" in t and "default keys" in t for t in texts), texts
    assert set_keymaps == []
