"""Compare screen: two or more architectures, runs or benchmarks side by side.

What `klmtui compare REF...` prints, drawn: the test-accuracy curves overlaid, the latency and
power distributions (cumulative: the share of batches / samples at or below each value, so a
wider spread shows as a flatter curve), and the table of differences (`a` toggles every figure).
The items are read in a worker (`Services.compare`: core.runs + the benchmark events' fold).
"""

from __future__ import annotations

from rich.markup import escape
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from core.numbers import column_figure
from klmtui.messages import ComparisonLoaded
from klmtui.widgets.plot import Figure, PlotView, Series


def curves_figure(items: list) -> Figure:
    """Test accuracy per epoch, one line per item that has a training run."""
    series = []
    for item in items:
        points = [(float(m.get("epoch") or i + 1), float(m["test_acc"])) for i, m in enumerate(item.curve)
                  if m.get("test_acc") is not None]
        if points:
            series.append(Series(item.ref, [p[0] for p in points], [p[1] for p in points]))
    return Figure("test accuracy (%) per epoch", series, xlabel="epoch")


def cdf_figure(items: list, attr: str, scale: float, title: str, xlabel: str) -> Figure:
    """The empirical distribution of each item's samples: x = value, y = % of samples <= x."""
    series = []
    for item in items:
        values = sorted(v * scale for v in getattr(item, attr))
        if values:
            n = len(values)
            series.append(Series(item.ref, values, [100.0 * (i + 1) / n for i in range(n)]))
    return Figure(title, series, xlabel=xlabel)


class CompareScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("a", "toggle_all", "All figures", id="klmtui.compare.all"),
    ]

    def __init__(self, refs: list[str]) -> None:
        super().__init__()
        self.refs = list(refs)
        self.items: list = []
        self.show_all = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"comparing {escape(' '.join(self.refs))} ...", id="compare-title")
        with Horizontal(id="compare-plots"):
            yield PlotView(id="compare-curves", classes="pane")
            with Vertical(classes="pane"):
                yield PlotView(id="compare-latency")
                yield PlotView(id="compare-power")
        yield DataTable(id="compare-table", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        from klmtui.app import Job

        self.sub_title = "Compare"
        self.query_one("#compare-table", DataTable).focus()
        refs = self.refs
        self.app.run_job(Job("compare", " ".join(refs)), lambda: ComparisonLoaded(self.app.services.compare(refs)),
                         group="compare", exclusive=True, target=self)

    def on_comparison_loaded(self, message: ComparisonLoaded) -> None:
        self.items = message.items
        with_runs = sum(1 for i in self.items if i.run)
        with_benches = sum(1 for i in self.items if i.bench)
        self.query_one("#compare-title", Static).update(
            f"[b]{len(self.items)} compared[/]: {with_runs} with a done training run, {with_benches} with a done "
            "benchmark  [dim](a: every figure, not only those that differ)[/]")
        self.query_one("#compare-curves", PlotView).plot(curves_figure(self.items))
        self.query_one("#compare-latency", PlotView).plot(
            cdf_figure(self.items, "latencies", 1000.0, "latency per batch: % of batches <=", "ms"))
        self.query_one("#compare-power", PlotView).plot(
            cdf_figure(self.items, "power", 1.0, "board power: % of samples <=", "W"))
        self.fill_table()

    def fill_table(self) -> None:
        from core.runs import differences

        table = self.query_one("#compare-table", DataTable)
        table.clear(columns=True)
        table.add_columns("", *[i.ref for i in self.items])
        for key, label, values, differ in differences(self.items, only_different=not self.show_all):
            style = "bold" if differ else "dim"
            table.add_row(Text(label, style=style), *[Text(column_figure(key, v), style=style) for v in values],
                          key=key)

    def action_toggle_all(self) -> None:
        self.show_all = not self.show_all
        self.fill_table()
