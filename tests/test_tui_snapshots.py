"""SVG snapshots of the main screens (pytest-textual-snapshot), on a fixed store at a fixed size.

Update after an intended change with `pytest tests/test_tui_snapshots.py --snapshot-update`
and look at the SVGs in tests/__snapshots__/ before committing them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.store import Store
from core.study import init_study
from klmtui.app import KlmtuiApp

SIZE = (120, 34)


def _run(id: str, arch_id: str, seed: int, status: str, **fields) -> dict:
    K, L, M = (int(x) for x in arch_id.split("@")[0].split("-"))
    return {"id": id, "arch_id": arch_id, "arch": f"{K}-{L}-{M}", "K": K, "L": L, "M": M,
            "channels": int(arch_id.split("@")[1]), "genotype": "SNAS_mild", "seed": seed, "profile": "quick",
            "epochs": 10, "epoch": 10, "status": status, "accuracy": None, "executor": "local",
            "created": "2026-01-01T00:00:00Z", "finished": "2026-01-01T01:00:00Z", **fields}


@pytest.fixture
def fixed_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The initialised study plus fixed runs and one benchmark (with its event file)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KLMTUI_HOME", str(tmp_path / "home"))
    store = Store("runs.json")
    init_study(store)
    for record in (
        _run("t-00000001", "6-6-6@12", 0, "done", accuracy=71.25),
        _run("t-00000002", "6-6-6@12", 1, "done", accuracy=72.75),
        _run("t-00000003", "6-6-6@36", 0, "running", epoch=3, finished=None),
        _run("t-00000004", "5-5-8@24", 0, "interrupted", epoch=4, finished=None),
        _run("t-00000005", "4-10-4@24", 0, "done", accuracy=80.5),
    ):
        store.insert("runs", record)
    bench = {"id": "b-00000001", "arch_id": "6-6-6@12", "arch": "6-6-6", "K": 6, "L": 6, "M": 6, "channels": 12,
             "device": "jet", "status": "done", "batch": 64, "latency_s": 0.0421, "latency_p90_s": 0.0433,
             "images_per_s": 1520.0, "power_w": 4.62, "energy_j": 0.00304, "weights": "trained",
             "environment": {"l4t": "32.7.4", "nvpmodel": "MAXN", "torch": "1.10.0"},
             "created": "2026-01-01T02:00:00Z", "finished": "2026-01-01T02:10:00Z"}
    store.insert("benchmarks", bench)
    bench2 = {**bench, "id": "b-00000002", "arch_id": "4-10-4@24", "arch": "4-10-4", "K": 4, "L": 10, "M": 4, "channels": 24, "latency_s": 0.0712,
              "power_w": 5.31, "energy_j": 0.0059}
    store.insert("benchmarks", bench2)
    events = [{"event": "hello", "environment": {"l4t": "32.7.4", "nvpmodel": "MAXN", "torch": "1.10.0"}}]
    events += [{"event": "latency", "pass": "latency", "seconds": 0.040 + 0.001 * (i % 7), "warmup": False}
               for i in range(120)]
    events += [{"event": "power", "board_power_mw": 4400 + 40 * (i % 9)} for i in range(40)]
    folder = store.run_dir("b-00000001")
    (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return tmp_path / "runs.json"


def app() -> KlmtuiApp:
    # no re-reads and no job refresh (which would mark the pid-less "running" run interrupted)
    return KlmtuiApp("runs.json", poll_s=60.0, jobs_refresh_s=None)


async def _settle(pilot) -> None:
    await pilot.pause(0.5)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause(0.3)


def test_home_measured(fixed_store, snap_compare):
    assert snap_compare(app(), terminal_size=SIZE, run_before=_settle)


def test_home_thesis_source(fixed_store, snap_compare):
    async def before(pilot):
        await _settle(pilot)
        await pilot.press("s")
        await pilot.pause(0.2)

    assert snap_compare(app(), terminal_size=SIZE, run_before=before)


def test_pareto(fixed_store, snap_compare):
    async def before(pilot):
        await _settle(pilot)
        await pilot.press("p")
        await pilot.pause(0.5)

    assert snap_compare(app(), terminal_size=(140, 40), run_before=before)


def test_details_benchmark(fixed_store, snap_compare):
    async def before(pilot):
        await _settle(pilot)
        table = pilot.app.screen.query_one("#arch-table")
        table.move_cursor(row=table.get_row_index("6-6-6@12"))
        await pilot.press("enter")
        await _settle(pilot)
        await pilot.pause(0.3)

    assert snap_compare(app(), terminal_size=SIZE, run_before=before)


def test_train_form(fixed_store, snap_compare):
    async def before(pilot):
        await _settle(pilot)
        await pilot.press("t")
        await pilot.pause(0.3)

    assert snap_compare(app(), terminal_size=(100, 34), run_before=before)


def test_devices(fixed_store, snap_compare):
    Store("runs.json").insert("devices", {
        "id": "jet", "name": "jet", "host": "jetson-nano.local", "user": "nvidia", "port": 22,
        "key": "~/.ssh/id_ed25519", "python": "python3", "tegrastats": "tegrastats", "workdir": None, "added": None})

    async def before(pilot):
        await _settle(pilot)
        await pilot.press("d")
        await pilot.pause(0.3)

    assert snap_compare(app(), terminal_size=(100, 24), run_before=before)


def test_home_80x24(fixed_store, snap_compare):
    """A small terminal: the first columns whole, the footer without overlap."""
    assert snap_compare(app(), terminal_size=(80, 24), run_before=_settle)


def test_details_80x24(fixed_store, snap_compare):
    async def before(pilot):
        await _settle(pilot)
        table = pilot.app.screen.query_one("#arch-table")
        table.move_cursor(row=table.get_row_index("6-6-6@12"))
        await pilot.press("enter")
        await _settle(pilot)
        await pilot.pause(0.3)

    assert snap_compare(app(), terminal_size=(80, 24), run_before=before)


def test_compare(fixed_store, snap_compare):
    async def before(pilot):
        await _settle(pilot)
        table = pilot.app.screen.query_one("#arch-table")
        for arch_id in ("6-6-6@12", "4-10-4@24"):
            table.move_cursor(row=table.get_row_index(arch_id))
            await pilot.press("space")
        await pilot.press("m")
        await _settle(pilot)
        await pilot.pause(0.3)

    assert snap_compare(app(), terminal_size=SIZE, run_before=before)
