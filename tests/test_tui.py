"""The TUI driven with real key presses (Textual's Pilot) on temp stores: init, table, Pareto,
a live benchmark over the loopback sshd (trust dialog included), bad stores, a small terminal."""

from __future__ import annotations

import asyncio
import functools
import sys
from pathlib import Path

import pytest

from core.arch import parse_arch
from core.store import Store
from core.study import architecture_record, init_study
from klmtui.app import KlmtuiApp

TINY = "1-1-1@8"


def sync(fn):
    """Run an async test body in its own event loop (no asyncio pytest plugin needed)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return asyncio.run(fn(*args, **kwargs))

    return wrapper


async def wait_until(pilot, condition, timeout: float = 60.0, what: str = "condition") -> None:
    """Let the app run until `condition()` holds (the app keeps processing messages meanwhile)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.1)


def table_ids(app) -> list[str]:
    table = app.screen.query_one("#arch-table")
    return [row.key.value for row in table.ordered_rows]


async def bench_tiny(pilot, app) -> None:
    """Filter the table to the tiny architecture, press b and accept the form (the app's defaults)."""
    await wait_until(pilot, lambda: bool(table_ids(app)), what="the table")
    await pilot.press("slash", *TINY, "enter")
    await wait_until(pilot, lambda: table_ids(app) == [TINY])
    await pilot.press("b")
    await wait_until(pilot, lambda: type(app.screen).__name__ == "BenchForm", what="the device picker")
    await pilot.click("#ok")


def study_store(tmp_path: Path, extra: tuple[str, ...] = ()) -> Store:
    store = Store(tmp_path / "runs.json")
    init_study(store)
    for text in extra:
        store.upsert("architectures", architecture_record(parse_arch(text), in_thesis=None, sampled=False))
    return store


@sync
async def test_missing_store_offers_init_and_table_lists_the_study(tmp_path):
    path = tmp_path / "runs.json"
    app = KlmtuiApp(path)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ConfirmDialog", what="the init offer")
        await pilot.press("enter")  # "Initialise"
        await wait_until(pilot, lambda: app.snapshot is not None and not app.snapshot.missing, what="init")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "HomeScreen")
        store = Store(path)
        expected = {a["id"] for a in store.all("architectures")}
        await wait_until(pilot, lambda: set(table_ids(app)) == expected, what="the table")
        assert "6-6-6@36" in expected and len(expected) >= 23
        # filter by channels, then clear
        await pilot.press("slash", *"@24", "enter")
        await pilot.pause(0.2)
        assert table_ids(app) and all(i.endswith("@24") for i in table_ids(app))
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert len(table_ids(app)) == len(expected)
        # multi-select with space
        await pilot.press("space", "space")
        assert len(app.screen.query_one("#arch-table").selected) == 2
        # nothing measured yet: the thesis' figures are shown (labelled so), with their front markers
        assert app.screen.source == "thesis"
        assert "reference: thesis" in str(app.screen.query_one("#source-label").render())
        assert sum(r.on_front for r in app.screen.query_one("#arch-table").rows_by_id.values()) == 35
        await pilot.press("s")  # toggle to our own (empty) measurements
        await pilot.pause(0.2)
        assert app.screen.source == "measured"
        assert not any(r.accuracy for r in app.screen.query_one("#arch-table").rows_by_id.values())


@sync
async def test_pareto_screen_shows_the_thesis_front(tmp_path):
    study_store(tmp_path)
    app = KlmtuiApp(tmp_path / "runs.json")
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_until(pilot, lambda: bool(table_ids(app)), what="the table")
        await pilot.press("p")
        await wait_until(pilot, lambda: getattr(app.screen, "result", None) is not None, what="the front")
        screen = app.screen
        assert screen.source == "thesis"
        # the plain 4-objective front over the thesis' published figures (docs/architecture.md, Figures and the thesis)
        assert len(screen.result.front) == 35
        table = screen.query_one("#front-table")
        assert table.row_count == len(screen.result.rows)
        # objectives chosen on screen: a 2-objective front is smaller
        objectives = screen.query_one("#objectives")
        objectives.value = ""
        await pilot.click("#objectives")
        await pilot.press(*"accuracy:max latency_s:min", "enter")
        await pilot.pause(0.3)
        assert 0 < len(screen.result.front) < 35
        assert [o.name for o in screen.result.objectives] == ["accuracy", "latency_s"]
        plain = len(screen.result.front)
        await pilot.click("#tolerances")
        await pilot.press(*"latency_s=10%", "enter")  # a tolerance, stated in the description
        await pilot.pause(0.3)
        assert len(screen.result.front) != plain and "latency_s 10% (relative)" in screen.result.describe()
        assert "tolerances" in str(screen.query_one("#front-description").render())
        await pilot.press("n", "s")  # next plot, next source: still alive
        await pilot.pause(0.2)
        await pilot.press("escape")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "HomeScreen")


