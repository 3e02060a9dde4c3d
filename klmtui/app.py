"""The Textual app: screens, bindings, and the wiring between screens, workers and the store.

- The store is re-read once a second in a thread worker (skipped when the file is unchanged) into
  the reactive `snapshot`; screens watch it (`self.watch(self.app, "snapshot", ...)`). Jobs
  started by this app, an earlier session or the CLI all show up: the app re-attaches to whatever
  the store says is running.
- Screens post request messages (`klmtui.messages.Request`), handled here with `@on`.
- Each request runs its call into `klmtui.services` (core/remote) in a thread worker, which posts
  a specific result message (`RunsSubmitted`, `DeviceChecked`, ...). A worker that raises is
  handled in one place, `on_worker_state_changed`, by the exception's type (unknown host key ->
  the trust dialog; changed host key -> a man-in-the-middle warning; a user-facing error -> one
  line in the words of the TUI; anything else -> an error dialog with its type).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from textual import on
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.message_pump import MessagePump
from textual.reactive import reactive
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from core import prefs, settings
from core.errors import KlmtuiError
from core.safetext import visible
from core.schema import ACTIVE_STATUSES, LOCAL_DEVICE, RESUMABLE_STATUSES
from klmtui import messages as m
from klmtui.live import LiveStreams
from klmtui.services import Services, Snapshot, file_signature
from klmtui.wording import for_tui

STORE_POLL_S = 1.0
JOBS_REFRESH_S = 5.0


@dataclass(frozen=True)
class Job:
    """What a worker does, for its error: a title, the device or record it is about, how to show it."""

    title: str
    subject: str | None = None
    dialog: bool = False
    repeats: bool = False  # a periodic job: the same error is shown once, not every time


@dataclass(frozen=True)
class DeviceState:
    """The devices screen's status of one device: checking, checked (report) or failed (error)."""

    status: str  # "checking" | "checked" | "failed"
    report: dict | None = None
    error: str | None = None


