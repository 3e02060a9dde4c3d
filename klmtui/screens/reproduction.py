"""Reproduction report screen: `klmtui report --source S --against T` in the TUI (core.reproduction).

Two inputs choose the sources (enter recomputes); the report is the same Markdown the CLI writes.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Label, Markdown

from core.errors import KlmtuiError
from core.schema import MEASURED_SOURCE, THESIS_SOURCE


class ReproductionScreen(Screen):
    """One source against another: deltas, ratios, Kendall's tau, front overlap, caveats."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, source: str = MEASURED_SOURCE, against: str = THESIS_SOURCE) -> None:
        super().__init__(id="reproduction")
        self.source, self.against = source, against
        self.report: dict | None = None
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="reproduction-sources"):
            yield Label("source ")
            yield Input(self.source, id="report-source")
            yield Label(" against ")
            yield Input(self.against, id="report-against")
        with VerticalScroll():
            yield Markdown("", id="report-text")
        yield Footer()

    def on_mount(self) -> None:
        self.recompute()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.source = self.query_one("#report-source", Input).value.strip() or MEASURED_SOURCE
        self.against = self.query_one("#report-against", Input).value.strip() or THESIS_SOURCE
        self.recompute()

    def recompute(self) -> None:
        from core.reproduction import reproduction, to_markdown

        try:
            self.report = reproduction(self.app.services.store(), self.source, self.against)
            self.error = None
            text = to_markdown(self.report)
        except KlmtuiError as exc:
            self.report, self.error = None, str(exc)
            text = f"**No report:** {exc}"
        self.query_one("#report-text", Markdown).update(text)