@sync
async def test_corrupt_store_is_reported_and_left_untouched(tmp_path):
    path = tmp_path / "runs.json"
    path.write_text('{"architectures": {"1": {"id": "x"')
    before = path.read_bytes()
    app = KlmtuiApp(path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.snapshot is not None, what="a snapshot")
        assert app.snapshot.error and "not valid JSON" in app.snapshot.error
        message = str(app.screen.query_one("#store-message").render())
        assert "Cannot read the store" in message
        await pilot.press("p", "escape", "d", "escape", "question_mark", "escape")  # still alive
        assert type(app.screen).__name__ == "HomeScreen"
    assert path.read_bytes() == before


@sync
async def test_small_terminal_and_help_and_palette(tmp_path):
    study_store(tmp_path)
    app = KlmtuiApp(tmp_path / "runs.json")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: bool(table_ids(app)), what="the table")
        for key in ("question_mark", "escape", "enter", "escape", "d", "escape", "t", "escape", "b", "escape"):
            await pilot.press(key)
            await pilot.pause(0.1)
        assert type(app.screen).__name__ == "HomeScreen"
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert {"Pareto fronts", "Train", "Benchmark", "Devices"} <= set(titles)


def _sshd_device(sshd, tmp_path: Path, tegrastats_interval_ms: int | None = None) -> dict:
    """The loopback sshd as a device: the venv's python (torch) and a replaying tegrastats."""
    sys.path.insert(0, str(Path(__file__).parent))
    import fake_tegrastats

    from tests.fixtures.sshd import device_record

    bin_dir = fake_tegrastats.install(tmp_path / "bin", interval=tegrastats_interval_ms)
    return device_record(sshd, "jet", python=sys.executable, tegrastats=str(bin_dir / "tegrastats"))


@pytest.mark.slow
@sync
async def test_benchmark_over_ssh_streams_live_then_summary(tmp_path, sshd, ssh_env):
    store = study_store(tmp_path, extra=(TINY,))
    store.upsert("devices", _sshd_device(sshd, tmp_path))
    app = KlmtuiApp(tmp_path / "runs.json", bench_defaults={
        "device": "jet", "batch": 2, "runs": 4, "batches": 5, "warmup_runs": 1, "warmup_batches": 1})
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_until(pilot, lambda: bool(table_ids(app)), what="the table")
        # devices screen: trust the device's host key after seeing its fingerprint
        await pilot.press("d")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "DevicesScreen")
        await pilot.press("down")  # local, then jet
        await pilot.press("t")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "TrustDialog", what="the trust dialog")
        assert app.screen.fingerprint == sshd.fingerprint
        body = " ".join(str(s.render()) for s in app.screen.query(".body"))
        assert sshd.fingerprint in body
        await pilot.press("enter")  # Trust
        known_hosts = Path(ssh_env["KLMTUI_HOME"]) / "known_hosts"
        await wait_until(pilot, lambda: known_hosts.exists(), what="the key to be recorded")
        assert known_hosts.read_text() == sshd.known_hosts_line()
        await pilot.press("k")  # check: facts about the device, over SSH
        report = lambda: str(app.screen.query_one("#device-report").render())  # noqa: E731
        await wait_until(pilot, lambda: "reachable: True" in report(), what="the device check")
        assert "tegrastats: True" in report() and f"torch: {__import__('torch').__version__}" in report()
        await pilot.press("escape")
        # benchmark the tiny architecture: filter, b, confirm the form
        await pilot.press("slash", *"1-1-1@8", "enter")
        await wait_until(pilot, lambda: table_ids(app) == [TINY])
        await pilot.press("b")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "BenchForm", what="the device picker")
        await pilot.click("#ok")
        await pilot.press("enter")  # details: the live panel
        await wait_until(pilot, lambda: type(app.screen).__name__ == "DetailsScreen", what="details")
        stream = app.streams.for_arch(TINY)
        await wait_until(pilot, lambda: stream.latencies and stream.power_w, timeout=120, what="live latency and power")
        live_stats = str(app.screen.query_one("#bench-stats").render())
        await wait_until(pilot, lambda: not stream.active, timeout=180, what="the benchmark to end")
        assert stream.status == "done", stream.error
        await pilot.pause(0.3)
        stats = str(app.screen.query_one("#bench-stats").render())
        assert "latency median" in stats and "summary" in stats and "power" in stats
        assert "timed" in live_stats and "batches" in live_stats
        assert "rails (power = input, tegrastats)" in stats  # every rail the board reported (issue 9)
        record = Store(tmp_path / "runs.json").get("benchmarks", stream.bench_id)
        assert record["status"] == "done" and record["latency_s"] > 0 and record["power_w"] > 0
        # the home table now shows the measured latency and power
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen.query_one("#arch-table").rows_by_id[TINY].latency_s is not None)