class KlmtuiApp(App):
    """klmtui: the study's architectures, their training runs and device benchmarks."""

    CSS_PATH = Path(__file__).with_name("klmtui.tcss")  # absolute: subclasses elsewhere (bench/) find it too
    TITLE = "klmtui"
    BINDINGS = [
        Binding("p", "pareto", "Pareto", id="klmtui.pareto"),
        Binding("d", "devices", "Devices", show=False, id="klmtui.devices"),  # footer: what fits 80 columns
        Binding("i", "init_study", "Init", show=False, id="klmtui.init"),
        Binding("question_mark", "help", "Help", id="klmtui.help"),
        Binding("q", "quit", "Quit", show=False, id="klmtui.quit"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
    ]

    snapshot: reactive[Snapshot | None] = reactive(None, init=False)
    device_states: reactive[dict] = reactive(dict, init=False)  # device -> DeviceState

    def __init__(self, store_path: Path | str, *, poll_s: float = STORE_POLL_S, jobs_refresh_s: float | None = JOBS_REFRESH_S,
                 train_defaults: dict | None = None, bench_defaults: dict | None = None) -> None:
        super().__init__()
        self.services = Services(Path(store_path))
        self.streams = LiveStreams()
        self.poll_s = poll_s
        self.jobs_refresh_s = jobs_refresh_s
        # one set of defaults with the CLI (core.prefs), plus what this user chose last time
        self.train_defaults = {**prefs.defaults("train"), **(train_defaults or {})}
        self.bench_defaults = {**prefs.defaults("bench"), **(bench_defaults or {})}
        self._offered_init = False
        self._polls = 0
        self._jobs: dict[Worker, Job] = {}
        self._last_errors: dict[str, str] = {}
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
        """Remapped keys: `$KLMTUI_HOME/keys.json` = {"klmtui.train": "T", ...} (binding ids).
        No file: the default keys; an unreadable or malformed one: the default keys, and a warning."""
        path = settings.keys_file()
        try:
            keymap = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else f"not JSON ({exc})"
            self.notify(f"{path}: {why}; the default keys are used", severity="warning", timeout=8, markup=False)
            return
        if not isinstance(keymap, dict):
            self.notify(f"{path}: not a JSON object of binding id -> key; the default keys are used",
                        severity="warning", timeout=8, markup=False)
            return
        self.set_keymap({str(k): str(v) for k, v in keymap.items()})

    # ------------------------------------------------------------------ workers and their errors
    def run_job(self, job: Job, fn: Callable[[], Message | None], *, group: str | None = None,
                exclusive: bool = False, target: MessagePump | None = None) -> Worker:
        """Run `fn` in a thread; the message it returns is posted to `target` (a screen; default the
        app). Its exception goes to `_failed`: every worker of the app, screens' included, runs here."""
        to = target or self

        def work() -> None:
            result = fn()
            if result is not None:
                to.post_message(result)

        worker = self.run_worker(work, thread=True, group=group or job.title, exclusive=exclusive, exit_on_error=False,
                                 name=job.title)
        self._jobs[worker] = job
        return worker

    @staticmethod
    def _then(fn: Callable[[Any], Any], arg: Any, result: Message) -> Callable[[], Message]:
        """A job that calls `fn(arg)` and, when it returns, answers with `result`."""

        def job() -> Message:
            fn(arg)
            return result

        return job

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        job = self._jobs.get(event.worker)
        if job is None or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        del self._jobs[event.worker]
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self._failed(job, event.worker.error)
        elif event.state == WorkerState.SUCCESS:
            self._last_errors.pop(job.title, None)
            if not job.repeats:
                self.reload_store()

    def _failed(self, job: Job, exc: BaseException) -> None:
        """Every worker error, by type: what the user reads, and which status it changes."""
        from klmtui.screens.dialogs import ErrorDialog
        from remote.hostkeys import ChangedHostKey, UnknownHostKey

        if isinstance(exc, UnknownHostKey):
            self.notify(f"{exc.device}: unknown host key {exc.key_type} {exc.fingerprint}; nothing was run",
                        title="unknown host key", severity="warning", timeout=6, markup=False)
            self._set_device(exc.device, DeviceState("failed", error="unknown host key: trust it (t) to connect"))
            self.trust_device(exc.device)
            return
        if isinstance(exc, ChangedHostKey):
            self._set_device(exc.device, DeviceState("failed", error="HOST KEY CHANGED: refused"))
            self.push_screen(ErrorDialog(
                f"{exc.device}: host key changed",
                f"{exc.host_entry} now presents {exc.key_type} {exc.fingerprint}, but {exc.source} records "
                f"{exc.expected_fingerprint}. Someone could be intercepting the connection (man in the middle); "
                "nothing was run. If the device was really reinstalled, remove its old line from that file and "
                "trust it again (devices screen, t)."))
            return
        if isinstance(exc, KlmtuiError):
            text = visible(for_tui(str(exc)))
        else:  # a bug: say what it is, keep running
            text = visible(f"{type(exc).__name__}: {exc}")
        if job.title == "check" and job.subject:
            self._set_device(job.subject, DeviceState("failed", error=text))
        if job.repeats and self._last_errors.get(job.title) == text:
            return
        self._last_errors[job.title] = text
        if job.dialog or not isinstance(exc, KlmtuiError):
            self.push_screen(ErrorDialog(job.title if isinstance(exc, KlmtuiError) else f"{job.title}: unexpected error", text))
        else:
            self.notify(text, title=job.title, severity="error", timeout=8, markup=False)

    # ------------------------------------------------------------------ the store
    def reload_store(self) -> None:
        """Re-read the store in a worker unless its file is unchanged (its signature holds the
        revision tag every write renews: an equal signature is the same content)."""
        self._polls += 1
        current = self.snapshot
        self.run_job(Job("read the store", repeats=True), lambda: self._read_store(current),
                     group="store", exclusive=True)

    def _read_store(self, current: Snapshot | None) -> Message | None:
        if current is not None and file_signature(self.services.store_path) == current.signature:
            return None
        return m.StoreLoaded(self.services.snapshot())

    def refresh_jobs(self) -> None:
        """Runs and benchmarks whose process vanished become `interrupted` (a failure is shown once)."""
        if self.snapshot is None or self.snapshot.error or not (self.snapshot.table("runs") or self.snapshot.table("benchmarks")):
            return
        if any(j.title == "refresh" for j in self._jobs.values()):
            return
        self.run_job(Job("refresh", repeats=True), self._refresh)

    def _refresh(self) -> None:
        self.services.refresh_jobs()

    @on(m.StoreLoaded)
    def store_loaded(self, message: m.StoreLoaded) -> None:
        new = message.snapshot
        old = self.snapshot
        if old is not None and (old.tables, old.error) == (new.tables, new.error):
            self.set_reactive(KlmtuiApp.snapshot, new)  # same content: keep the newer signature, redraw nothing
            return
        self.snapshot = new
        if old is not None:
            self._announce_outcomes(old, new)
        if new.error and (old is None or old.error != new.error):
            self.notify(for_tui(new.error), title="Cannot read the store", severity="error", timeout=10, markup=False)
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
                              else f"latency {rec['latency_s']:.3g} s/batch" if rec.get("latency_s") is not None else "")
                    self.notify(f"{label} done {figure}", timeout=6)
                else:
                    reason = rec.get("error") or "no reason recorded"
                    said = "" if reason == status else f": {reason}"  # never "cancelled: cancelled"
                    self.notify(visible(f"{label} {status}{said}"), title=f"{what} {status}",
                                severity="error" if status == "failed" else "warning", timeout=10, markup=False)

    # ------------------------------------------------------------------ screens
    @on(m.OpenDetails)
    def open_details(self, message: m.OpenDetails) -> None:
        from klmtui.screens.details import DetailsScreen

        self.push_screen(DetailsScreen(message.arch_id))

    @on(m.OpenCompare)
    def open_compare(self, message: m.OpenCompare) -> None:
        from klmtui.screens.compare import CompareScreen

        refs = message.record_ids or message.arch_ids
        if len(refs) < 2:
            self.notify("select two or more rows (space), then press m to compare them", severity="warning", timeout=5)
            return
        self.push_screen(CompareScreen(refs))

    def action_pareto(self) -> None:
        from klmtui.screens.home import HomeScreen
        from klmtui.screens.pareto import ParetoScreen
        from klmtui.views import MEASURED

        home = next((s for s in self.screen_stack if isinstance(s, HomeScreen)), None)
        self.push_screen(ParetoScreen(home.source if home is not None else MEASURED))

    def action_devices(self) -> None:
        from klmtui.screens.devices import DevicesScreen

        self.push_screen(DevicesScreen())

    def action_report(self) -> None:
        from klmtui.screens.reproduction import ReproductionScreen

        self.push_screen(ReproductionScreen())

    def action_help(self) -> None:
        from klmtui.screens.dialogs import HelpScreen

        self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        from klmtui.screens.home import HomeScreen

        yield from super().get_system_commands(screen)
        yield SystemCommand("Pareto fronts", "N-objective front table and 2-objective scatter plots", self.action_pareto)
        yield SystemCommand("Devices", "Jetson devices: add, check, trust", self.action_devices)
        yield SystemCommand("Initialise the study", "Sampled architectures + the thesis' reference results", self.action_init_study)
        yield SystemCommand("Help", "Keys and what they do", self.action_help)
        yield SystemCommand("Reproduction report", "measured against thesis: deltas, tau, fronts", self.action_report)
        home = next((s for s in self.screen_stack if isinstance(s, HomeScreen)), None)
        if home is not None:
            for callback, title, text in home.commands():
                yield SystemCommand(title, text, callback)

    # ------------------------------------------------------------------ study
    def action_init_study(self) -> None:
        from klmtui.screens.dialogs import ConfirmDialog

        def answer(yes: bool | None) -> None:
            if yes:
                self.notify("initialising the study ...", timeout=3)
                self.run_job(Job("init", dialog=True), lambda: m.StudyInitialised(self.services.init_study()))

        if self.snapshot is not None and self.snapshot.error:
            self.notify(for_tui(self.snapshot.error), title="Cannot initialise", severity="error", timeout=10, markup=False)
            return
        self.push_screen(ConfirmDialog(
            "Initialise the study?",
            f"Store: {self.services.store_path}\n\nAdds the architectures sampled by the thesis' rules and the thesis' "
            "Appendix A as the reference source 'thesis'. Existing runs and results are kept.",
            ok="Initialise", cancel="Not now"), answer)

    @on(m.StudyInitialised)
    def study_initialised(self, message: m.StudyInitialised) -> None:
        self.notify(message.summary, timeout=6)

    # ------------------------------------------------------------------ training
    @on(m.TrainRequest)
    def ask_train(self, message: m.TrainRequest) -> None:
        from klmtui.screens.dialogs import TrainForm

        arch_ids = message.arch_ids

        def answer(form: dict | None) -> None:
            if form:
                self.train_defaults.update(form)
                prefs.remember("train", form)
                self.run_job(Job("train"), lambda: m.RunsSubmitted(self.services.train(arch_ids, form)))

        self.push_screen(TrainForm(arch_ids, self.train_defaults, self.services.check_data), answer)

    @on(m.RunsSubmitted)
    def runs_submitted(self, message: m.RunsSubmitted) -> None:
        self.notify(f"submitted {len(message.run_ids)} run(s): {' '.join(message.run_ids)}", timeout=5)

    def _job_ids(self, arch_ids: list[str], statuses: tuple[str, ...], tables=("runs", "benchmarks")) -> list[str]:
        snap = self.snapshot
        if snap is None:
            return []
        wanted = set(arch_ids)
        return [r["id"] for t in tables for r in snap.table(t) if r.get("arch_id") in wanted and r.get("status") in statuses]

    @on(m.CancelRequest)
    def cancel_jobs(self, message: m.CancelRequest) -> None:
        arch_ids = message.arch_ids
        streams = [s for s in self.streams.active() if s.arch_id in arch_ids]
        for stream in streams:
            stream.cancel.set()
        ids = [i for i in self._job_ids(arch_ids, ACTIVE_STATUSES)
               if not any(s.bench_id == i for s in streams)]
        if not ids and not streams:
            self.notify("nothing running to cancel", severity="warning")
            return
        for job_id in ids:
            self._cancel_job(job_id)
        if streams:
            self.notify(f"cancelling {len(streams)} benchmark(s)", timeout=3)

    @on(m.StreamCancelRequested)
    def cancel_stream(self, message: m.StreamCancelRequested) -> None:
        self._cancel_job(message.job_id)

    def _cancel_job(self, job_id: str) -> None:
        """Cancel one run or benchmark in a worker: JobCancelled, or its error by type in `_failed`
        (e.g. a benchmark that ended just before: "benchmark b-... is not running (status done)")."""
        self.run_job(Job("cancel", job_id), lambda: m.JobCancelled(job_id, self.services.cancel(job_id)),
                     group=f"cancel-{job_id}")

    @on(m.JobCancelled)
    def job_cancelled(self, message: m.JobCancelled) -> None:
        if message.warnings:
            self.notify(visible(" ".join(message.warnings)), severity="warning", timeout=8, markup=False)
        self.notify(f"cancelled {message.job_id}", timeout=4)

    @on(m.ResumeRequest)
    def resume_jobs(self, message: m.ResumeRequest) -> None:
        """Training runs continue from their checkpoint, benchmarks re-run (both detached), streaming."""
        arch_ids = message.arch_ids
        run_ids = self._job_ids(arch_ids, RESUMABLE_STATUSES, tables=("runs",))
        benches = [b for b in (self.snapshot.table("benchmarks") if self.snapshot else [])
                   if b.get("arch_id") in arch_ids and b.get("status") in RESUMABLE_STATUSES]
        if not run_ids and not benches:
            self.notify("nothing interrupted, failed or cancelled to resume", severity="warning")
            return
        for run_id in run_ids:
            self.run_job(Job("resume", run_id), self._then(self.services.resume, run_id, m.JobResumed(run_id)),
                         group=f"resume-{run_id}")
        streams = []
        for bench in benches:
            stream = self.streams.open(bench["arch_id"], bench.get("device") or LOCAL_DEVICE)
            stream.bench_id = bench["id"]
            streams.append(stream)
        if streams:
            self._run_streams(streams, [], resume=True)

    @on(m.JobResumed)
    def job_resumed(self, message: m.JobResumed) -> None:
        self.notify(f"resumed {message.job_id}", timeout=4)

    @on(m.DeleteRequest)
    def delete_records(self, message: m.DeleteRequest) -> None:
        from klmtui.screens.dialogs import ConfirmDialog

        ids = message.record_ids

        def answer(yes: bool | None) -> None:
            if yes:
                self.run_job(Job("delete"), lambda: m.RecordsDeleted(self.services.remove_records(ids)))

        self.push_screen(ConfirmDialog("Delete?", f"Delete {' '.join(ids)} and its run folder (metrics, log, "
                                       "checkpoints, events)? This cannot be undone.", ok="Delete", cancel="Keep"), answer)

    @on(m.RecordsDeleted)
    def records_deleted(self, message: m.RecordsDeleted) -> None:
        self.notify(f"deleted {' '.join(message.record_ids)}", timeout=4)

    # ------------------------------------------------------------------ benchmarks
    @on(m.BenchRequest)
    def ask_bench(self, message: m.BenchRequest) -> None:
        from klmtui.screens.dialogs import BenchForm

        arch_ids = message.arch_ids
        devices = [LOCAL_DEVICE] + [d["id"] for d in (self.snapshot.table("devices") if self.snapshot else []) if d["id"] != LOCAL_DEVICE]

        def answer(form: dict | None) -> None:
            if form:
                self.bench_defaults.update({"device": form["device"], **form["options"]})
                prefs.remember("bench", {"device": form["device"], **form["options"]})
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
        back as StreamEvent messages, then StreamEnded as each ends. Quitting stops following, not them.
        A failure ends every stream with its error, then goes to `_failed` like any worker's."""
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
                            self.post_message(m.StreamEnded(stream.key, None, "cancelled before it started"))
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
                    self.post_message(m.StreamEnded(keys[record["id"]], record, None))

                self.services.follow_benchmarks(offsets, lambda i, e: self.post_message(m.StreamEvent(keys[i], e)),
                                                ended, cancels, lambda i: self.post_message(m.StreamCancelRequested(i)),
                                                stopped)
            except Exception as exc:
                text = str(exc) if isinstance(exc, KlmtuiError) else f"{type(exc).__name__}: {exc}"
                for stream in streams:
                    self.post_message(m.StreamEnded(stream.key, None, text))
                raise  # shown by _failed, by its type

        names = ", ".join(s.arch_id for s in streams[:3]) + (" ..." if len(streams) > 3 else "")
        self.notify(f"benchmarking {names} on {where}", timeout=3)
        self.run_job(Job(title), job, group="bench")

    @on(m.StreamEnded)
    def stream_ended(self, message: m.StreamEnded) -> None:
        stream = self.streams.get(message.key)
        if stream is not None:
            stream.finish(message.record, message.error)

    @on(m.StreamEvent)
    def stream_event(self, message: m.StreamEvent) -> None:
        stream = self.streams.get(message.key)
        if stream is not None:
            stream.feed(message.event)  # drawn by the details screen's 10 Hz timer

    # ------------------------------------------------------------------ devices
    def _set_device(self, name: str, state: DeviceState) -> None:
        self.device_states = {**self.device_states, name: state}

    @on(m.AddDeviceRequest)
    def ask_add_device(self, message: m.AddDeviceRequest) -> None:
        from klmtui.screens.dialogs import DeviceForm

        def answer(fields: dict | None) -> None:
            if fields:
                self.run_job(Job("add device", fields["name"]),
                             self._then(self.services.add_device, fields, m.DeviceAdded(fields["name"])))

        self.push_screen(DeviceForm(), answer)

    @on(m.DeviceAdded)
    def device_added(self, message: m.DeviceAdded) -> None:
        self.notify(f"added {message.device}", timeout=4)

    @on(m.CheckDeviceRequest)
    def check_device(self, message: m.CheckDeviceRequest) -> None:
        name = message.device
        self._set_device(name, DeviceState("checking"))
        self.run_job(Job("check", name), lambda: m.DeviceChecked(name, self.services.check_device(name)),
                     group=f"check-{name}")

    @on(m.DeviceChecked)
    def device_checked(self, message: m.DeviceChecked) -> None:
        self._set_device(message.device, DeviceState("checked", report=message.report))

    @on(m.TrustDeviceRequest)
    def ask_trust(self, message: m.TrustDeviceRequest) -> None:
        self.trust_device(message.device)

    def trust_device(self, name: str) -> None:
        """Fetch the presented key (worker), show its fingerprint, record exactly that key on yes."""
        self.run_job(Job("host key", name), lambda: m.HostKeyPresented(name, *self.services.host_key(name)))

    @on(m.HostKeyPresented)
    def host_key_presented(self, message: m.HostKeyPresented) -> None:
        from klmtui.screens.dialogs import TrustDialog

        name, presented = message.device, message.presented
        if presented.status == "trusted":
            self.notify(f"{name}: host key {presented.fingerprint} is already trusted", timeout=5)
            return

        def decided(yes: bool | None) -> None:
            if yes:
                self.run_job(Job("trust", name), self._then(self.services.record_host_key, presented,
                                                            m.HostKeyRecorded(name, presented.fingerprint)))
            else:
                self.notify(f"{name}: host key not trusted; nothing recorded", timeout=5)

        self.push_screen(TrustDialog(name, presented.fingerprint, message.prompt), decided)

    @on(m.HostKeyRecorded)
    def host_key_recorded(self, message: m.HostKeyRecorded) -> None:
        self.notify(f"trusted {message.device} ({message.fingerprint})", timeout=5)

    @on(m.RemoveDeviceRequest)
    def remove_device(self, message: m.RemoveDeviceRequest) -> None:
        from klmtui.screens.dialogs import ConfirmDialog

        name = message.device

        def answer(yes: bool | None) -> None:
            if yes:
                self.run_job(Job("remove device", name), self._then(self.services.remove_device, name, m.DeviceRemoved(name)))

        self.push_screen(ConfirmDialog("Remove device?", f"Remove {name} from the registry?"), answer)

    @on(m.DeviceRemoved)
    def device_removed(self, message: m.DeviceRemoved) -> None:
        self.notify(f"removed {message.device}", timeout=4)

    # ------------------------------------------------------------------ export
    @on(m.ExportRequest)
    def ask_export(self, message: m.ExportRequest) -> None:
        from klmtui.screens.dialogs import ExportForm

        source = message.source

        def answer(form: dict | None) -> None:
            if form:
                self.run_job(Job("export", dialog=True),
                             lambda: m.Exported(self.services.export(form["format"], source, form["path"])))

        default = str(self.services.store_path.parent / f"results-{source}.md")
        self.push_screen(ExportForm(source, default), answer)

    @on(m.Exported)
    def exported(self, message: m.Exported) -> None:
        self.notify(f"exported to {message.path}", timeout=5)

    # ------------------------------------------------------------------ quitting
    async def action_quit(self) -> None:
        """Training runs and benchmarks are detached processes and keep going (a new session
        follows them again); only the following stops here."""
        self._stop_following.set()
        self.exit()


def run_app(store_path: Path) -> None:
    """`klmtui` with no command."""
    KlmtuiApp(store_path).run()
