"""Modal dialogs: the train form, the device picker, confirmations, errors, help.

Each returns its answer through `dismiss(value)` (None = cancelled); the app decides what to do.
"""

from __future__ import annotations

from typing import Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Header, Input, Label, RichLog, Select, Static

from core.errors import InputError
from core.prefs import DEFAULT_PROFILE
from core.safetext import visible
from core.settings import default_data_dir
from klmtui.wording import for_tui


class Dialog(ModalScreen):
    """Base: escape cancels; a title line; buttons at the bottom."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]
    DEFAULT_CLASSES = "dialog"

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.dismiss(None)
        elif event.button.id == "ok":
            self.submit()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.submit()

    def submit(self) -> None:  # overridden by forms
        self.dismiss(True)

    def buttons(self, ok: str = "OK", cancel: str | None = "Cancel") -> Horizontal:
        items = [Button(ok, variant="primary", id="ok", compact=True)]
        if cancel:
            items.append(Button(cancel, id="cancel", compact=True))
        return Horizontal(*items, classes="buttons")

    def field_error(self, message: str) -> None:
        self.query_one("#form-error", Static).update(f"[b red]{message}[/]")


def _int(value: str, name: str, minimum: int = 0, optional: bool = False) -> int | None:
    value = value.strip()
    if not value and optional:
        return None
    try:
        number = int(value)
    except ValueError:
        raise InputError(f"{name} must be a whole number (got {value!r})") from None
    if number < minimum:
        raise InputError(f"{name} must be >= {minimum} (got {number})")
    return number


class DataChecked(Message):
    """The train form's data folder, checked in a worker: what it holds, or why it cannot be used."""

    def __init__(self, answer: dict, kind: str | None, error: str | None) -> None:
        super().__init__()
        self.answer, self.kind, self.error = answer, kind, error


