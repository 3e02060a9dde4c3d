"""Devices screen: the registry (`devices` table), add, check, trust, remove.

Checks run in thread workers (paramiko is imported there); an unknown host key comes back as a
`TrustRequired` message and the app asks, showing the fingerprint, before anything is recorded.
"""

from __future__ import annotations

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from core.safetext import visible
from core.schema import LOCAL_DEVICE, local_device_record
from klmtui.views import fmt


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
        self.reports: dict[str, dict] = {}
        self._shown = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="devices-table", cursor_type="row", zebra_stripes=True)
        yield Static("Select a device: k checks it (JetPack/L4T, torch, tegrastats, nvpmodel), t trusts its host key.",
                     id="device-report")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "Devices"
        table = self.query_one(DataTable)
        table.add_columns("name", "host", "user", "port", "key", "python", "tegrastats", "checked")
        self.show_snapshot(self.app.snapshot)
        table.focus()

    def device_records(self, snapshot) -> list[dict]:
        records = list(snapshot.table("devices")) if snapshot else []
        if not any(d["id"] == LOCAL_DEVICE for d in records):
            records.insert(0, {**local_device_record(), "host": "(this machine)"})
        return records

    def show_snapshot(self, snapshot) -> None:
        records = self.device_records(snapshot)
        shown = [(d["id"], tuple(str(d.get(k)) for k in ("host", "user", "port", "key", "python", "tegrastats")),
                  d["id"] in self.reports) for d in records]
        if shown == self._shown:
            return
        self._shown = shown
        table = self.query_one(DataTable)
        current = self.current()
        table.clear()
        for d in records:
            table.add_row(d["id"], fmt(d.get("host")), fmt(d.get("user")), fmt(d.get("port")), fmt(d.get("key")),
                          fmt(d.get("python")), fmt(d.get("tegrastats")), "yes" if d["id"] in self.reports else "",
                          key=d["id"])
        if current and current in [d["id"] for d in records]:
            table.move_cursor(row=table.get_row_index(current), animate=False)

    def current(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def show_report(self, name: str, report: dict) -> None:
        self.reports[name] = report
        lines = [f"[b]{name}[/]"] + [f"  {k}: {escape(visible(v))}" for k, v in report.items() if not isinstance(v, (dict, list))]
        self.query_one("#device-report", Static).update("\n".join(lines))
        self._shown = None
        self.show_snapshot(self.app.snapshot)

    def action_add(self) -> None:
        self.app.ask_add_device()

    def action_check(self) -> None:
        if name := self.current():
            self.query_one("#device-report", Static).update(f"checking {name} ...")
            self.app.check_device(name)

    def action_trust(self) -> None:
        if name := self.current():
            self.app.ask_trust(name)

    def action_remove(self) -> None:
        if (name := self.current()) and name != LOCAL_DEVICE:
            self.app.remove_device(name)
