"""Details of one architecture: its runs and benchmarks, training curves and log, benchmark
latency and power, live.

The table at the top lists every run and benchmark of the architecture: the highlighted run's
curves and log tail show on the left (`l`: its whole log, scrollable), the highlighted
benchmark on the right; `x` deletes the highlighted record (after a confirmation). Benchmarks
started from this app stream through `LiveStream`s (fed by StreamEvent messages); anything else
(a run or benchmark of another process) is read from its run folder once a second by a thread
worker. Drawing happens at most 10 times a second, from a timer. The store snapshot is the app's
reactive `snapshot`, watched.
"""

from __future__ import annotations

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Log, Sparkline, Static

from core.numbers import column_figure, figure
from core.safetext import plain, visible
from core.schema import BENCHMARKS, RUNNING, RUNS
from klmtui import messages as m
from klmtui.live import LiveStream
from klmtui.messages import RunSeries
from klmtui.views import latest
from klmtui.widgets.plot import Figure, PlotView, Series

FRAME_S = 0.1  # redraw live panels at most 10 times a second
POLL_S = 1.0  # re-read run folders of jobs in other processes


def curves(metrics: list[dict]) -> Figure:
    """Loss and accuracy per epoch from a run's metrics rows."""
    xs = [float(m.get("epoch", i + 1)) for i, m in enumerate(metrics)]

    def series(label: str, *keys: str) -> Series:
        pts = [(x, m[k]) for x, m in zip(xs, metrics) for k in keys[:1] if m.get(k) is not None]
        if not pts:
            for key in keys[1:]:
                pts = [(x, m[key]) for x, m in zip(xs, metrics) if m.get(key) is not None]
                if pts:
                    break
        return Series(label, [p[0] for p in pts], [float(p[1]) for p in pts])

    loss = series("loss (right)", "train_loss", "loss")
    loss.right = True
    return Figure(
        "accuracy (%) and loss per epoch",
        [
            loss,
            series("train acc", "train_acc", "train_accuracy"),
            series("test acc", "test_acc", "test_accuracy", "accuracy"),
        ],
    )


class DetailsScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("b", "bench", "Bench", id="klmtui.details.bench"),
        Binding("t", "train", "Train", id="klmtui.details.train"),
        Binding("c", "cancel", "Cancel", id="klmtui.details.cancel"),
        Binding("r", "resume", "Resume", id="klmtui.details.resume"),
        Binding("l", "full_log", "Log", id="klmtui.details.log"),
        Binding("x", "delete", "Delete", id="klmtui.details.delete"),
        Binding("p", "app.pareto", "Pareto", show=False),  # the footer fits 80 columns
    ]

    def __init__(self, arch_id: str) -> None:
        super().__init__()
        self.arch_id = arch_id
        self._run_id: str | None = None
        self._metrics_len = -1
        self._bench_drawn: tuple | None = None
        self._external: LiveStream | None = None
        self._picked: dict[str, str] = {}  # table -> the record id the user highlighted
        self._records_shown: list | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="arch-summary")
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="details-body"):
            with Vertical(id="training-pane", classes="pane"):
                yield Static("[b]Training[/]", id="training-title")
                yield Static("", id="training-progress")
                yield PlotView(id="curves")
                yield Log(id="log", max_lines=200)
            with Vertical(id="bench-pane", classes="pane"):
                yield Static("[b]Benchmark[/]", id="bench-title")
                yield Static("latency per batch (ms)", classes="caption")
                yield Sparkline([], id="latency-spark")
                yield Static("board power (W)", classes="caption")
                yield Sparkline([], id="power-spark")
                yield Static("", id="bench-stats")
                yield Static("", id="bench-env")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = self.arch_id
        table = self.query_one("#runs-table", DataTable)
        table.add_columns("id", "kind", "status", "seed/device", "epochs", "acc %", "s/batch", "error")
        table.focus()
        self.watch(self.app, "snapshot", self.show_snapshot)
        self.set_interval(FRAME_S, self.draw_live)
        self.set_interval(POLL_S, self.poll_folders)
        self.poll_folders()

    # ------------------------------------------------------------------ store snapshot
    def _records(self, table: str) -> list[dict]:
        snapshot = self.app.snapshot
        return [] if snapshot is None else [r for r in snapshot.table(table) if r.get("arch_id") == self.arch_id]

    def show_snapshot(self, snapshot) -> None:
        if snapshot is None:
            return
        runs = self._records(RUNS)
        arch = next((a for a in snapshot.table("architectures") if a["id"] == self.arch_id), {})
        self.query_one("#arch-summary", Static).update(
            f"[b]{self.arch_id}[/]  params {figure((arch.get('params') or 0) / 1e6, 3)} M  "
            f"MACs {column_figure('macs_m', (arch.get('macs') or 0) / 1e6)} M  genotype {arch.get('genotype', '-')}  "
            "[dim](↑↓ pick a run or benchmark  l full log  x delete)[/]")
        self._fill_records(runs, self._records(BENCHMARKS))
        run = self._run()
        self._run_id = run["id"] if run else None
        title = "[b]Training[/]" + (f"  {run['id']}  {run.get('status')}" if run else "  (no runs yet: press t)")
        self.query_one("#training-title", Static).update(title)
        if run is not None and run.get("status") != RUNNING:
            self.query_one("#training-progress", Static).update(self._final_line(run))

    def _run(self) -> dict | None:
        """The run the user picked in the table, else the running one, else the latest."""
        runs = self._records(RUNS)
        picked = next((r for r in runs if r["id"] == self._picked.get(RUNS)), None)
        running = [r for r in runs if r.get("status") == RUNNING]
        return picked or (running[0] if running else latest(runs))

    def _bench(self) -> dict | None:
        benches = self._records(BENCHMARKS)
        return next((b for b in benches if b["id"] == self._picked.get(BENCHMARKS)), None) or latest(benches)

    @staticmethod
    def _final_line(run: dict) -> str:
        """A run that is not running: where it stopped, and why (never a stale `eta`)."""
        line = f"{run.get('status')} at epoch {run.get('epoch') or 0}/{run.get('epochs') or '?'}"
        if run.get("accuracy") is not None:
            line += f"  test {run['accuracy']:.2f}%"
        if run.get("error") and run["error"] != run.get("status"):  # never "cancelled: cancelled"
            line += f"  [red]{escape(visible(run['error']))}[/]"
        return line

    def _fill_records(self, runs: list[dict], benches: list[dict]) -> None:
        rows = []
        for table, records in ((RUNS, runs), (BENCHMARKS, benches)):
            for r in sorted(records, key=lambda r: (r.get("created") or "", r["id"])):
                train = table == RUNS
                rows.append((r["id"], "train" if train else "bench", r.get("status") or "-",
                             f"seed {r.get('seed')}" if train else plain(r.get("device") or "-"),
                             f"{r.get('epoch') or 0}/{r.get('epochs') or '?'}" if train else "-",
                             figure(r.get("accuracy"), 2) if train else "-",
                             "-" if train else figure(r.get("latency_s")),
                             "" if r.get("error") == r.get("status") else plain(r.get("error") or "", limit=60)))  # a DataTable str cell is markup
        if rows == self._records_shown:
            return
        self._records_shown = rows
        table = self.query_one("#runs-table", DataTable)
        current = self._current_record()
        table.clear()
        for row in rows:
            table.add_row(*row, key=row[0])
        ids = [r[0] for r in rows]
        if current in ids:
            table.move_cursor(row=ids.index(current), animate=False)

    def _current_record(self) -> str | None:
        table = self.query_one("#runs-table", DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        record_id = event.row_key.value if event.row_key is not None else None
        if not record_id:
            return
        table = RUNS if record_id.startswith("t-") else BENCHMARKS
        if self._picked.get(table) == record_id:
            return
        self._picked[table] = record_id
        if table == RUNS:
            self._metrics_len = -1
            self.show_snapshot(self.app.snapshot)
            self.poll_folders()
        else:
            self._bench_drawn = None
            self.poll_folders()

    # ------------------------------------------------------------------ polling run folders
    def _live(self) -> LiveStream | None:
        """This app's stream of the architecture, unless the user picked another benchmark."""
        stream = self.app.streams.for_arch(self.arch_id)
        picked = self._picked.get(BENCHMARKS)
        if stream is None or (picked and stream.bench_id and stream.bench_id != picked):
            return None
        return stream

    def poll_folders(self) -> None:
        if self._run_id:
            self._read_run(self._run_id)
        if self._live() is None:
            bench = self._bench()
            if bench is not None and (self._external is None or self._external.active or self._external.bench_id != bench["id"]):
                self._read_bench(bench)

    def _read_run(self, run_id: str) -> None:
        from klmtui.app import Job

        def read() -> RunSeries:
            return RunSeries(run_id, *self.app.services.run_series(run_id))

        self.app.run_job(Job("read the run folder", run_id, repeats=True), read, group="details-run", exclusive=True,
                         target=self)

    def _read_bench(self, bench: dict) -> None:
        from klmtui.app import Job

        self.app.run_job(Job("read the benchmark folder", bench["id"], repeats=True), lambda: self._fold_bench(bench),
                         group="details-bench", exclusive=True)

    def _fold_bench(self, bench: dict) -> None:
        """In a worker: the benchmark's events folded into a stream the panel draws."""
        events = self.app.services.bench_events(bench["id"])
        stream = LiveStream(key=bench["id"], arch_id=self.arch_id, device=bench.get("device") or "?", bench_id=bench["id"])
        for event in events:
            stream.feed(event)
        stream.status = bench.get("status") or stream.status
        stream.summary = {**(stream.summary or {}), **bench} if bench.get("status") == "done" else stream.summary
        stream.error = stream.error or bench.get("error")
        self.app.call_from_thread(self._set_external, stream)

    def _set_external(self, stream: LiveStream) -> None:
        self._external = stream

    def on_run_series(self, message: RunSeries) -> None:
        if message.run_id != self._run_id:
            return
        if len(message.metrics) != self._metrics_len:
            self._metrics_len = len(message.metrics)
            self.query_one("#curves", PlotView).plot(curves(message.metrics))
        log = self.query_one("#log", Log)
        log.clear()
        log.write_lines(message.log)
        run = self._run()
        if run is None or run.get("status") != RUNNING:
            return  # its status line is the record's (show_snapshot): no stale epoch/eta of a failed run
        p = message.progress
        line = f"{run.get('status')}"
        if p.get("epoch") is not None:
            line = f"running  epoch {p.get('epoch')}/{p.get('epochs', '?')}"
            if p.get("batch") and p.get("batches"):
                line += f"  batch {p['batch']}/{p['batches']}"
            if p.get("loss") is not None:
                line += f"  loss {p['loss']:.3f}"
            if p.get("train_acc") is not None:
                line += f"  train {p['train_acc']:.1f}%"
            if p.get("test_acc") is not None:
                line += f"  test {p['test_acc']:.2f}%"
            if p.get("images_per_s"):
                line += f"  {p['images_per_s']:.0f} img/s"
            if p.get("eta_s") is not None:
                line += f"  eta {p['eta_s'] / 60:.1f} min"
        self.query_one("#training-progress", Static).update(line)

    # ------------------------------------------------------------------ live drawing (<= 10 Hz)
    def draw_live(self) -> None:
        stream = self._live() or self._external
        if stream is None:
            self.query_one("#bench-stats", Static).update("no benchmark yet: press b")
            return
        key = (stream.key, stream.events, stream.status)
        if key == self._bench_drawn and not stream.dirty:
            return
        self._bench_drawn = key
        stream.dirty = False
        self.query_one("#latency-spark", Sparkline).data = [s * 1000.0 for s in stream.latencies[-240:]]
        self.query_one("#power-spark", Sparkline).data = stream.power_w[-240:]
        stats = stream.stats()
        phase = f"{escape(stream.progress)}  " if stream.active else ""  # x/N batches, pass, ETA
        lines = [f"[b]{stream.device}[/]  {stream.bench_id or ''}  [b]{stream.status}[/]  {phase}"
                 f"timed {stats['n']} batches (+{stream.warmup} warm-up/power-pass)"]
        if stats["median_s"] is not None:
            ci = ""
            if stats["ci_low_s"] is not None:
                ci = f"  95% CI [{stats['ci_low_s'] * 1000:.2f}, {stats['ci_high_s'] * 1000:.2f}] ms"
            lines.append(f"latency median {stats['median_s'] * 1000:.2f} ms/batch{ci}  p90 {stats['p90_s'] * 1000:.2f} ms")
        if stream.power_w:
            lines.append(f"power now {stream.power_w[-1]:.2f} W  mean of all samples {sum(stream.power_w) / len(stream.power_w):.2f} W  "
                         f"({len(stream.power_w)} samples)")
        if stream.summary and not stream.active:
            s = stream.summary
            lines.append(
                f"[b green]summary[/]  latency {column_figure('latency_s', s.get('latency_s'))} s/batch  "
                f"p90 {column_figure('latency_p90_s', s.get('latency_p90_s'))} s/batch  "
                f"{figure(s.get('images_per_s'))} img/s  power {column_figure('power_w', s.get('power_w'))} W  "
                f"energy {column_figure('energy_mj', None if s.get('energy_j') is None else s['energy_j'] * 1000)} mJ/img  "
                f"weights {s.get('weights', '-')}"
            )
            if s.get("power_w") is None and s.get("power_reason"):
                lines.append(f"[yellow]power unavailable:[/] {escape(visible(s['power_reason']))}")
            rails = s.get("power_rails_w") or {}
            if isinstance(rails, dict) and rails:  # every rail the board reported (issue 9)
                chosen = escape(visible(str(s.get("power_rail") or "input")))
                lines.append(f"rails (power = {chosen}, {escape(visible(str(s.get('power_source') or '-')))}): "
                             + "  ".join(f"{escape(visible(str(name)))} {column_figure('power_w', w)} W"
                                         for name, w in sorted(rails.items())))
        for warning in self._warnings(stream.bench_id):
            lines.append(f"[b yellow]warning:[/] {escape(visible(warning))}")
        if stream.error:
            lines.append(f"[b red]error:[/] {escape(visible(stream.error))}")
        self.query_one("#bench-stats", Static).update("\n".join(lines))
        env = stream.environment
        if env:
            shown = ", ".join(f"{k}={v}" for k, v in list(env.items())[:12] if not isinstance(v, (dict, list)))
            self.query_one("#bench-env", Static).update(f"[dim]{escape(visible(shown, limit=2000))}[/]")

    def _warnings(self, bench_id: str | None) -> list[str]:
        """The record's warnings (e.g. a local benchmark timed while the machine was busy)."""
        record = next((b for b in self._records(BENCHMARKS) if b["id"] == bench_id), None) if bench_id else None
        return list((record or {}).get("warnings") or [])

    # ------------------------------------------------------------------ actions
    def action_bench(self) -> None:
        self.post_message(m.BenchRequest([self.arch_id]))

    def action_train(self) -> None:
        self.post_message(m.TrainRequest([self.arch_id]))

    def action_cancel(self) -> None:
        self.post_message(m.CancelRequest([self.arch_id]))

    def action_resume(self) -> None:
        self.post_message(m.ResumeRequest([self.arch_id]))

    def action_full_log(self) -> None:
        """The whole log of the highlighted run or benchmark, scrollable, lines unwrapped."""
        from klmtui.screens.dialogs import LogScreen

        record_id = self._current_record() or self._run_id
        if record_id is None:
            self.notify("no run or benchmark yet", severity="warning")
            return
        self.app.push_screen(LogScreen(record_id))

    def action_delete(self) -> None:
        record_id = self._current_record()
        if record_id is None:
            self.notify("no run or benchmark to delete", severity="warning")
            return
        self.post_message(m.DeleteRequest([record_id]))
