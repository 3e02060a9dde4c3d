"""The reproduction report in the TUI (issue 14): the palette's "Reproduction report" screen."""

from core.store import Store
from core.study import init_study
from klmtui.app import KlmtuiApp
from tests.test_tui import sync, wait_until


@sync
async def test_reproduction_screen_thesis_against_itself(tmp_path):
    init_study(Store(tmp_path / "runs.json"))
    app = KlmtuiApp(tmp_path / "runs.json", jobs_refresh_s=None)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.2)
        app.action_report()
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ReproductionScreen", what="the report screen")
        screen = app.screen
        # nothing measured yet: said on screen, no crash
        await wait_until(pilot, lambda: screen.error is not None, what="the missing source")
        assert "measured" in screen.error
        source = screen.query_one("#report-source")
        source.value = ""
        await pilot.click("#report-source")
        await pilot.press(*"thesis", "enter")
        await wait_until(pilot, lambda: screen.report is not None, what="the report")
        assert screen.report["paired"] == 54
        assert all(t["tau"] == 1.0 for t in screen.report["kendall_tau"].values())
        assert screen.report["overlap"]["source_on_against"] == 35
        assert "Kendall" in screen.query_one("#report-text")._markdown
        await pilot.press("escape")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "HomeScreen")