@pytest.mark.slow
@sync
async def test_device_vanishing_mid_stream_is_an_error_not_a_crash(tmp_path, sshd, ssh_env):
    store = study_store(tmp_path, extra=(TINY,))
    # A board reporting power every 0.7 s: the power pass waits for 3 samples, so the benchmark is
    # still streaming >= 2 s after its first latencies however fast the CPU is; a short protocol
    # (4 runs) then keeps the resumed attempt short on a loaded one (40 runs took > 3 min there).
    store.upsert("devices", _sshd_device(sshd, tmp_path, tegrastats_interval_ms=700))
    known_hosts = Path(ssh_env["KLMTUI_HOME"]) / "known_hosts"
    known_hosts.parent.mkdir(parents=True, exist_ok=True)
    known_hosts.write_text(sshd.known_hosts_line())
    app = KlmtuiApp(tmp_path / "runs.json", bench_defaults={
        "device": "jet", "batch": 2, "runs": 4, "batches": 10, "warmup_runs": 1, "warmup_batches": 1})
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: bool(table_ids(app)), what="the table")
        await pilot.press("slash", *"1-1-1@8", "enter")
        await wait_until(pilot, lambda: table_ids(app) == [TINY])
        await pilot.press("b")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "BenchForm")
        await pilot.click("#ok")
        await wait_until(pilot, lambda: app.streams.for_arch(TINY) is not None)
        stream = app.streams.for_arch(TINY)
        await wait_until(pilot, lambda: len(stream.latencies) > 3, timeout=120, what="samples")
        sshd.kill()
        await wait_until(pilot, lambda: not stream.active, timeout=120, what="the failure")
        assert stream.status == "failed" and stream.error
        await pilot.press("enter")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "DetailsScreen")
        await pilot.pause(0.3)
        assert "error" in str(app.screen.query_one("#bench-stats").render())
        failed_id = Store(tmp_path / "runs.json").find("benchmarks", arch_id=TINY)[0]["id"]
        # the device is back: r re-runs the failed benchmark under its id, streaming again
        sshd.start()
        await pilot.press("r")
        await wait_until(pilot, lambda: app.streams.for_arch(TINY) is not stream, what="the resumed stream")
        resumed = app.streams.for_arch(TINY)
        await wait_until(pilot, lambda: not resumed.active, timeout=180, what="the resumed benchmark")
        assert resumed.status == "done", resumed.error
        record = Store(tmp_path / "runs.json").get("benchmarks", failed_id)
        assert record["status"] == "done" and record["latency_s"] > 0 and record.get("attempt") == 2


