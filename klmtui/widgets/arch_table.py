"""The architectures table: sortable by any column, filterable, with a multi-selection."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist

from core.arch import triple_key
from core.numbers import column_figure
from klmtui.views import ArchRow, fmt_accuracy

# (key, header, sort key of a row)
COLUMNS: list[tuple[str, str]] = [
    ("sel", " "),
    ("arch", "K-L-M"),
    ("channels", "C"),
    ("front", "★"),
    ("status", "Status"),
    ("accuracy", "Acc %"),
    ("latency", "Lat s/b"),
    ("power", "Power W"),
    ("energy", "mJ/img"),
    ("params", "Params M"),
    ("macs", "MMACs"),
]

STATUS_STYLE = {
    "running": "bold yellow",
    "queued": "cyan",
    "pending": "cyan",
    "done": "green",
    "failed": "bold red",
    "cancelled": "magenta",
    "interrupted": "bold magenta",
}


def sort_value(row: ArchRow, column: str):
    """A value that sorts sensibly; missing figures always sort last."""
    values = {
        "sel": row.id,
        "arch": (triple_key(row.arch), row.channels),
        "channels": row.channels,
        "params": row.params,
        "macs": row.macs,
        "status": row.status,
        "accuracy": row.accuracy,
        "latency": row.latency_s,
        "power": row.power_w,
        "energy": row.energy_mj,
        "front": not row.on_front,
    }
    value = values.get(column)
    return (value is None, value if value is not None else 0)


def row_cells(row: ArchRow, selected: bool) -> list:
    status_word = row.status.split(" ")[0]
    arch = Text(row.arch)
    if row.in_thesis is False:
        arch.append("*", style="dim")
    return [
        Text("✓", style="bold green") if selected else Text(" "),
        arch,
        str(row.channels),
        Text("★", style="bold yellow") if row.on_front else Text(""),
        Text(row.status, style=STATUS_STYLE.get(status_word, "")),
        fmt_accuracy(row),
        figure_cell(row, "latency_s"),
        figure_cell(row, "power_w"),
        figure_cell(row, "energy_mj"),
        column_figure("params_m", row.params_m),
        column_figure("macs_m", None if row.macs is None else row.macs / 1e6),
    ]


def figure_cell(row: ArchRow, name: str):
    """A measured figure as text (core.numbers: the house rule, the column's published decimals);
    a predicted one as `~value±x%` (90% interval) in italic yellow."""
    value = getattr(row, name)
    if name not in row.predicted or value is None:
        return column_figure(name, value)
    interval = row.predicted[name]
    half = "" if not interval or not value else f"±{100 * (interval[1] - interval[0]) / 2 / value:.1f}%"
    return Text(f"~{column_figure(name, value)}{half}", style="italic yellow")


class ArchTable(DataTable):
    """DataTable of `ArchRow`s keyed by architecture id; the cursor survives refreshes."""

    BINDINGS = [
        Binding("enter", "open_details", "Details", id="klmtui.details"),
        Binding("space", "toggle_select", "Select", show=False, id="klmtui.select"),  # in the help; footer fits 80
    ]

    class OpenDetails(Message):
        def __init__(self, arch_id: str) -> None:
            super().__init__()
            self.arch_id = arch_id

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.rows_by_id: dict[str, ArchRow] = {}
        self.selected: set[str] = set()
        self.sort_column = "arch"
        self.sort_reverse = False
        self._shown: list[tuple] = []

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    @property
    def cursor_id(self) -> str | None:
        if not self.row_count:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except CellDoesNotExist:  # the cursor is past the rows (a redraw is under way)
            return None
        return key.value

    def targets(self) -> list[str]:
        """The selection, or the row under the cursor when nothing is selected."""
        if self.selected:
            return [i for i in self.rows_by_id if i in self.selected]
        current = self.cursor_id
        return [current] if current else []

    def show(self, rows: list[ArchRow]) -> None:
        """Redraw with `rows` (already filtered), sorted by the current column; keep the cursor."""
        rows = sorted(rows, key=lambda r: sort_value(r, self.sort_column), reverse=self.sort_reverse)
        if self.sort_reverse:  # missing values last in both directions
            rows.sort(key=lambda r: sort_value(r, self.sort_column)[0])
        shown = [(r.id, tuple(map(str, row_cells(r, r.id in self.selected)))) for r in rows]
        self.rows_by_id = {r.id: r for r in rows}
        if shown == self._shown:
            return
        self._shown = shown
        current = self.cursor_id
        self.clear()
        for r in rows:
            self.add_row(*row_cells(r, r.id in self.selected), key=r.id)
        if current in self.rows_by_id:
            self.move_cursor(row=self.get_row_index(current), animate=False)

    def sort_by(self, column: str) -> None:
        if column == self.sort_column:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column, self.sort_reverse = column, False
        self._shown = []
        self.show(list(self.rows_by_id.values()))

    def action_toggle_select(self) -> None:
        current = self.cursor_id
        if current is None:
            return
        self.selected ^= {current}
        self._shown = []
        self.show(list(self.rows_by_id.values()))
        if self.cursor_row < self.row_count - 1:
            self.move_cursor(row=self.cursor_row + 1)

    def action_open_details(self) -> None:
        current = self.cursor_id
        if current:
            self.post_message(self.OpenDetails(current))

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.sort_by(event.column_key.value)
