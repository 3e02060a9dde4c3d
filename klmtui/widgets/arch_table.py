"""The architectures table: sortable by any column, filterable, with a multi-selection."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, RowDoesNotExist

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


# At most this many rows are added to the DataTable at once (the first of the sorted order); more are
# added, as many again, when the cursor or the scroll comes within a screen of the last one. A
# DataTable row costs ~0.5 ms on this 2-core VM (its cells are measured for the column widths), so a
# redraw stays ~0.05 s however many rows there are (2,000 would be ~1 s); sorting, filtering and the
# front marker always use them all. The study (57) and the thesis (54) fit: their table is as before.
SHOWN_ROWS = 100


_SORT_KEYS = {
    "sel": lambda r: r.id,
    "arch": lambda r: (triple_key(r.arch), r.channels),
    "channels": lambda r: r.channels,
    "params": lambda r: r.params,
    "macs": lambda r: r.macs,
    "status": lambda r: r.status,
    "accuracy": lambda r: r.accuracy,
    "latency": lambda r: r.latency_s,
    "power": lambda r: r.power_w,
    "energy": lambda r: r.energy_mj,
    "front": lambda r: not r.on_front,
}


def sort_value(row: ArchRow, column: str):
    """A value that sorts sensibly; missing figures always sort last."""
    key = _SORT_KEYS.get(column)
    value = None if key is None else key(row)
    return (value is None, value if value is not None else 0)


def ordered(rows: list[ArchRow], column: str, reverse: bool) -> list[ArchRow]:
    """The rows sorted by `column` (missing values last in both directions): the table's order,
    also computed in the home screen's worker for a big source."""
    rows = sorted(rows, key=lambda r: sort_value(r, column), reverse=reverse)
    if reverse:  # missing values last in both directions
        rows.sort(key=lambda r: sort_value(r, column)[0])
    return rows


def selection_cell(selected: bool) -> Text:
    return Text("✓", style="bold green") if selected else Text(" ")


def row_cells(row: ArchRow, selected: bool) -> list:
    status_word = row.status.split(" ")[0]
    arch = Text(row.arch)
    if row.in_thesis is False:
        arch.append("*", style="dim")
    return [
        selection_cell(selected),
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
    """DataTable of `ArchRow`s keyed by architecture id; the cursor survives refreshes.

    `rows_by_id` holds every row given (filtered, in the sorted order); only the first
    `SHOWN_ROWS` are in the DataTable until the cursor or the scroll nears the end (`Extent` says
    how many). With more than `SHOWN_ROWS` rows, a sort asks the screen (`SortChanged`) to sort
    them all in a worker instead of sorting here."""

    BINDINGS = [
        Binding("enter", "open_details", "Details", id="klmtui.details"),
        Binding("space", "toggle_select", "Select", show=False, id="klmtui.select"),  # in the help; footer fits 80
    ]

    class OpenDetails(Message):
        def __init__(self, arch_id: str) -> None:
            super().__init__()
            self.arch_id = arch_id

    class SortChanged(Message):
        """The sort column or direction changed over more rows than the table sorts itself."""

    class Extent(Message):
        """How many of the rows are in the table (`shown`) out of all of them (`total`)."""

        def __init__(self, shown: int, total: int) -> None:
            super().__init__()
            self.shown = shown
            self.total = total

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.rows_by_id: dict[str, ArchRow] = {}
        self.selected: set[str] = set()
        self.sort_column = "arch"
        self.sort_reverse = False
        self._shown: list[tuple] = []
        self._ordered: list[ArchRow] = []  # every row, in the table's order; the first len(_shown) are drawn
        self._more_pending = False

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

    @property
    def total(self) -> int:
        """All the rows the table was given (it shows the first `len(self._shown)`)."""
        return len(self._ordered)

    def targets(self) -> list[str]:
        """The selection, or the row under the cursor when nothing is selected."""
        if self.selected:
            return [i for i in self.rows_by_id if i in self.selected]
        current = self.cursor_id
        return [current] if current else []

    def show(self, rows: list[ArchRow], *, same_view: bool = True) -> None:
        """Redraw with `rows` (already filtered), sorted by the current column; keep the cursor."""
        self.show_ordered(ordered(rows, self.sort_column, self.sort_reverse), same_view=same_view)

    def show_ordered(self, rows: list[ArchRow], *, same_view: bool = True) -> None:
        """Redraw with `rows` already filtered and in the table's order: the first `SHOWN_ROWS`, or,
        for the `same_view` (new figures of the same source and filter), as many as were shown
        before when the user had scrolled further; keep the cursor."""
        self._ordered = rows
        self.rows_by_id = {r.id: r for r in rows}
        limit = min(len(rows), max(SHOWN_ROWS, len(self._shown) if same_view else 0))
        cells = [row_cells(r, r.id in self.selected) for r in rows[:limit]]
        shown = [(r.id, tuple(map(str, c))) for r, c in zip(rows, cells)]
        if shown == self._shown:
            self.post_message(self.Extent(len(shown), len(rows)))
            return
        self._shown = shown
        current = self.cursor_id
        self.clear()
        for r, c in zip(rows, cells):
            self.add_row(*c, key=r.id)
        if current in self.rows_by_id:
            try:
                self.move_cursor(row=self.get_row_index(current), animate=False)
            except RowDoesNotExist:  # sorted past the rows drawn: the cursor stays at the top
                pass
        self.post_message(self.Extent(len(shown), len(rows)))

    def _show_more_soon(self) -> None:
        if not self._more_pending:
            self._more_pending = True
            self.call_after_refresh(self.show_more)

    def show_more(self) -> None:
        """Add the next `SHOWN_ROWS` rows of the order (the cursor or the scroll neared the end)."""
        self._more_pending = False
        start = len(self._shown)
        more = self._ordered[start:start + SHOWN_ROWS]
        if not more:
            return
        for r in more:
            c = row_cells(r, r.id in self.selected)
            self.add_row(*c, key=r.id)
            self._shown.append((r.id, tuple(map(str, c))))
        self.post_message(self.Extent(len(self._shown), len(self._ordered)))

    def _near_the_end(self) -> bool:
        """The cursor or the last visible row is within a screen of the last row drawn (rows are
        one line high; counted in rows, not from the virtual size, which lags a redraw)."""
        page = max(1, self.size.height)
        return len(self._shown) < len(self._ordered) and (
            self.cursor_row >= len(self._shown) - page or self.scroll_y + 2 * page >= len(self._shown))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self._near_the_end():
            self._show_more_soon()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if new_value > old_value and self._near_the_end():
            self._show_more_soon()

    def sort_by(self, column: str) -> None:
        if column == self.sort_column:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column, self.sort_reverse = column, False
        self._shown = []
        if len(self._ordered) > SHOWN_ROWS:  # sorted over all of them in the screen's worker
            self.post_message(self.SortChanged())
            return
        self.show(self._ordered)

    def action_toggle_select(self) -> None:
        current = self.cursor_id
        if current is None:
            return
        self.selected ^= {current}
        index = self.cursor_row
        cell = selection_cell(current in self.selected)
        self.update_cell(current, "sel", cell)  # the selection does not move the row: one cell
        if 0 <= index < len(self._shown) and self._shown[index][0] == current:
            self._shown[index] = (current, (str(cell), *self._shown[index][1][1:]))
        if self.cursor_row < self.row_count - 1:
            self.move_cursor(row=self.cursor_row + 1)

    def action_open_details(self) -> None:
        current = self.cursor_id
        if current:
            self.post_message(self.OpenDetails(current))

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.sort_by(event.column_key.value)