@sync
async def test_sort_by_header_click_and_key_and_export(tmp_path):
    study_store(tmp_path)
    app = KlmtuiApp(tmp_path / "runs.json")
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_until(pilot, lambda: bool(table_ids(app)), what="the table")
        table = app.screen.query_one("#arch-table")
        params = lambda: [table.rows_by_id[i].params for i in table_ids(app)]  # noqa: E731
        table.post_message(table.HeaderSelected(table, table.columns["params"].key, 9, table.columns["params"].label))
        await pilot.pause(0.2)
        assert params() == sorted(params())
        table.post_message(table.HeaderSelected(table, table.columns["params"].key, 9, table.columns["params"].label))
        await pilot.pause(0.2)
        assert params() == sorted(params(), reverse=True)
        await pilot.press("o")  # next column: MMACs
        await pilot.pause(0.2)
        assert table.sort_column == "macs"
        # e: export the thesis table as markdown (the source shown)
        await pilot.press("e")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ExportForm")
        out = tmp_path / "table.md"
        app.screen.query_one("#path").value = str(out)
        await pilot.click("#ok")
        await wait_until(pilot, lambda: out.exists(), what="the export")
        text = out.read_text()
        assert "Pareto front" in text and len(text.splitlines()) > 54  # a row per thesis architecture


@sync
async def test_keys_are_remappable(tmp_path, monkeypatch):
    study_store(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    (home / "keys.json").write_text('{"klmtui.pareto": "f2"}')
    monkeypatch.setenv("KLMTUI_HOME", str(home))
    app = KlmtuiApp(tmp_path / "runs.json")
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: bool(table_ids(app)), what="the table")
        await pilot.press("p")
        await pilot.pause(0.2)
        assert type(app.screen).__name__ == "HomeScreen"
        await pilot.press("f2")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ParetoScreen")


@pytest.mark.slow
@sync
async def test_train_from_the_tui_queued_running_done_with_accuracy(tmp_path, cifar_dir, monkeypatch):
    """`t` on 1-1-1@8, two seeds: one CPU slot, so seed 1 waits queued while seed 0 runs."""
    monkeypatch.setenv("KLMTUI_TORCH_THREADS", "1")
    study_store(tmp_path, extra=(TINY,))
    app = KlmtuiApp(tmp_path / "runs.json", poll_s=0.3, train_defaults={"data": str(cifar_dir)})
    seen: list[str] = []

    def status() -> str:
        row = app.screen.query_one("#arch-table").rows_by_id.get(TINY) if app.screen.id == "home" else None
        text = row.status if row else ""
        if text and (not seen or seen[-1] != text):
            seen.append(text)
        return text

    try:
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_until(pilot, lambda: bool(table_ids(app)), what="the table")
            await pilot.press("slash", *TINY, "enter")
            await wait_until(pilot, lambda: table_ids(app) == [TINY])
            assert status() == "-"
            await pilot.press("t")
            await wait_until(pilot, lambda: type(app.screen).__name__ == "TrainForm", what="the train form")
            for field, text in (("#epochs", "2"), ("#seeds", "2"), ("#train_subset", "384"), ("#test_subset", "128"),
                                ("#batch_size", "64")):
                app.screen.query_one(field).value = ""
                await pilot.click(field)
                await pilot.press(*text)
            await pilot.press("enter")  # submits the form
            await wait_until(pilot, lambda: status().startswith("running"), timeout=60, what="running")
            await wait_until(pilot, lambda: status().startswith("done"), timeout=400, what="done")
            row = app.screen.query_one("#arch-table").rows_by_id[TINY]
            assert row.seeds == 2 and row.accuracy is not None and row.accuracy_std is not None
            cell = str(app.screen.query_one("#arch-table").get_row(TINY)[5])
            assert "±" in cell
    finally:
        from core import jobs

        store = Store(tmp_path / "runs.json")
        for run in store.all("runs"):  # never leave a training process behind
            if run["status"] in ("queued", "running"):
                jobs.cancel(store, run["id"])
        # a run says `done` a moment before its process exits: the test ends after they did
        assert jobs.wait_exited(store, [run["id"] for run in store.all("runs")], timeout_s=30) == []
    assert any(s.startswith("running") for s in seen) and seen[-1].startswith("done")
    assert any("+1q" in s for s in seen), seen  # seed 1 waited queued behind seed 0
    runs = Store(tmp_path / "runs.json").find("runs", arch_id=TINY)
    assert sorted(r["seed"] for r in runs) == [0, 1] and all(r["status"] == "done" for r in runs)
    assert all(10.0 < r["accuracy"] <= 100.0 for r in runs)