class TrainForm(Dialog):
    """Profile, epochs, seeds, executor (+ data folder and subsets for quick runs).

    The first field has focus; enter in any field submits. The data folder is checked in a worker
    (it reads the disk) and a problem is shown here, in the form's words, before anything is sent."""

    AUTO_FOCUS = "#profile"
    PROFILE_CHOICES = (("paper (thesis recipe, 600 epochs)", "paper"), ("fast (paper + amp/channels_last on GPU)", "fast"),
                       ("quick (5 epochs, 10k/2k images)", "quick"))

    def __init__(self, arch_ids: list[str], defaults: dict, check_data: Callable[[str | None], str] | None = None) -> None:
        super().__init__()
        self.arch_ids = arch_ids
        self.defaults = defaults
        self.check_data = check_data
        self._download_ok = False

    def compose(self) -> ComposeResult:
        d = self.defaults
        names = ", ".join(self.arch_ids[:6]) + (" ..." if len(self.arch_ids) > 6 else "")
        with Vertical(id="train-form", classes="form"):
            yield Label(f"[b]Train[/] {names}", classes="title")
            with Grid(classes="fields"):
                yield Label("profile")
                yield Select(list(self.PROFILE_CHOICES), value=d.get("profile") or DEFAULT_PROFILE,
                             allow_blank=False, id="profile", compact=True)
                yield Label("epochs")
                yield Input(str(d.get("epochs", "")), placeholder="profile default", id="epochs", compact=True)
                yield Label("seeds")
                yield Input(str(d.get("seeds", 1)), id="seeds", compact=True)
                yield Label("executor")
                yield Select([("local (detached process)", "local"), ("ray", "ray")], value=d.get("executor", "local"),
                             allow_blank=False, id="executor", compact=True)
                yield Label("ray address")
                yield Input(d.get("address", ""), placeholder="auto / host:port (ray only)", id="address", compact=True)
                yield Label("ray storage")
                yield Input(d.get("storage", ""), placeholder="folder every Ray node sees (ray only)", id="storage",
                            compact=True)
                yield Label("data folder")
                yield Input(d.get("data", ""), placeholder="CIFAR-10 folder (ImageFolder or torchvision)", id="data", compact=True)
                yield Label("train subset")
                yield Input(str(d.get("train_subset", "") or ""), placeholder="all", id="train_subset", compact=True)
                yield Label("test subset")
                yield Input(str(d.get("test_subset", "") or ""), placeholder="all", id="test_subset", compact=True)
                yield Label("batch size")
                yield Input(str(d.get("batch_size", "") or ""), placeholder="profile default", id="batch_size", compact=True)
            yield Static("", id="form-error")
            yield self.buttons("Train", "Cancel")

    def submit(self) -> None:
        value = lambda name: self.query_one(f"#{name}", Input).value  # noqa: E731
        try:
            answer = {
                "profile": self.query_one("#profile", Select).value,
                "epochs": _int(value("epochs"), "epochs", 1, optional=True),
                "seeds": _int(value("seeds"), "seeds", 1),
                "executor": self.query_one("#executor", Select).value,
                "address": value("address").strip() or None,
                "storage": value("storage").strip() or None,
                "data": value("data").strip() or None,
                "train_subset": _int(value("train_subset"), "train subset", 1, optional=True),
                "test_subset": _int(value("test_subset"), "test subset", 1, optional=True),
                "batch_size": _int(value("batch_size"), "batch size", 1, optional=True),
            }
        except InputError as exc:
            self.field_error(str(exc))
            return
        if self.check_data is None:
            self.dismiss(answer)
            return
        from klmtui.app import Job

        self.query_one("#form-error", Static).update("[dim]checking the data folder ...[/]")
        check = self.check_data

        def checked() -> DataChecked:
            try:
                return DataChecked(answer, check(answer["data"]), None)
            except InputError as exc:  # shown in the form, not as a notification
                return DataChecked(answer, None, for_tui(str(exc)))

        self.app.run_job(Job("check the data folder"), checked, group="train-form", exclusive=True, target=self)

    def on_data_checked(self, message: DataChecked) -> None:
        if message.error:
            self.field_error(f"data folder: {message.error}")
            self.query_one("#data", Input).focus()
            return
        if message.kind == "download" and not self._download_ok:
            self._download_ok = True
            self.field_error(f"no data folder: CIFAR-10 (about 170 MB) will be downloaded to {default_data_dir()}. "
                             "Submit again to go ahead, or fill in the data folder.")
            self.query_one("#data", Input).focus()
            return
        self.dismiss(message.answer)


class BenchForm(Dialog):
    """Pick a device and the protocol (short protocols are handy for a first look). The first field
    (the device) has focus; enter in any field submits."""

    AUTO_FOCUS = "#device"

    def __init__(self, arch_ids: list[str], devices: list[str], defaults: dict) -> None:
        super().__init__()
        self.arch_ids = arch_ids
        self.devices = devices
        self.defaults = defaults

    def compose(self) -> ComposeResult:
        d = self.defaults
        names = ", ".join(self.arch_ids[:6]) + (" ..." if len(self.arch_ids) > 6 else "")
        device = d.get("device") if d.get("device") in self.devices else self.devices[0]
        with Vertical(id="bench-form", classes="form"):
            yield Label(f"[b]Benchmark[/] {names}", classes="title")
            with Grid(classes="fields"):
                yield Label("device")
                yield Select([(n, n) for n in self.devices], value=device, allow_blank=False, id="device", compact=True)
                yield Label("more devices")  # a pool: each device takes the next queued architecture
                yield Input(", ".join(d.get("more_devices") or []), placeholder="e.g. nano2, xavier (comma-separated)",
                            id="more_devices", compact=True)
                yield Label("protocol")
                yield Select([("thesis (50 runs x 50 batches)", "thesis"), ("adaptive (CI of median <= 1%)", "adaptive")],
                             value=d.get("protocol", "thesis"), allow_blank=False, id="protocol", compact=True)
                yield Label("timing")
                yield Select([("sync (device time)", "sync"), ("thesis (host clock, as Appendix A)", "thesis")],
                             value=d.get("timing", "sync"), allow_blank=False, id="timing", compact=True)
                for name, label in (("batch", "batch"), ("runs", "runs"), ("batches", "batches per run"),
                                    ("warmup_runs", "warm-up runs"), ("warmup_batches", "warm-up batches")):
                    yield Label(label)
                    yield Input(str(d.get(name, "") or ""), placeholder="protocol default", id=name, compact=True)
            yield Static("", id="form-error")
            yield self.buttons("Benchmark", "Cancel")

    def submit(self) -> None:
        options: dict = {
            "protocol": self.query_one("#protocol", Select).value,
            "timing": self.query_one("#timing", Select).value,
        }
        try:
            for name in ("batch", "runs", "batches", "warmup_runs", "warmup_batches"):
                options[name] = _int(self.query_one(f"#{name}", Input).value, name.replace("_", " "), 0, optional=True)
        except InputError as exc:
            self.field_error(str(exc))
            return
        device = self.query_one("#device", Select).value
        more = [n.strip() for n in self.query_one("#more_devices", Input).value.split(",") if n.strip()]
        unknown = [n for n in more if n not in self.devices]
        if unknown:
            self.field_error(f"unknown device(s): {', '.join(unknown)}")
            return
        self.dismiss({"device": device, "devices": list(dict.fromkeys([device, *more])),
                      "options": {k: v for k, v in options.items() if v is not None}})


