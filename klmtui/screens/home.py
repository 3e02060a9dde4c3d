"""The architectures screen: every architecture of the study with its status and figures."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Static

from klmtui.views import MEASURED, arch_rows, sources
from klmtui.widgets.arch_table import COLUMNS, ArchTable


def matches(row, tokens: list[str]) -> bool:
    """Every filter word must appear in the row's id or status (`@24`, `running`, `6-6-6`)."""
    text = f"{row.id} {row.status} c{row.channels}".lower()
    return all(t in text for t in tokens)


class HomeScreen(Screen):
    """Architectures table, filter line, source toggle; the actions act on the selection."""

    BINDINGS = [
        Binding("t", "train", "Train", id="klmtui.train"),
        Binding("b", "bench", "Bench", id="klmtui.bench"),
        Binding("c", "cancel", "Cancel", id="klmtui.cancel"),
        Binding("r", "resume", "Resume", id="klmtui.resume"),
        Binding("s", "cycle_source", "Source", id="klmtui.source"),
        Binding("o", "cycle_sort", "Sort", id="klmtui.sort"),
        Binding("e", "export", "Export", id="klmtui.export"),
        Binding("slash", "focus_filter", "Filter", id="klmtui.filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self) -> None:
        super().__init__(id="home")
        self.source = MEASURED
        self._source_chosen = False  # the user has not pressed `s` yet
        self._snapshot = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="home-bar"):
            yield Input(placeholder="/ filter: @24  running  6-6-  (esc clears)", id="filter", compact=True)
            yield Static("", id="source-label")
        yield Static("", id="store-message")
        yield ArchTable(id="arch-table")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(ArchTable).focus()
        if self.app.snapshot is not None:
            self.show_snapshot(self.app.snapshot)

    @property
    def table(self) -> ArchTable:
        return self.query_one(ArchTable)

    def show_snapshot(self, snapshot) -> None:
        """Called by the app for every new store snapshot."""
        self._snapshot = snapshot
        message = self.query_one("#store-message", Static)
        if snapshot.error:
            message.update(f"[b red]Cannot read the store:[/] {snapshot.error}")
            message.display = True
        elif snapshot.missing:
            message.update(
                f"No study in [b]{snapshot.path}[/] yet. Press [b]i[/] (or ctrl+p → Initialise) to create it "
                "with the sampled architectures and the thesis' reference results."
            )
            message.display = True
        else:
            message.display = False
        if not self._source_chosen and not snapshot.missing and not snapshot.error:
            # until the user picks one: our measurements once there are any, the thesis' before
            names = sources(snapshot)
            self.source = MEASURED if snapshot.figures.get(MEASURED) or "thesis" not in names else "thesis"
        if self.source not in sources(snapshot):
            self.source = MEASURED
        self._update_source_label()
        self._redraw()

    def _redraw(self) -> None:
        if self._snapshot is None:
            return
        tokens = self.query_one("#filter", Input).value.lower().lstrip("/").split()
        rows = [r for r in arch_rows(self._snapshot, self.source) if matches(r, tokens)]
        self.table.show(rows)
        self.sub_title = f"{self._snapshot.path}  ·  {len(rows)} architectures  ·  figures: {self.source}"

    def _update_source_label(self) -> None:
        label = "our measurements" if self.source == MEASURED else f"reference: {self.source}"
        style = "green" if self.source == MEASURED else "magenta"
        self.query_one("#source-label", Static).update(f"[b {style}]{label}[/] (s)")

    # ------------------------------------------------------------------ events
    def on_input_changed(self, event: Input.Changed) -> None:
        self._redraw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.table.focus()

    def on_arch_table_open_details(self, event: ArchTable.OpenDetails) -> None:
        self.app.open_details(event.arch_id)

    # ------------------------------------------------------------------ actions
    def action_cycle_source(self) -> None:
        if self._snapshot is None:
            return
        self._source_chosen = True
        names = sources(self._snapshot)
        self.source = names[(names.index(self.source) + 1) % len(names)] if self.source in names else MEASURED
        self._update_source_label()
        self._redraw()

    def action_cycle_sort(self) -> None:
        keys = [k for k, _ in COLUMNS]
        table = self.table
        nxt = keys[(keys.index(table.sort_column) + 1) % len(keys)]
        table.sort_by(nxt)
        self.notify(f"sorted by {dict(COLUMNS)[nxt].strip() or 'selection'} (click a header to sort by it, again to reverse)", timeout=2)

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_clear_filter(self) -> None:
        self.query_one("#filter", Input).value = ""
        self.table.focus()

    def _targets(self) -> list[str]:
        targets = self.table.targets()
        if not targets:
            self.notify("no architecture under the cursor", severity="warning")
        return targets

    def action_train(self) -> None:
        if targets := self._targets():
            self.app.ask_train(targets)

    def action_bench(self) -> None:
        if targets := self._targets():
            self.app.ask_bench(targets)

    def action_cancel(self) -> None:
        if targets := self._targets():
            self.app.cancel_jobs(targets)

    def action_resume(self) -> None:
        if targets := self._targets():
            self.app.resume_jobs(targets)

    def action_export(self) -> None:
        self.app.ask_export(self.source)