@sync
async def test_restart_reattaches_vanished_run_shown_resumable_and_errors_are_notified(tmp_path):
    """A run recorded `running` by an earlier session whose process is gone: the app marks it
    `interrupted (r)`. Refusals and failures are a notification or a dialog; the app carries on."""
    import os
    import socket

    store = study_store(tmp_path)
    store.insert("runs", {"id": "t-0000dead", "arch_id": "6-6-6@12", "arch": "6-6-6", "K": 6, "L": 6, "M": 6,
                          "channels": 12, "seed": 0, "profile": "quick", "epochs": 5, "epoch": 2,
                          "status": "running", "executor": "local", "host": socket.gethostname(),
                          "pid": os.getpid(),  # alive, but not this run's process (no run id in its command line)
                          "created": "2026-01-01T00:00:00Z", "run_dir": "runs/t-0000dead", "config": {"epochs": 5}})
    app = KlmtuiApp(tmp_path / "runs.json", poll_s=0.3, jobs_refresh_s=0.5)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: bool(table_ids(app)), what="the table")
        await pilot.press("slash", *"6-6-6@12", "enter")
        await wait_until(pilot, lambda: table_ids(app) == ["6-6-6@12"])
        rows = lambda: app.screen.query_one("#arch-table").rows_by_id  # noqa: E731
        await wait_until(pilot, lambda: rows()["6-6-6@12"].status == "interrupted (r)", what="interrupted")
        await pilot.press("c")
        await wait_until(pilot, lambda: any("nothing running" in n.message for n in app._notifications),
                         what="the refusal")
        await pilot.press("e")  # an export that cannot be written: an error dialog
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ExportForm")
        app.screen.query_one("#path").value = str(tmp_path / "no-such-folder" / "table.md")
        await pilot.click("#ok")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ErrorDialog", what="the error dialog")
        body = str(app.screen.query_one(".body").render())
        assert "cannot write" in body and "no-such-folder" in body
        await pilot.press("enter")
        await pilot.press("p", "escape")
        assert type(app.screen).__name__ == "HomeScreen"
    assert Store(tmp_path / "runs.json").get("runs", "t-0000dead")["status"] == "interrupted"


@sync
async def test_devices_screen_add_and_remove(tmp_path, monkeypatch):
    monkeypatch.setenv("KLMTUI_HOME", str(tmp_path / "home"))
    study_store(tmp_path)
    app = KlmtuiApp(tmp_path / "runs.json", poll_s=0.3)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: bool(table_ids(app)), what="the table")
        await pilot.press("d")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "DevicesScreen")
        await pilot.press("a")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "DeviceForm")
        for field, text in (("#name", "nano"), ("#host", "10.0.0.7"), ("#port", "2222")):
            await pilot.click(field)
            await pilot.press(*text)
        await pilot.press("enter")
        devices = lambda: app.screen.query_one("#devices-table").rows  # noqa: E731
        await wait_until(pilot, lambda: type(app.screen).__name__ == "DevicesScreen" and len(devices()) == 2,
                         what="the new device")
        record = Store(tmp_path / "runs.json").get("devices", "nano")
        assert record["host"] == "10.0.0.7" and record["port"] == 2222
        await pilot.press("down", "x")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ConfirmDialog")
        await pilot.press("enter")
        await wait_until(pilot, lambda: Store(tmp_path / "runs.json").get("devices", "nano") is None, what="removal")


@sync
async def test_a_run_failing_elsewhere_is_announced(tmp_path):
    """Another process (the CLI, a detached run) records a failure: the app tells the user."""
    store = study_store(tmp_path)
    store.insert("runs", {"id": "t-0000fa11", "arch_id": "6-6-6@12", "arch": "6-6-6", "K": 6, "L": 6, "M": 6,
                          "channels": 12, "seed": 0, "profile": "quick", "epochs": 5, "epoch": 1, "status": "running",
                          "executor": "ray", "created": "2026-01-01T00:00:00Z"})
    app = KlmtuiApp(tmp_path / "runs.json", poll_s=0.2, jobs_refresh_s=None)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: bool(table_ids(app)), what="the table")
        store.update("runs", "t-0000fa11", status="failed", error="CUDA out of memory")
        await wait_until(pilot, lambda: any("CUDA out of memory" in n.message for n in app._notifications),
                         what="the failure notification")
        assert app.screen.query_one("#arch-table").rows_by_id["6-6-6@12"].status == "failed"


