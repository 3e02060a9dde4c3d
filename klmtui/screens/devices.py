"""Devices screen: the registry (`devices` table), add, check, trust, remove.

Checks run in the app's thread workers (paramiko is imported there). The screen posts requests
and watches the app's `snapshot` and `device_states` (checking / checked / failed), so its status
line always says where the check of the highlighted device stands. An unknown host key makes the
app ask, showing the fingerprint, before anything is recorded.
"""

from __future__ import annotations

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from core.numbers import figure
from core.safetext import plain, visible
from core.schema import LOCAL_DEVICE, local_device_record
from klmtui import messages as m

FIELDS = ("host", "user", "port", "key", "python", "tegrastats")
CHECKED = {"checking": "...", "checked": "yes", "failed": "FAILED"}
HINT = "Select a device: k checks it (JetPack/L4T, torch, tegrastats, nvpmodel), t trusts its host key."


class DevicesScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("a", "add", "Add", id="klmtui.devices.add"),
        Binding("k", "check", "Check", id="klmtui.devices.check"),
        Binding("t", "trust", "Trust", id="klmtui.devices.trust"),
        Binding("x", "remove", "Remove", id="klmtui.devices.remove"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._shown = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="devices-table", cursor_type="row", zebra_stripes=True)
        yield Static(HINT, id="device-report")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "Devices"
        table = self.query_one(DataTable)
        table.add_columns("name", *FIELDS, "checked")
        self.watch(self.app, "snapshot", self.show_snapshot)
        self.watch(self.app, "device_states", self.show_states)
        table.focus()

    def device_records(self, snapshot) -> list[dict]:
        records = list(snapshot.table("devices")) if snapshot else []
        if not any(d["id"] == LOCAL_DEVICE for d in records):
            records.insert(0, {**local_device_record(), "host": "(this machine)"})
        return records

    def checked(self, name: str) -> str:
        state = self.app.device_states.get(name)
        return "" if state is None else CHECKED.get(state.status, "")

    def show_snapshot(self, snapshot) -> None:
        records = self.device_records(snapshot)
        shown = [(d["id"], tuple(str(d.get(k)) for k in FIELDS), self.checked(d["id"])) for d in records]
        if shown == self._shown:
            return
        self._shown = shown
        table = self.query_one(DataTable)
        current = self.current()
        table.clear()
        for d in records:  # figure(): a port is 2222, never 2.22e+03
            table.add_row(*[plain(figure(d.get(k))) for k in ("id", *FIELDS)], self.checked(d["id"]), key=d["id"])  # data, not markup
        if current and current in [d["id"] for d in records]:
            table.move_cursor(row=table.get_row_index(current), animate=False)

    def current(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def show_states(self, states: dict) -> None:
        """The status line for the highlighted device: its check running, its report, or why it failed."""
        self.show_snapshot(self.app.snapshot)  # the "checked" column (redrawn only when it changed)
        name = self.current()
        state = states.get(name) if name else None
        report = self.query_one("#device-report", Static)
        if state is None:
            report.update(HINT)
        elif state.status == "checking":
            report.update(f"checking {escape(name)} ...")
        elif state.status == "failed":
            report.update(f"[b red]check of {escape(name)} failed:[/] {escape(visible(state.error or 'no reason given'))}")
        else:
            lines = [f"[b]{escape(name)}[/]"] + [f"  {k}: {escape(visible(v))}" for k, v in (state.report or {}).items()
                                                if not isinstance(v, (dict, list))]
            report.update("\n".join(lines))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_states(self.app.device_states)

    def action_add(self) -> None:
        self.post_message(m.AddDeviceRequest())

    def action_check(self) -> None:
        if name := self.current():
            self.post_message(m.CheckDeviceRequest(name))

    def action_trust(self) -> None:
        if name := self.current():
            self.post_message(m.TrustDeviceRequest(name))

    def action_remove(self) -> None:
        if (name := self.current()) and name != LOCAL_DEVICE:
            self.post_message(m.RemoveDeviceRequest(name))
