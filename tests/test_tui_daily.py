"""Daily use of the TUI through Pilot (real key presses): forms that keep focus, the Pareto screen
validating like the CLI, picking/reading/deleting runs in the details screen, the compare screen,
remembered defaults, and the home screen at 80x24. Stores with real history come from
tests/fixtures/runs.py (a real 2-epoch training and a real local benchmark of 1-1-1@8)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from core import prefs
from core.store import Store
from klmtui.app import KlmtuiApp
from klmtui.messages import OpenCompare
from tests.fixtures.runs import TINY
from tests.test_tui import study_store, sync, table_ids, wait_until


def screen_name(app) -> str:
    return type(app.screen).__name__


def text_of(app, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


def footer_keys(app) -> dict:
    """The bindings the footer shows on the current screen: key -> description."""
    return {b.key: b.description for _, b, _, _ in app.screen.active_bindings.values() if b.show}


def footer_width(app) -> int:
    """Cells the compact footer needs for them: `key description` and a space each."""
    shown = [b for _, b, _, _ in app.screen.active_bindings.values() if b.show]
    return sum(len(app.get_key_display(b)) + 1 + len(b.description) + 1 for b in shown)


async def open_details_of(pilot, app, arch_id: str) -> None:
    await wait_until(pilot, lambda: arch_id in table_ids(app), what="the table")
    table = app.screen.query_one("#arch-table")
    table.move_cursor(row=table.get_row_index(arch_id))
    await pilot.press("enter")
    await wait_until(pilot, lambda: screen_name(app) == "DetailsScreen", what="the details screen")


@sync
async def test_forms_focus_their_first_field_and_inputs_own_their_keys(tmp_path, monkeypatch):
    monkeypatch.setenv("KLMTUI_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KLMTUI_DATA", raising=False)
    store = study_store(tmp_path)
    app = KlmtuiApp(store.path, jobs_refresh_s=None)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: bool(table_ids(app)), what="the table")
        await pilot.press("t")
        await wait_until(pilot, lambda: screen_name(app) == "TrainForm", what="the train form")
        await pilot.pause(0.2)
        assert app.focused is not None and app.focused.id == "profile"  # not the OK button
        assert app.screen.query_one("#profile").value == prefs.DEFAULT_PROFILE == "paper"  # the CLI's default
        await pilot.press("tab")
        assert app.focused.id == "epochs"
        await pilot.press(*"3b", "enter")  # `b` is typed (the home screen's Bench binding does not fire)
        assert screen_name(app) == "TrainForm" and app.screen.query_one("#epochs").value == "3b"
        await wait_until(pilot, lambda: "epochs must be a whole number" in text_of(app, "#form-error"))
        app.screen.query_one("#epochs").value = "1"
        data = app.screen.query_one("#data")
        data.value = str(tmp_path / "no-such-folder")
        data.focus()
        await pilot.press("enter")  # checked in a worker; the problem is said in the form, in its words
        await wait_until(pilot, lambda: "data folder:" in text_of(app, "#form-error"), what="the data folder check")
        assert "does not exist" in text_of(app, "#form-error") and "--data" not in text_of(app, "#form-error")
        assert screen_name(app) == "TrainForm" and app.focused.id == "data"
        assert Store(store.path).all("runs") == []  # nothing submitted
        await pilot.press("escape")
        await pilot.press("b")
        await wait_until(pilot, lambda: screen_name(app) == "BenchForm", what="the bench form")
        await pilot.pause(0.2)
        assert app.focused is not None and app.focused.id == "device"


@sync
async def test_pareto_screen_validates_like_the_cli_inline_and_enter_keeps_focus(tmp_path, cli):
    store = study_store(tmp_path)
    app = KlmtuiApp(store.path, jobs_refresh_s=None)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_until(pilot, lambda: bool(table_ids(app)), what="the table")
        await pilot.press("p")
        await wait_until(pilot, lambda: screen_name(app) == "ParetoScreen")
        await wait_until(pilot, lambda: app.screen.result is not None, what="the thesis front")
        assert app.screen.source == "thesis"
        assert "none, e.g." in str(app.screen.query_one("#tolerances").placeholder)  # not read as a value in force
        objectives = app.screen.query_one("#objectives")
        objectives.focus()
        objectives.value = "foo:max accuracy:max"
        await pilot.press("enter")
        await pilot.pause(0.2)
        shown = text_of(app, "#front-description")
        assert "no row has a value for 'foo'" in shown and "accuracy" in shown
        assert app.screen.result is None and app.screen.query_one("#front-table").row_count == 0  # no "0 of 0 rows"
        assert app.focused is objectives  # enter applied it and kept the focus
        await pilot.press("end", "s", "n")  # typed into the field: no source switch, no plot cycling
        assert objectives.value.endswith("sn") and app.screen.source == "thesis"
        objectives.value = "accuracy:max latency_s:min"
        tolerances = app.screen.query_one("#tolerances")
        tolerances.focus()
        await pilot.press(*"latency_s=abc", "enter")
        await pilot.pause(0.2)
        assert "bad tolerance 'latency_s=abc'" in text_of(app, "#front-description") and app.focused is tolerances
        tolerances.value = "latency_s=5%"
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen.result is not None, what="the front with a tolerance")
        assert "latency_s=5%" in text_of(app, "#front-description") or "5%" in text_of(app, "#front-description")
    # the same mistake through the CLI: the same sentence
    cli_line = cli("--store", str(store.path), "pareto", "--source", "thesis", "--objective", "foo:max",
                   "--objective", "accuracy:max", store=False).stderr
    assert "no row has a value for 'foo'" in cli_line


@sync
async def test_pareto_default_objectives_fall_back_to_columns_with_values(history, monkeypatch):
    monkeypatch.setenv("KLMTUI_HOME", str(history.parent / "home"))
    app = KlmtuiApp(history, jobs_refresh_s=None)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_until(pilot, lambda: bool(table_ids(app)), what="the table")
        await pilot.press("p")
        await wait_until(pilot, lambda: screen_name(app) == "ParetoScreen")
        for _ in range(6):
            if app.screen.source == "measured":
                break
            await pilot.press("s")
            await pilot.pause(0.2)
        assert app.screen.source == "measured"
        await wait_until(pilot, lambda: app.screen.result is not None, what="the measured front")
        assert app.screen.query_one("#objectives").value == "accuracy:max params_m:min latency_s:min"
        assert "has no values for power_w" in text_of(app, "#front-description")
        assert [r["id"] for r in app.screen.result.rows] == [TINY]
    env = {**os.environ, "KLMTUI_HOME": str(history.parent / "home"), "COLUMNS": "120"}
    out = subprocess.run([sys.executable, "-m", "klmtui", "--store", str(history), "pareto", "--source", "measured"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "no values for power_w" in out.stderr and TINY.split("@")[0] in out.stdout


@sync
async def test_details_pick_any_run_read_its_whole_log_and_delete_it(history, monkeypatch):
    monkeypatch.setenv("KLMTUI_HOME", str(history.parent / "home"))
    store = Store(history)
    run_id = store.all("runs")[0]["id"]
    bench_id = store.all("benchmarks")[0]["id"]
    app = KlmtuiApp(history, jobs_refresh_s=None)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_details_of(pilot, app, TINY)
        table = app.screen.query_one("#runs-table")
        await wait_until(pilot, lambda: table.row_count == 2, what="the run and the benchmark listed")
        assert app.focused is table
        await wait_until(pilot, lambda: run_id in text_of(app, "#training-title"))
        await wait_until(pilot, lambda: "done at epoch 2/2" in text_of(app, "#training-progress"))
        assert "eta" not in text_of(app, "#training-progress")
        await pilot.press("down")  # the benchmark: shown on the right
        await wait_until(pilot, lambda: bench_id in text_of(app, "#bench-stats"), what="the picked benchmark")
        await pilot.press("l")
        await wait_until(pilot, lambda: screen_name(app) == "LogScreen", what="the log screen")
        await wait_until(pilot, lambda: app.screen.loaded, what="the benchmark's log")
        assert app.screen.record_id == bench_id
        await pilot.press("escape")
        await pilot.press("up", "l")  # the run's whole log: no line cut
        await wait_until(pilot, lambda: screen_name(app) == "LogScreen" and app.screen.record_id == run_id)
        await wait_until(pilot, lambda: any("done: test accuracy" in line for line in app.screen.lines), what="the full log")
        full = (history.parent / "runs" / run_id / "log.txt").read_text().splitlines()
        assert app.screen.lines == full and max(len(line) for line in full) > 60
        shown = "".join(strip.text for strip in app.screen.query_one("#full-log").lines)
        assert "".join(full[0].split()) in "".join(shown.split())  # wrapped, not cut
        await pilot.press("escape")
        await wait_until(pilot, lambda: screen_name(app) == "DetailsScreen")
        await pilot.press("x")
        await wait_until(pilot, lambda: screen_name(app) == "ConfirmDialog", what="the confirmation")
        await pilot.click("#ok")
        await wait_until(pilot, lambda: store.get("runs", run_id) is None, what="the run deleted")
        await wait_until(pilot, lambda: not (history.parent / "runs" / run_id).exists(), what="its folder deleted")
        await wait_until(pilot, lambda: app.screen.query_one("#runs-table").row_count == 1, what="the list updated")
        await pilot.pause(2.5)  # the screen's 1 s folder poll must not bring the folder back
        assert not (history.parent / "runs" / run_id).exists()


@sync
async def test_compare_selected_rows_and_runs(history, monkeypatch):
    monkeypatch.setenv("KLMTUI_HOME", str(history.parent / "home"))
    store = Store(history)
    run_id, bench_id = store.all("runs")[0]["id"], store.all("benchmarks")[0]["id"]
    app = KlmtuiApp(history, jobs_refresh_s=None)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: TINY in table_ids(app), what="the table")
        await pilot.press("m")  # one row is not a comparison: said, nothing opens
        await pilot.pause(0.2)
        assert screen_name(app) == "HomeScreen"
        await pilot.press("slash", *"-1-", "enter")
        await wait_until(pilot, lambda: table_ids(app) == [TINY])
        await pilot.press("space")  # select 1-1-1@8
        app.screen.query_one("#filter").value = ""
        await wait_until(pilot, lambda: len(table_ids(app)) > 1)
        table = app.screen.query_one("#arch-table")
        table.move_cursor(row=table.get_row_index("4-10-4@12"))
        await pilot.press("space", "m")
        await wait_until(pilot, lambda: screen_name(app) == "CompareScreen", what="the compare screen")
        await wait_until(pilot, lambda: app.screen.items, what="the comparison")
        assert sorted(i.arch_id for i in app.screen.items) == sorted([TINY, "4-10-4@12"])
        rows = {key.value for key in app.screen.query_one("#compare-table").rows}
        assert {"arch_id", "params_m", "run", "latency_s"} <= rows
        await pilot.press("escape")
        app.post_message(OpenCompare([], [run_id, bench_id]))
        await wait_until(pilot, lambda: screen_name(app) == "CompareScreen" and app.screen.items, what="runs compared")
        items = app.screen.items
        assert [i.ref for i in items] == [run_id, bench_id]
        assert len(items[0].curve) == 2 and len(items[1].latencies) == 6
        assert "test accuracy" in str(app.screen.query_one("#compare-curves").render())
        assert "ms" in str(app.screen.query_one("#compare-latency").render())
        await pilot.press("a")
        assert "protocol" in {key.value for key in app.screen.query_one("#compare-table").rows}


@sync
async def test_train_defaults_are_remembered_across_restarts(tmp_path, monkeypatch, cifar_dir):
    monkeypatch.setenv("KLMTUI_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KLMTUI_DATA", raising=False)
    store = study_store(tmp_path, extra=(TINY,))
    app = KlmtuiApp(store.path, jobs_refresh_s=None)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: TINY in table_ids(app), what="the table")
        table = app.screen.query_one("#arch-table")
        table.move_cursor(row=table.get_row_index(TINY))
        await pilot.press("t")
        await wait_until(pilot, lambda: screen_name(app) == "TrainForm")
        form = app.screen
        form.query_one("#profile").value = "quick"
        for name, value in (("epochs", "1"), ("data", str(cifar_dir)), ("train_subset", "20"), ("test_subset", "20")):
            form.query_one(f"#{name}").value = value
        form.query_one("#test_subset").focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: Store(store.path).all("runs"), what="the run submitted")
    run = Store(store.path).all("runs")[0]
    from core.jobs import cancel

    cancel(Store(store.path), run["id"])  # the test needs the form, not the training
    saved = json.loads((tmp_path / "home" / "defaults.json").read_text())
    assert saved["train"]["data"] == str(cifar_dir) and saved["train"]["profile"] == "quick"
    app = KlmtuiApp(store.path, jobs_refresh_s=None)  # a new session
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: TINY in table_ids(app), what="the table")
        await pilot.press("t")
        await wait_until(pilot, lambda: screen_name(app) == "TrainForm")
        assert app.screen.query_one("#data").value == str(cifar_dir)
        assert app.screen.query_one("#profile").value == "quick"


@sync
async def test_home_and_details_at_80x24_keep_first_columns_and_footer(history, monkeypatch):
    monkeypatch.setenv("KLMTUI_HOME", str(history.parent / "home"))
    app = KlmtuiApp(history, jobs_refresh_s=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: TINY in table_ids(app), what="the table")
        await pilot.pause(0.5)
        shown = footer_keys(app)
        assert {"t", "b", "m", "p", "slash", "question_mark", "enter"} <= set(shown)
        assert footer_width(app) <= 80 - 12  # the command palette key keeps its room: nothing overlaps it
        await open_details_of(pilot, app, TINY)
        await wait_until(pilot, lambda: app.screen.query_one("#runs-table").row_count == 2)
        dt = app.screen.query_one("#runs-table")
        first = [str(dt.get_row_at(i)[0]) for i in range(dt.row_count)]
        assert all(i.startswith(("t-", "b-")) and len(i) == 10 for i in first)  # whole ids
        assert {"l", "x", "escape"} <= set(footer_keys(app)) and footer_width(app) <= 80 - 12


@sync
async def test_devices_screen_says_a_check_failed_and_shows_ports_whole(tmp_path, monkeypatch):
    monkeypatch.setenv("KLMTUI_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KLMTUI_SSH_TIMEOUT", "5")
    store = study_store(tmp_path)
    store.upsert("devices", {"id": "nano", "name": "nano", "host": "127.0.0.1", "user": "jetson", "port": 2222,
                             "key": None, "python": "python3", "tegrastats": "tegrastats"})
    app = KlmtuiApp(store.path, jobs_refresh_s=None)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: bool(table_ids(app)), what="the table")
        await pilot.press("d")
        await wait_until(pilot, lambda: screen_name(app) == "DevicesScreen")
        table = app.screen.query_one("#devices-table")
        await wait_until(pilot, lambda: table.row_count == 2, what="local and nano")
        assert [str(c) for c in table.get_row("nano")][3] == "2222"  # never 2.22e+03
        table.move_cursor(row=table.get_row_index("nano"))
        await pilot.press("k")  # nothing listens on 127.0.0.1:2222
        await wait_until(pilot, lambda: "failed" in text_of(app, "#device-report"), timeout=60, what="the failure")
        assert "checking" not in text_of(app, "#device-report")
        assert app.device_states["nano"].status == "failed" and str(table.get_row("nano")[-1]) == "FAILED"