@sync
async def test_local_benchmark_without_tegrastats_says_why_power_is_missing(tmp_path):
    """What a person sees on a machine with no tegrastats: latency measured, power explained."""
    store = study_store(tmp_path, extra=(TINY,))
    store.upsert("devices", {"id": "local", "name": "local", "host": "local",
                             "tegrastats": str(tmp_path / "no-such-tegrastats")})
    app = KlmtuiApp(tmp_path / "runs.json", bench_defaults={
        "device": "local", "batch": 2, "runs": 3, "batches": 4, "warmup_runs": 1, "warmup_batches": 1})
    async with app.run_test(size=(140, 40)) as pilot:
        await bench_tiny(pilot, app)
        await pilot.press("enter")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "DetailsScreen", what="details")
        stream = app.streams.for_arch(TINY)
        await wait_until(pilot, lambda: stream.summary is not None and not stream.active, timeout=180,
                         what="the benchmark to end")
        assert stream.status == "done", stream.error
        await pilot.pause(0.3)
        stats = str(app.screen.query_one("#bench-stats").render())
        assert "latency median" in stats
        assert "power unavailable:" in stats and "tegrastats" in stats
        record = Store(tmp_path / "runs.json").get("benchmarks", stream.bench_id)
        assert record["latency_s"] > 0 and record["power_w"] is None


@pytest.mark.slow
@sync
async def test_benchmark_outlives_the_tui_and_a_new_session_follows_it(tmp_path):
    """`b`, then quit while it streams: the benchmark process keeps going (record `running`); a
    new app on the same store follows it live in the details panel until `done`."""
    import os
    import signal

    study_store(tmp_path, extra=(TINY,))
    path = tmp_path / "runs.json"
    app = KlmtuiApp(path, bench_defaults={
        "device": "local", "batch": 2, "runs": 40, "batches": 10, "warmup_runs": 1, "warmup_batches": 1})
    pid = None
    try:
        async with app.run_test(size=(140, 40)) as pilot:
            await bench_tiny(pilot, app)
            await wait_until(pilot, lambda: app.streams.for_arch(TINY) is not None)
            stream = app.streams.for_arch(TINY)
            await wait_until(pilot, lambda: len(stream.latencies) > 3, timeout=120, what="live samples")
            assert stream.active
            await pilot.press("q")
        bench_id = stream.bench_id
        record = Store(path).get("benchmarks", bench_id)
        pid = record["pid"]
        assert record["status"] == "running"
        os.kill(pid, 0)  # the benchmark process is still alive after the app quit
        assert pid != os.getpid()

        again = KlmtuiApp(path, poll_s=0.3, jobs_refresh_s=0.5)
        async with again.run_test(size=(140, 40)) as pilot:
            await wait_until(pilot, lambda: bool(table_ids(again)), what="the table")
            await pilot.press("slash", *TINY, "enter")
            await wait_until(pilot, lambda: table_ids(again) == [TINY])
            await pilot.press("enter")
            await wait_until(pilot, lambda: type(again.screen).__name__ == "DetailsScreen", what="details")
            screen = again.screen
            followed = lambda: screen._external  # noqa: E731
            await wait_until(pilot, lambda: followed() is not None and followed().bench_id == bench_id
                             and followed().status == "running", timeout=30, what="the running benchmark")
            first = followed().events
            counts = [first]
            await wait_until(pilot, lambda: counts.append(followed().events) or counts[-1] > first, timeout=60,
                             what="more events")
            await wait_until(pilot, lambda: followed().status == "done", timeout=300, what="done")
            assert followed().events > first and followed().latencies
            await pilot.pause(0.5)
            stats = str(screen.query_one("#bench-stats").render())
            assert bench_id in stats and "done" in stats and "latency median" in stats
        record = Store(path).get("benchmarks", bench_id)
        assert record["status"] == "done" and record["latency_s"] > 0
    finally:
        if pid is not None:
            try:
                os.killpg(pid, signal.SIGKILL)  # only if the test failed while it still ran
            except OSError:
                pass
            try:
                os.waitpid(pid, 0)  # our child: reap it
            except ChildProcessError:
                pass