class DeviceForm(Dialog):
    """`device add`: name and host, the rest optional."""

    AUTO_FOCUS = "#name"

    FIELDS = (("name", "name", "jetson-nano"), ("host", "host", "hostname, IP or ~/.ssh/config alias"),
              ("user", "user", "from ~/.ssh/config"), ("port", "port", "22"), ("key", "key file", "path (never the key)"),
              ("python", "python", "python3"), ("tegrastats", "tegrastats", "tegrastats command"))

    def compose(self) -> ComposeResult:
        with Vertical(id="device-form", classes="form"):
            yield Label("[b]Add a device[/]", classes="title")
            with Grid(classes="fields"):
                for key, label, hint in self.FIELDS:
                    yield Label(label)
                    yield Input(placeholder=hint, id=key, compact=True)
            yield Static("", id="form-error")
            yield self.buttons("Add", "Cancel")

    def submit(self) -> None:
        answer = {key: self.query_one(f"#{key}", Input).value.strip() for key, _, _ in self.FIELDS}
        if not answer["name"] or not answer["host"]:
            self.field_error("name and host are required")
            return
        try:
            answer["port"] = _int(answer["port"], "port", 1, optional=True)
        except InputError as exc:
            self.field_error(str(exc))
            return
        self.dismiss(answer)


class ExportForm(Dialog):
    AUTO_FOCUS = "#path"

    def __init__(self, source: str, default_path: str) -> None:
        super().__init__()
        self.source = source
        self.default_path = default_path

    def compose(self) -> ComposeResult:
        with Vertical(id="export-form", classes="form"):
            yield Label(f"[b]Export[/] the results table ({self.source})", classes="title")
            with Grid(classes="fields"):
                yield Label("format")
                yield Select([("csv", "csv"), ("markdown", "md"), ("latex", "latex")], value="md", allow_blank=False, id="format", compact=True)
                yield Label("file")
                yield Input(self.default_path, id="path", compact=True)
            yield Static("", id="form-error")
            yield self.buttons("Export", "Cancel")

    def submit(self) -> None:
        path = self.query_one("#path", Input).value.strip()
        if not path:
            self.field_error("a file name is needed")
            return
        self.dismiss({"format": self.query_one("#format", Select).value, "path": path})


class ConfirmDialog(Dialog):
    """A yes/no question (init the study, trust a host key)."""

    def __init__(self, title: str, body: str, ok: str = "Yes", cancel: str = "No") -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.ok = ok
        self.cancel = cancel

    def compose(self) -> ComposeResult:
        with Vertical(classes="form confirm"):
            yield Label(f"[b]{self.title_text}[/]", classes="title")
            yield Static(self.body, classes="body")
            yield self.buttons(self.ok, self.cancel)


