"""The architectures screen: every architecture of the study with its status and figures."""

from __future__ import annotations

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Static

from core.schema import THESIS_SOURCE
from klmtui import messages as m
from klmtui.views import MEASURED, arch_rows, sources
from klmtui.widgets.arch_table import COLUMNS, SHOWN_ROWS, ArchTable, ordered


def matches(row, tokens: list[str]) -> bool:
    """Every filter word must appear in the row's id or status (`@24`, `running`, `6-6-6`)."""
    text = f"{row.id} {row.status} c{row.channels}".lower()
    return all(t in text for t in tokens)


class HomeScreen(Screen):
    """Architectures table, filter line, source toggle; the actions act on the selection."""

    BINDINGS = [
        Binding("t", "train", "Train", id="klmtui.train"),
        Binding("b", "bench", "Bench", id="klmtui.bench"),
        # the footer shows what fits 80 columns; these are in the help (?) and the palette (ctrl+p)
        Binding("c", "cancel", "Cancel", show=False, id="klmtui.cancel"),
        Binding("r", "resume", "Resume", show=False, id="klmtui.resume"),
        Binding("s", "cycle_source", "Source", show=False, id="klmtui.source"),
        Binding("o", "cycle_sort", "Sort", show=False, id="klmtui.sort"),
        Binding("e", "export", "Export", show=False, id="klmtui.export"),
        Binding("m", "compare", "Compare", id="klmtui.compare"),
        Binding("slash", "focus_filter", "Filter", id="klmtui.filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("w", "toggle_predicted", "Predicted", show=False, id="klmtui.predicted"),
        Binding("g", "plan", "Plan", show=False, id="klmtui.plan"),
    ]

    show_predicted: reactive[bool] = reactive(False, init=False)  # w: predicted figures where the source has none

    def __init__(self) -> None:
        super().__init__(id="home")
        self.source = MEASURED
        self._source_chosen = False  # the user has not pressed `s` yet
        self._snapshot = None
        # the rows of (snapshot, source, predicted), kept for the next filter keystroke or sort
        self._rows_for: tuple | None = None
        self._rows: list | None = None
        self._generation = 0  # of the latest table request; a worker's older answer is dropped
        self._pending = False  # a worker is building the rows for the latest request
        self._when_shown: list = []  # what to do once the rows of the latest request are shown
        self._view: tuple | None = None  # (source, predicted, filter words) of the rows shown

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="home-bar"):
            yield Input(placeholder="/ filter: @24  running  6-6-  (esc clears)", id="filter", compact=True)
            yield Static("", id="source-label")
        yield Static("", id="store-message")
        note = Static("", id="rows-note")  # "100 of 20,057 shown ...": only for a big source
        note.display = False
        yield note
        yield ArchTable(id="arch-table")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(ArchTable).focus()
        self.watch(self.app, "snapshot", self.show_snapshot)  # now and on every new store content

    @property
    def table(self) -> ArchTable:
        return self.query_one(ArchTable)

    def show_snapshot(self, snapshot) -> None:
        """The app's `snapshot` changed (watched)."""
        if snapshot is None:
            return
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
            self.source = MEASURED if snapshot.figures.get(MEASURED) or THESIS_SOURCE not in names else THESIS_SOURCE
        if self.source not in sources(snapshot):
            self.source = MEASURED
        self._update_source_label()
        self._redraw()

    def _redraw(self) -> None:
        """Show the source's rows that pass the filter, in the table's sort order. Up to
        `SHOWN_ROWS` rows (the study) this is done here at once; a bigger source (an imported one of
        20k rows) is read, filtered and sorted over all its rows in a thread worker (`TableRows`)
        while the UI keeps answering, and the table draws the first rows of that order."""
        snapshot = self._snapshot
        if snapshot is None:
            return
        source, predicted = self.source, self.show_predicted
        tokens = self.query_one("#filter", Input).value.lower().lstrip("/").split()
        key = (snapshot, source, predicted)
        cached = self._rows if self._rows_for is not None and self._same_rows(self._rows_for, key) else None
        size = len(cached) if cached is not None else self._size_bound(snapshot, source)
        self._generation += 1
        if size <= SHOWN_ROWS:
            rows = cached if cached is not None else arch_rows(snapshot, source, predicted=predicted)
            self._rows_for, self._rows = key, rows
            self._pending = False
            self.table.show([r for r in rows if matches(r, tokens)], same_view=self._same_view(key, tokens))
            self._shown(source)
            return
        self._pending = True
        generation, column, reverse = self._generation, self.table.sort_column, self.table.sort_reverse
        if cached is None and (self._view is None or self._view[:2] != (source, predicted)):  # not a refresh
            doing = "predicting the missing figures of" if predicted else "reading"
            self._note(f"[b]{escape(source)}[/]: {doing} its {size:,} rows ...")

        def build() -> m.TableRows | None:
            from textual.worker import get_current_worker

            rows = cached if cached is not None else arch_rows(snapshot, source, predicted=predicted)
            if get_current_worker().is_cancelled:  # a newer request (keystroke, sort) is on its way
                return None
            kept = [r for r in rows if matches(r, tokens)]
            return m.TableRows(generation, key, rows, ordered(kept, column, reverse), tokens)

        from klmtui.app import Job

        self.app.run_job(Job("show the architectures", source, repeats=True), build, group="home-rows",
                         exclusive=True, target=self)

    @staticmethod
    def _same_rows(a: tuple, b: tuple) -> bool:
        return a[0] is b[0] and a[1:] == b[1:]

    @staticmethod
    def _size_bound(snapshot, source: str) -> int:
        """How many rows `arch_rows` gives, without building them (a set of ids: ~2 ms for 20k)."""
        ids = {a["id"] for a in snapshot.table("architectures")}
        ids.update(r.get("arch_id") for name in ("runs", "benchmarks") for r in snapshot.table(name))
        if not source.startswith(MEASURED):
            ids.update(r.get("arch_id") for r in snapshot.figures.get(source, []))
        ids.discard(None)
        return len(ids)

    def on_table_rows(self, message: m.TableRows) -> None:
        if message.generation != self._generation:  # an older request's answer
            return
        self._rows_for, self._rows = message.key, message.rows
        self._pending = False
        self.table.show_ordered(message.ordered, same_view=self._same_view(message.key, message.tokens))
        self._shown(message.key[1])

    def _same_view(self, key: tuple, tokens: list[str]) -> bool:
        """The same source and filter as the rows shown (a new snapshot): the table keeps its extent."""
        view, self._view = self._view, (key[1], key[2], tokens)
        return view == self._view

    def _shown(self, source: str) -> None:
        path = self._snapshot.path if self._snapshot is not None else ""
        self.sub_title = f"{path}  ·  {self.table.total:,} architectures  ·  figures: {source}"
        waiting, self._when_shown = self._when_shown, []
        for fn in waiting:
            fn()

    def _when_rows_shown(self, fn) -> None:
        """Call `fn` now, or once the rows being built in the worker are shown."""
        if self._pending:
            self._when_shown.append(fn)
        else:
            fn()

    def _note(self, text: str | None) -> None:
        note = self.query_one("#rows-note", Static)
        if text:
            note.update(text)
        note.display = bool(text)

    def on_arch_table_extent(self, event: ArchTable.Extent) -> None:
        self._note(None if event.shown >= event.total else
                   f"{event.shown:,} of {event.total:,} shown (more as you scroll): / filters, a column header sorts all")

    def on_arch_table_sort_changed(self, event: ArchTable.SortChanged) -> None:
        self._redraw()  # more rows than the table sorts itself: sorted in the worker

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
        self.post_message(m.OpenDetails(event.arch_id))

    def watch_show_predicted(self) -> None:
        self._redraw()

    # ------------------------------------------------------------------ actions
    def action_cycle_source(self) -> None:
        if self._snapshot is None:
            return
        self._source_chosen = True
        names = sources(self._snapshot)
        self.source = names[(names.index(self.source) + 1) % len(names)] if self.source in names else MEASURED
        self._update_source_label()
        self._redraw()

    def action_toggle_predicted(self) -> None:
        """w: show predicted latency/power (~, italic, 90% interval) where the source has none."""
        self.show_predicted = not self.show_predicted  # watched: the table is redrawn at once
        self._when_rows_shown(self._say_predicted)

    def _say_predicted(self) -> None:
        n = sum(1 for r in self.table.rows_by_id.values() if r.predicted)
        if self.show_predicted:
            self.notify(f"{n} row(s) with predicted figures (~value±90% interval), fitted on {self.source}"
                        if n else f"nothing to predict for {self.source} (klmtui predict says why)", timeout=4)
        else:
            self.notify("predicted figures hidden", timeout=2)

    def action_plan(self, count: int = 5) -> None:
        """g: select the architectures whose benchmark most reduces the predictor's uncertainty
        (`klmtui plan`) on the device of the latest benchmark (else local); b then benchmarks them."""
        from core.errors import KlmtuiError
        from core.planning import plan_benchmarks
        from klmtui.views import latest

        if self._snapshot is None:
            return
        last = latest(b for b in self._snapshot.table("benchmarks") if b.get("device")) or {}
        device = last.get("device") or "local"
        try:
            result = plan_benchmarks(self.app.services.store(), device, count, "adaptive")
        except KlmtuiError as exc:
            self.notify(str(exc), severity="warning")
            return
        ids = [r["arch_id"] for r in result["rows"]]
        self.table.selected = set(ids)
        self.table._shown = []
        self._redraw()
        minutes = result["total_seconds"] / 60
        self.notify(f"plan on {device}: {', '.join(ids)} selected (b benchmarks them); predicted device time "
                    f"{minutes:.0f} min (adaptive), latency predicted from {result['model_source']}", timeout=8)

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

    def _request(self, request: type[m.ArchsRequest]) -> None:
        if targets := self._targets():
            self.post_message(request(targets))

    def action_train(self) -> None:
        self._request(m.TrainRequest)

    def action_bench(self) -> None:
        self._request(m.BenchRequest)

    def action_cancel(self) -> None:
        self._request(m.CancelRequest)

    def action_resume(self) -> None:
        self._request(m.ResumeRequest)

    def action_export(self) -> None:
        self.post_message(m.ExportRequest(self.source))

    def action_compare(self) -> None:
        """The selected rows side by side (two or more: space selects)."""
        self.post_message(m.OpenCompare(self.table.targets()))

    def commands(self):
        """(callback, title, help) of this screen's actions, for the command palette."""
        return [(self.action_train, "Train", "Train the selection (form)"),
                (self.action_bench, "Benchmark", "Benchmark the selection on a device"),
                (self.action_cancel, "Cancel", "Cancel the selection's running jobs"),
                (self.action_resume, "Resume", "Resume the selection's interrupted runs"),
                (self.action_compare, "Compare", "The selected architectures side by side"),
                (self.action_export, "Export", "Export the results table (csv/md/latex)"),
                (self.action_toggle_predicted, "Show predicted figures", "Predicted latency/power where none is measured (w)"),
                (self.action_plan, "Plan benchmarks", "Select the 5 architectures most worth benchmarking next (g)"),
                (self.action_cycle_source, "Switch figures source", "Measured / thesis / imported")]
