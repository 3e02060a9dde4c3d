"""The Textual app: screens, bindings, and the wiring between workers and screens.

Workers call `klmtui.services` (which calls core/remote) in threads and post typed messages
(`klmtui.messages`) back; every error becomes a notification or a dialog, never a crash. The
store is re-read once a second (a cheap snapshot read, skipped when the file is unchanged), so
jobs started by this app, by an earlier session or by the CLI all show up: the app re-attaches
to whatever the store says is running.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Callable, Iterable

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from core import settings
from core.errors import KlmtuiError
from core.schema import ACTIVE_STATUSES, LOCAL_DEVICE
from core.safetext import visible
from klmtui.live import LiveStreams
from klmtui.messages import (ActionDone, ActionFailed, DeviceChecked, StoreLoaded, StreamEnded, StreamEvent,
                             TrustRequired)
from klmtui.services import Services, Snapshot, file_signature

STORE_POLL_S = 1.0
JOBS_REFRESH_S = 5.0


class KlmtuiApp(App):
    """klmtui: the study's architectures, their training runs and device benchmarks."""

    CSS_PATH = Path(__file__).with_name("klmtui.tcss")  # absolute: subclasses elsewhere (bench/) find it too
    TITLE = "klmtui"
    BINDINGS = [
        Binding("p", "pareto", "Pareto", id="klmtui.pareto"),
        Binding("d", "devices", "Devices", id="klmtui.devices"),
        Binding("i", "init_study", "Init", show=False, id="klmtui.init"),
        Binding("question_mark", "help", "Help", id="klmtui.help"),
        Binding("q", "quit", "Quit", id="klmtui.quit"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(self, store_path: Path | str, *, poll_s: float = STORE_POLL_S, jobs_refresh_s: float | None = JOBS_REFRESH_S,
                 train_defaults: dict | None = None, bench_defaults: dict | None = None) -> None:
        super().__init__()
        self.services = Services(Path(store_path))
        self.snapshot: Snapshot | None = None
        self.streams = LiveStreams()
        self.poll_s = poll_s
        self.jobs_refresh_s = jobs_refresh_s
        self.train_defaults = {"profile": "quick", "seeds": 1, "executor": "local",
                               "data": str(settings.data_dir() or ""), **(train_defaults or {})}
        self.bench_defaults = {"device": LOCAL_DEVICE, "protocol": "thesis", **(bench_defaults or {})}
        self._offered_init = False
        self._polls = 0
        self._stop_following = threading.Event()  # set on quit: benchmark followers let go

    # ------------------------------------------------------------------ start-up
    def on_mount(self) -> None:
        from klmtui.screens.home import HomeScreen

        self._load_keymap()
        self.push_screen(HomeScreen())
        self.reload_store()
        self.set_interval(self.poll_s, self.reload_store)
        if self.jobs_refresh_s:
            self.set_interval(self.jobs_refresh_s, self.refresh_jobs)
            self.refresh_jobs()

    def _load_keymap(self) -> None:
        """Remapped keys: `$KLMTUI_HOME/keys.json` = {"klmtui.train": "T", ...} (binding ids)."""
        home = settings.home()
        try:
            keymap = json.loads((home / "keys.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(keymap, dict):
            self.set_keymap({str(k): str(v) for k, v in keymap.items()})

    # ------------------------------------------------------------------ the store
    @work(thread=True, exclusive=True, group="store")
    def reload_store(self) -> None:
        """Re-read the store unless its file is unchanged (every 10th call reads anyway: a rename
        can reuse an inode within the file system's time-stamp granularity)."""
        self._polls += 1
        current = self.snapshot
        if current is not None and self._polls % 10 and file_signature(self.services.store_path) == current.signature:
            return
        self.post_message(StoreLoaded(self.services.snapshot()))

    @work(thread=True, exclusive=True, group="jobs-refresh")
    def refresh_jobs(self) -> None:
        if self.snapshot is None or self.snapshot.error or not self.snapshot.table("runs"):
            return
        try:
            self.services.refresh_jobs()
        except Exception:  # a refresh that fails now will be retried in a few seconds
            return

    def on_store_loaded(self, message: StoreLoaded) -> None:
        new = message.snapshot
        old = self.snapshot
        if old is not None and (old.tables, old.error) == (new.tables, new.error):
            self.snapshot = new  # same content: keep the newer signature, redraw nothing
            return
        self.snapshot = new
        if old is not None:
            self._announce_outcomes(old, new)
        if new.error and (old is None or old.error != new.error):
            self.notify(new.error, title="Cannot read the store", severity="error", timeout=10)
        for screen in self.screen_stack:
            show = getattr(screen, "show_snapshot", None)
            if show is not None:
                show(new)
        if new.missing and not self._offered_init:
            self._offered_init = True
            self.action_init_study()

    def _announce_outcomes(self, old: Snapshot, new: Snapshot) -> None:
        """A run or benchmark that just finished, wherever it ran: a notification (errors stand out)."""
        for table, what in (("runs", "training"), ("benchmarks", "benchmark")):
            before = {r["id"]: r.get("status") for r in old.table(table)}
            for rec in new.table(table):
                status = rec.get("status")
                if before.get(rec["id"]) in (None, status) or status not in ("done", "failed", "interrupted"):
                    continue
                label = f"{what} {rec['id']} of {rec.get('arch_id')}"
                if status == "done":
                    figure = (f"accuracy {rec['accuracy']:.2f}%" if rec.get("accuracy") is not None
                              else f"latency {rec['latency_s']:.4f} s/batch" if rec.get("latency_s") is not None else "")
                    self.notify(f"{label} done {figure}", timeout=6)
                else:
                    self.notify(visible(f"{label} {status}: {rec.get('error') or 'no reason recorded'}"), title=f"{what} {status}",
                                severity="error" if status == "failed" else "warning", timeout=10, markup=False)

    # ------------------------------------------------------------------ running calls in workers
    def call_in_worker(self, title: str, fn: Callable, *args: Any, done: str | None = None,
                       then: Callable[[Any], None] | None = None, dialog: bool = False) -> None:
        """Run `fn(*args)` in a thread; success -> ActionDone (+ `then(result)` on the UI thread),
        a user-facing error -> ActionFailed (notification, or a dialog), anything else too."""

        def job() -> None:
            try:
                result = fn(*args)
            except KlmtuiError as exc:
                if getattr(exc, "fingerprint", None) and title == "check":
                    self.post_message(TrustRequired(str(args[0]), str(exc)))
                else:
                    self.post_message(ActionFailed(title, str(exc), dialog=dialog))
                return
            except Exception as exc:  # a bug or an unexpected failure: show it, keep running
                self.post_message(ActionFailed(title, f"{type(exc).__name__}: {exc}", dialog=True))
                return
            self.post_message(ActionDone(done or "", result=result, then=then))
            self.reload_store()

        self.run_worker(job, thread=True, group=title, exit_on_error=False)

    def on_action_done(self, message: ActionDone) -> None:
        if message.message:
            self.notify(message.message, timeout=4)
        if message.then is not None:
            message.then(message.result)

    def on_action_failed(self, message: ActionFailed) -> None:
        if message.dialog:
            from klmtui.screens.dialogs import ErrorDialog

            self.push_screen(ErrorDialog(message.title, message.message))
        else:
            self.notify(visible(message.message), title=message.title, severity="error", timeout=8, markup=False)

    # ------------------------------------------------------------------ screens
    def open_details(self, arch_id: str) -> None:
        from klmtui.screens.details import DetailsScreen

        self.push_screen(DetailsScreen(arch_id))

    def action_pareto(self) -> None:
        from klmtui.screens.pareto import ParetoScreen

        home = self.home_screen_with_id("home")
        self.push_screen(ParetoScreen(getattr(home, "source", "measured")))

    def action_devices(self) -> None:
        from klmtui.screens.devices import DevicesScreen

        self.push_screen(DevicesScreen())

    def action_report(self) -> None:
        from klmtui.screens.reproduction import ReproductionScreen

        self.push_screen(ReproductionScreen())

    def action_help(self) -> None:
        from klmtui.screens.dialogs import HelpScreen

        self.push_screen(HelpScreen())

    def home_screen_with_id(self, screen_id: str) -> Screen | None:
        return next((s for s in self.screen_stack if s.id == screen_id), None)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Pareto fronts", "N-objective front table and 2-objective scatter plots", self.action_pareto)
        yield SystemCommand("Devices", "Jetson devices: add, check, trust", self.action_devices)
        yield SystemCommand("Initialise the study", "Sampled architectures + the thesis' reference results", self.action_init_study)
        yield SystemCommand("Help", "Keys and what they do", self.action_help)
        yield SystemCommand("Reproduction report", "measured against thesis: deltas, tau, fronts", self.action_report)
        home = self.home_screen_with_id("home")
        if home is not None:
            for action, title, text in (("train", "Train", "Train the selection (form)"),
                                        ("bench", "Benchmark", "Benchmark the selection on a device"),
                                        ("cancel", "Cancel", "Cancel the selection's running jobs"),
                                        ("resume", "Resume", "Resume the selection's interrupted runs"),
                                        ("export", "Export", "Export the results table (csv/md/latex)"),
                                        ("cycle_source", "Switch figures source", "Measured / thesis / imported")):
                yield SystemCommand(title, text, getattr(home, f"action_{action}"))

    # ------------------------------------------------------------------ study
    def action_init_study(self) -> None:
        from klmtui.screens.dialogs import ConfirmDialog

        def answer(yes: bool | None) -> None:
            if yes:
                self.notify("initialising the study ...", timeout=3)
                self.call_in_worker("init", self.services.init_study, then=lambda text: self.notify(text, timeout=6), dialog=True)

        if self.snapshot is not None and self.snapshot.error:
            self.notify(self.snapshot.error, title="Cannot initialise", severity="error", timeout=10)
            return
        self.push_screen(ConfirmDialog(
            "Initialise the study?",
            f"Store: {self.services.store_path}\n\nAdds the architectures sampled by the thesis' rules and the thesis' "
            "Appendix A as the reference source 'thesis'. Existing runs and results are kept.",
            ok="Initialise", cancel="Not now"), answer)

    # ------------------------------------------------------------------ training
    def ask_train(self, arch_ids: list[str]) -> None:
        from klmtui.screens.dialogs import TrainForm

        def answer(form: dict | None) -> None:
            if form:
                self.train_defaults.update({k: v for k, v in form.items()})
                self.call_in_worker("train", self.services.train, arch_ids, form,
                                    then=lambda ids: self.notify(f"submitted {len(ids)} run(s): {' '.join(ids)}", timeout=5))

        self.push_screen(TrainForm(arch_ids, self.train_defaults), answer)

    def _job_ids(self, arch_ids: list[str], statuses: tuple[str, ...], tables=("runs", "benchmarks")) -> list[str]:
        snap = self.snapshot
        if snap is None:
            return []
        wanted = set(arch_ids)
        return [r["id"] for t in tables for r in snap.table(t) if r.get("arch_id") in wanted and r.get("status") in statuses]

    def cancel_jobs(self, arch_ids: list[str]) -> None:
        streams = [s for s in self.streams.active() if s.arch_id in arch_ids]
        for stream in streams:
            stream.cancel.set()
        ids = [i for i in self._job_ids(arch_ids, ACTIVE_STATUSES)
               if not any(s.bench_id == i for s in streams)]
        if not ids and not streams:
            self.notify("nothing running to cancel", severity="warning")
            return
        for job_id in ids:
            self.call_in_worker("cancel", self.services.cancel, job_id, done=f"cancelled {job_id}")
        if streams:
            self.notify(f"cancelling {len(streams)} benchmark(s)", timeout=3)

    def resume_jobs(self, arch_ids: list[str]) -> None:
        """Training runs continue from their checkpoint, benchmarks re-run (both detached), streaming."""
        stopped = ("interrupted", "failed", "cancelled")
        run_ids = self._job_ids(arch_ids, stopped, tables=("runs",))
        benches = [b for b in (self.snapshot.table("benchmarks") if self.snapshot else [])
                   if b.get("arch_id") in arch_ids and b.get("status") in stopped]
        if not run_ids and not benches:
            self.notify("nothing interrupted, failed or cancelled to resume", severity="warning")
            return
        for run_id in run_ids:
            self.call_in_worker("resume", self.services.resume, run_id, done=f"resumed {run_id}")
        streams = []
        for bench in benches:
            stream = self.streams.open(bench["arch_id"], bench.get("device") or LOCAL_DEVICE)
            stream.bench_id = bench["id"]
            streams.append(stream)
        if streams:
            self._run_streams(streams, [], resume=True)

    # ------------------------------------------------------------------ benchmarks
    def ask_bench(self, arch_ids: list[str]) -> None:
        from klmtui.screens.dialogs import BenchForm

        devices = [LOCAL_DEVICE] + [d["id"] for d in (self.snapshot.table("devices") if self.snapshot else []) if d["id"] != LOCAL_DEVICE]

        def answer(form: dict | None) -> None:
            if form:
                self.bench_defaults.update({"device": form["device"], **form["options"]})
                self.start_benchmarks(arch_ids, form.get("devices") or [form["device"]], form["options"])

        self.push_screen(BenchForm(arch_ids, devices, self.bench_defaults), answer)

    def start_benchmarks(self, arch_ids: list[str], devices: list[str] | str, options: dict) -> None:
        """Queue one benchmark per architecture over the device pool (as `klmtui bench --device ...`)."""
        devices = [devices] if isinstance(devices, str) else list(devices)
        streams = [self.streams.open(arch_id, ",".join(devices)) for arch_id in arch_ids]
        self._run_streams(streams, devices, options=options)

    def _run_streams(self, streams: list, devices: list[str], options: dict | None = None, resume: bool = False) -> None:
        """Benchmarks through remote.benchjobs (queued records, detached runners that outlive the app,
        one at a time per device, the devices in parallel), followed in a thread worker. Events come
        back as StreamEvent messages, then StreamEnded as each ends. Quitting stops following, not them."""
        stop = self._stop_following
        where = ", ".join(devices) if devices else "their devices"
        title = f"benchmark on {where}"

        def job() -> None:
            from textual.worker import get_current_worker

            worker = get_current_worker()
            stopped = lambda: stop.is_set() or worker.is_cancelled  # noqa: E731
            try:
                if resume:
                    offsets = {}
                    for stream in streams:
                        if stream.cancel.is_set():
                            self.post_message(StreamEnded(stream.key, None, "cancelled before it started"))
                            continue
                        offsets[stream.bench_id] = self.services.resume_benchmark(stream.bench_id)
                else:
                    ids = self.services.submit_benchmarks([s.arch_id for s in streams], devices, options or {})
                    for stream, bench_id in zip(streams, ids):
                        stream.bench_id = bench_id
                    offsets = {bench_id: 0 for bench_id in ids}
                keys = {s.bench_id: s.key for s in streams}
                cancels = {s.bench_id: s.cancel for s in streams}

                def ended(record: dict) -> None:
                    self.post_message(StreamEnded(keys[record["id"]], record, None))
                    self.post_message(ActionDone(f"benchmark {record['id']} ({record.get('arch_id')} on "
                                                 f"{record.get('device')}): {record.get('status')}", result=record))

                self.services.follow_benchmarks(offsets, lambda i, e: self.post_message(StreamEvent(keys[i], e)),
                                                ended, cancels, stopped)
            except KlmtuiError as exc:
                for stream in streams:
                    self.post_message(StreamEnded(stream.key, None, str(exc)))
                self.post_message(ActionFailed(title, str(exc)))
            except Exception as exc:  # an unexpected failure: report, keep running
                for stream in streams:
                    self.post_message(StreamEnded(stream.key, None, f"{type(exc).__name__}: {exc}"))
                self.post_message(ActionFailed(title, f"{type(exc).__name__}: {exc}"))
            self.reload_store()

        names = ", ".join(s.arch_id for s in streams[:3]) + (" ..." if len(streams) > 3 else "")
        self.notify(f"benchmarking {names} on {where}", timeout=3)
        self.run_worker(job, thread=True, group="bench", exit_on_error=False)

    def on_stream_ended(self, message: StreamEnded) -> None:
        stream = self.streams.get(message.key)
        if stream is not None:
            stream.finish(message.record, message.error)

    def on_stream_event(self, message: StreamEvent) -> None:
        stream = self.streams.get(message.key)
        if stream is not None:
            stream.feed(message.event)  # drawn by the details screen's 10 Hz timer

    # ------------------------------------------------------------------ devices
    def ask_add_device(self) -> None:
        from klmtui.screens.dialogs import DeviceForm

        def answer(fields: dict | None) -> None:
            if fields:
                self.call_in_worker("add device", self.services.add_device, fields, done=f"added {fields['name']}")

        self.push_screen(DeviceForm(), answer)

    def check_device(self, name: str) -> None:
        def checked(report: Any) -> None:
            self.post_message(DeviceChecked(name, report if isinstance(report, dict) else {"result": report}))

        self.call_in_worker("check", self.services.check_device, name, then=checked)

    def on_device_checked(self, message: DeviceChecked) -> None:
        for screen in self.screen_stack:
            if hasattr(screen, "show_report"):
                screen.show_report(message.device, message.report)

    def on_trust_required(self, message: TrustRequired) -> None:
        self.notify(message.message, title=f"{message.device}: unknown host key", severity="warning", timeout=6)
        self.ask_trust(message.device)

    def ask_trust(self, name: str) -> None:
        """Fetch the presented key (worker), show its fingerprint, record exactly that key on yes."""
        from klmtui.screens.dialogs import TrustDialog

        def fetched(answer: tuple) -> None:
            presented, prompt = answer
            if presented.status == "trusted":
                self.notify(f"{name}: host key {presented.fingerprint} is already trusted", timeout=5)
                return

            def decided(yes: bool | None) -> None:
                if yes:
                    self.call_in_worker("trust", self.services.record_host_key, presented,
                                        done=f"trusted {name} ({presented.fingerprint})")
                else:
                    self.notify(f"{name}: host key not trusted; nothing recorded", timeout=5)

            self.push_screen(TrustDialog(name, presented.fingerprint, prompt), decided)

        self.call_in_worker("host key", self.services.host_key, name, then=fetched)

    def remove_device(self, name: str) -> None:
        from klmtui.screens.dialogs import ConfirmDialog

        def answer(yes: bool | None) -> None:
            if yes:
                self.call_in_worker("remove device", self.services.remove_device, name, done=f"removed {name}")

        self.push_screen(ConfirmDialog("Remove device?", f"Remove {name} from the registry?"), answer)

    # ------------------------------------------------------------------ export
    def ask_export(self, source: str) -> None:
        from klmtui.screens.dialogs import ExportForm

        def answer(form: dict | None) -> None:
            if form:
                src = source
                self.call_in_worker("export", self.services.export, form["format"], src, form["path"], dialog=True,
                                    then=lambda path: self.notify(f"exported to {path}", timeout=5))

        default = str(self.services.store_path.parent / f"results-{source}.md")
        self.push_screen(ExportForm(source, default), answer)

    # ------------------------------------------------------------------ quitting
    async def action_quit(self) -> None:
        """Training runs and benchmarks are detached processes and keep going (a new session
        follows them again); only the following stops here."""
        self._stop_following.set()
        self.exit()


def run_app(store_path: Path) -> None:
    """`klmtui` with no command."""
    KlmtuiApp(store_path).run()