class TrustDialog(ConfirmDialog):
    """Shows the host key fingerprint; records it only on an explicit yes."""

    def __init__(self, device: str, fingerprint: str, message: str) -> None:
        body = (
            f"{message}\n\nFingerprint:  [b yellow]{fingerprint}[/]\n\n"
            "Compare it with the device's own (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the "
            "device) before recording it in klmtui's known_hosts."
        )
        super().__init__("Unknown host key", body, ok="Trust", cancel="Do not trust")
        self.device = device
        self.fingerprint = fingerprint


class ErrorDialog(Dialog):
    def __init__(self, title: str, message: str) -> None:
        super().__init__()
        self.title_text = title
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical(classes="form error-dialog"):
            yield Label(f"[b red]{self.title_text}[/]", classes="title")
            yield Static(visible(self.message, one_line=False), classes="body", markup=False)
            yield self.buttons("OK", None)


KEYS = (
    ("t", "train the selection (or the row under the cursor)"),
    ("b", "benchmark it on a device (live latency and power)"),
    ("c / r", "cancel / resume its runs (interrupted runs resume from their checkpoint)"),
    ("enter", "details: every run and benchmark (pick one: its curves, l its whole log, x delete)"),
    ("space", "select / unselect a row"),
    ("m", "compare the selected rows: curves, latency/power distributions, differences"),
    ("/", "filter: @24  running  6-6-   (esc clears)"),
    ("o, header", "sort by the next column / by a clicked header (again: reverse)"),
    ("s", "figures source: our measurements, the thesis, imported ones"),
    ("p", "Pareto fronts (objectives and tolerances on screen)"),
    ("d", "devices: add, check, trust, remove"),
    ("e", "export the results table (csv, markdown, LaTeX)"),
    ("i", "initialise the study (sampled architectures + thesis reference)"),
    ("ctrl+p", "command palette"),
    ("q", "quit (training runs and benchmarks keep going; the next start follows them)"),
)
HELP = (
    "[b]klmtui[/]: the study lives in the store (runs.json); training runs and benchmarks are detached "
    "processes and outlive the TUI, which re-attaches on start.\n\n"
    + "\n".join(f"  [b]{key:<10}[/] {text}" for key, text in KEYS)
    + "\n\n[dim]* after an architecture: sampled by the thesis' rules but not in the thesis (5-5-8).\n"
    "Remap keys in $KLMTUI_HOME/keys.json by binding id, e.g. {\"klmtui.train\": \"T\"}.[/]"
)


class HelpScreen(Dialog):
    BINDINGS = [Binding("escape,q,question_mark", "cancel", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="form help"):
            yield Static(HELP)
            yield self.buttons("Close", None)


class LogLoaded(Message):
    def __init__(self, lines: list[str]) -> None:
        super().__init__()
        self.lines = lines


class LogScreen(Screen):
    """The whole log of a run or benchmark: scrollable, long lines wrapped, never cut (escape: back)."""

    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back"), Binding("r", "reload", "Reload")]

    def __init__(self, record_id: str) -> None:
        super().__init__()
        self.record_id = record_id
        self.lines: list[str] = []  # what is shown, as read
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield RichLog(id="full-log", wrap=True, markup=False, highlight=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = f"log of {self.record_id}"
        self.query_one(RichLog).focus()
        self.action_reload()

    def action_reload(self) -> None:
        from klmtui.app import Job

        record_id = self.record_id
        self.app.run_job(Job("read the log", record_id), lambda: LogLoaded(self.app.services.run_log(record_id)),
                         group="full-log", exclusive=True, target=self)

    def on_log_loaded(self, message: LogLoaded) -> None:
        self.lines, self.loaded = list(message.lines), True
        log = self.query_one(RichLog)
        log.clear()
        for line in [visible(line) for line in message.lines] or ["(the log is empty)"]:
            log.write(line)
