"""Pareto screen: the N-objective front as a table, and a 2-objective ASCII scatter.

Objectives, tolerances and the figure source are chosen on screen and validated exactly as the
CLI validates them (`core.pareto`: parse, `check_columns`); a mistake is shown inline and the
table and plot are cleared (never "0 of 0 rows" or a "foo vs foo" plot). Until the user edits
them, the objectives are the thesis' four, minus those the source has no values for (said so).
Enter applies a field and keeps the focus there. `core.pareto` computes (the front over 54 rows
is a few milliseconds: it runs on the UI thread).
"""

from __future__ import annotations

from itertools import combinations

from rich.markup import escape
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Label, Static

from core.arch import triple_key
from core.errors import KlmtuiError
from core.numbers import UNITS, column_figure
from core.schema import THESIS_SOURCE
from klmtui.views import DEFAULT_OBJECTIVES, MEASURED, arch_rows, front, sources
from klmtui.widgets.arch_table import SHOWN_ROWS as FRONT_TABLE_ROWS
from klmtui.widgets.plot import Figure, PlotView, Series



def scatter(rows: list[dict], x: str, y: str, front_ids: set[str]) -> Figure:
    """Dominated points dim, the 2-objective front joined as a staircase, the N-front starred."""
    from core import pareto

    objs = {o.split(":")[0]: pareto.parse_objective(o) for o in DEFAULT_OBJECTIVES}
    known = [r for r in rows if r.get(x) is not None and r.get(y) is not None]
    fx = objs.get(x) or pareto.parse_objective(f"{x}:min")
    fy = objs.get(y) or pareto.parse_objective(f"{y}:min")
    two = pareto.front_2d(known, fx, fy).front if known else []
    dominated = [r for r in known if r["id"] not in front_ids]
    on_n = [r for r in known if r["id"] in front_ids]
    return Figure(
        f"{y} vs {x}",
        [
            Series("dominated", [r[x] for r in dominated], [r[y] for r in dominated], lines=False, marker="·"),
            Series("N-front", [r[x] for r in on_n], [r[y] for r in on_n], lines=False, marker="x"),
            Series("2-D front", [r[x] for r in two], [r[y] for r in two], lines=False, marker="●"),
        ],
        xlabel=f"{x} ({UNITS.get(x, '')})",
        legend=False,
    )


class ParetoScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("n", "next_pair", "Next plot", id="klmtui.pareto.next"),
        Binding("s", "cycle_source", "Source", id="klmtui.pareto.source"),
        Binding("w", "toggle_predicted", "Predicted", show=False, id="klmtui.pareto.predicted"),
    ]

    show_predicted: reactive[bool] = reactive(False, init=False)  # w: predicted figures where the source has none

    def __init__(self, source: str = MEASURED) -> None:
        super().__init__()
        self.source = source
        self.pair_index = 0
        self.result = None
        self._options: list[str] | None = None  # the sources, once a snapshot came
        self._defaults = " ".join(DEFAULT_OBJECTIVES)  # what the objectives field holds until edited

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="pareto-controls"):
            yield Static("", id="source-label")
            yield Label("objectives")
            yield Input(" ".join(DEFAULT_OBJECTIVES), id="objectives", compact=True)
            yield Label("tolerance")
            yield Input("", placeholder="none, e.g. accuracy=0.1 latency_s=5%", id="tolerances", compact=True)
        yield Static("", id="front-description")
        with Horizontal(id="pareto-body"):
            yield DataTable(id="front-table", cursor_type="row", zebra_stripes=True)
            with Vertical(id="plot-pane"):
                yield PlotView(id="scatter")
                yield Static("[dim]·[/] dominated   [b]x[/] on the N-objective front   [b]●[/] on this 2-objective front   "
                             "(n: next pair)", id="plot-legend")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "Pareto fronts"
        self.watch(self.app, "snapshot", self.show_snapshot)
        self.query_one("#objectives", Input).cursor_position = 0  # show the start of the list
        self.query_one("#front-table", DataTable).focus()

    def show_snapshot(self, snapshot) -> None:
        if snapshot is None:
            return
        names = sources(snapshot)
        measured = [r for r in snapshot.figures.get(self.source, []) if all(r.get(k) is not None for k in
                                                                          ("accuracy", "latency_s", "power_w"))]
        if self.source not in names or (self.source.startswith(MEASURED) and not measured and self._options is None):
            # nothing measured yet: the thesis' figures are the interesting default
            self.source = THESIS_SOURCE if THESIS_SOURCE in names else MEASURED
        self._options = names
        self.recompute()

    def objectives(self) -> list[str]:
        return self.query_one("#objectives", Input).value.split()

    def _fallback(self, rows: list[dict]) -> str:
        """Untouched default objectives: only those the source has values for (and a note saying so)."""
        from core import pareto

        field = self.query_one("#objectives", Input)
        if field.value != self._defaults:
            return ""
        kept, dropped = pareto.available_objectives(rows, [pareto.parse_objective(o) for o in DEFAULT_OBJECTIVES])
        if not dropped or not kept:
            return ""
        self._defaults = field.value = " ".join(str(o) for o in kept)
        return f"  [yellow]{self.source} has no values for {', '.join(dropped)}: left out of the objectives.[/]"

    def _invalid(self, text: str) -> None:
        """A mistake in the objectives/tolerances: said inline; no table, no plot of it."""
        self.result = None
        self.query_one("#front-description", Static).update(f"[b red]{escape(text)}[/]")
        self.query_one("#front-table", DataTable).clear(columns=True)
        self.query_one("#scatter", PlotView).plot(Figure("", []))

    def recompute(self) -> None:
        snapshot = self.app.snapshot
        if snapshot is None:
            return
        from core import pareto

        description = self.query_one("#front-description", Static)
        self.query_one("#source-label", Static).update(f"source [b]{self.source}[/] (s)")
        rows = arch_rows(snapshot, self.source, predicted=self.show_predicted)
        note = self._fallback([r.as_dict() for r in rows])
        try:  # the CLI's checks: objectives and tolerances parse, every objective is a column with values
            names = [pareto.parse_objective(o).name for o in self.objectives()]
            pareto.check_columns([r.as_dict() for r in rows], names)
            result = front(rows, self.objectives(), self.query_one("#tolerances", Input).value.split())
        except KlmtuiError as exc:
            self._invalid(str(exc))
            return
        self.result = result
        over = "published figures (params rounded to 0.1M)" if self.source == THESIS_SOURCE else f"{self.source} figures"
        guessed = sum(1 for r in result.rows if r.get("predicted"))
        if self.show_predicted:
            over += (f"; {guessed} row(s) with predicted figures (~, italic; {sum(1 for r in result.front if r.get('predicted'))}"
                     " on the front; w hides them)")
        listed = self._fill_table(result)
        if listed < len(result.rows):  # a big imported source: the table is bounded (klmtui.widgets.arch_table)
            note += f"  [dim]The table lists {listed:,} of the {len(result.rows):,} rows, the front first.[/]"
        description.update(f"{escape(result.describe())}  [dim]Source: {escape(over)}.[/]{note}")
        self._draw_plot()

    def _fill_table(self, result) -> int:
        """The front's rows, then the others; at most `FRONT_TABLE_ROWS` (or the front, when it is
        longer, up to 5x that): a DataTable row costs ~0.5 ms. Returns how many are listed."""
        table = self.query_one("#front-table", DataTable)
        names = [o.name for o in result.objectives]
        table.clear(columns=True)
        table.add_columns("", "arch", "C", *[f"{o.name} {'↑' if o.direction == 'max' else '↓'}" for o in result.objectives])
        ordered = sorted(result.rows, key=lambda r: (not r["on_front"], triple_key(r["arch"]), r["channels"]))
        ordered = ordered[:min(max(FRONT_TABLE_ROWS, len(result.front)), 5 * FRONT_TABLE_ROWS)]
        for r in ordered:
            style = "bold" if r["on_front"] else "dim"
            cells = [Text("★" if r["on_front"] else "·", style="yellow" if r["on_front"] else "dim"),
                     Text(r["arch"], style=style), Text(str(r["channels"]), style=style)]
            guessed = set(r.get("predicted") or ())
            cells += [Text("~" + column_figure(n, r.get(n)), style=style + " italic yellow") if n in guessed
                      else Text(column_figure(n, r.get(n)), style=style) for n in names]
            table.add_row(*cells, key=r["id"])
        return len(ordered)

    def pairs(self) -> list[tuple[str, str]]:
        names = [o.name for o in self.result.objectives] if self.result else ["accuracy", "latency_s"]
        pairs = [(b, a) if a == "accuracy" else (a, b) for a, b in combinations(names, 2)]
        return pairs or [(names[0], names[0])]

    def _draw_plot(self) -> None:
        if self.result is None:
            return
        pairs = self.pairs()
        x, y = pairs[self.pair_index % len(pairs)]
        front_ids = {r["id"] for r in self.result.front}
        self.query_one("#scatter", PlotView).plot(scatter(self.result.rows, x, y, front_ids))

    # ------------------------------------------------------------------ events / actions
    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter applies the field and keeps the focus in it (the next keys are typed, not bindings)."""
        self.pair_index = 0
        self.recompute()

    def action_next_pair(self) -> None:
        self.pair_index += 1
        self._draw_plot()

    def action_toggle_predicted(self) -> None:
        """w: include predicted latency/power (core.predict) where the source has none, marked ~."""
        self.show_predicted = not self.show_predicted  # watched: recomputed at once

    def watch_show_predicted(self) -> None:
        self.recompute()

    def action_cycle_source(self) -> None:
        names = self._options or [MEASURED]
        self.source = names[(names.index(self.source) + 1) % len(names)] if self.source in names else names[0]
        self.recompute()
