"""Details of one architecture: training curves and log tail; benchmark latency and power, live.

Benchmarks started from this app stream through `LiveStream`s (fed by StreamEvent messages);
anything else (a run or benchmark of another process) is read from its run folder once a
second by a thread worker. Drawing happens at most 10 times a second, from a timer.
"""

from __future__ import annotations

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Log, Sparkline, Static

from core.safetext import visible
from klmtui.live import LiveStream
from klmtui.messages import RunSeries
from klmtui.views import fmt, latest
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
    ]

    def __init__(self, arch_id: str) -> None:
        super().__init__()
        self.arch_id = arch_id
        self._run_id: str | None = None
        self._metrics_len = -1
        self._bench_drawn: tuple | None = None
        self._external: LiveStream | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="arch-summary")
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
        self.show_snapshot(self.app.snapshot)
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
        runs = self._records("runs")
        arch = next((a for a in snapshot.table("architectures") if a["id"] == self.arch_id), {})
        lines = [f"[b]{self.arch_id}[/]  params {fmt((arch.get('params') or 0) / 1e6, '.3f')} M  "
                 f"MACs {fmt((arch.get('macs') or 0) / 1e6, '.1f')} M  genotype {arch.get('genotype', '-')}"]
        for r in sorted(runs, key=lambda r: r.get("created") or "")[-4:]:
            lines.append(
                f"  run {r['id']}  seed {r.get('seed')}  {r.get('profile')}  "
                f"epoch {r.get('epoch') or 0}/{r.get('epochs') or '?'}  [b]{r.get('status')}[/]  "
                f"acc {fmt(r.get('accuracy'), '.2f')}  {r.get('executor') or ''}"
                + (f"  [red]{escape(visible(r.get('error')))}[/]" if r.get("error") else "")
            )
        self.query_one("#arch-summary", Static).update("\n".join(lines))
        running = [r for r in runs if r.get("status") == "running"]
        run = running[0] if running else latest(runs)
        self._run_id = run["id"] if run else None
        title = "[b]Training[/]" + (f"  {run['id']}  {run.get('status')}" if run else "  (no runs yet: press t)")
        self.query_one("#training-title", Static).update(title)

    # ------------------------------------------------------------------ polling run folders
    def poll_folders(self) -> None:
        if self._run_id:
            self._read_run(self._run_id)
        stream = self.app.streams.for_arch(self.arch_id)
        if stream is None:
            benches = self._records("benchmarks")
            bench = latest(benches)
            if bench is not None and (self._external is None or self._external.active or self._external.bench_id != bench["id"]):
                self._read_bench(bench)

    @work(thread=True, exclusive=True, group="details-run")
    def _read_run(self, run_id: str) -> None:
        try:
            metrics, log, progress = self.app.services.run_series(run_id)
        except Exception:  # the folder may not exist yet: nothing to show
            return
        self.post_message(RunSeries(run_id, metrics, log, progress))

    @work(thread=True, exclusive=True, group="details-bench")
    def _read_bench(self, bench: dict) -> None:
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
        p = message.progress
        line = ""
        if p.get("epoch") is not None:
            line = f"epoch {p.get('epoch')}/{p.get('epochs', '?')}"
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
        stream = self.app.streams.for_arch(self.arch_id) or self._external
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
        phase = f"{stream.phase} pass  " if stream.active and stream.phase else ""
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
                f"[b green]summary[/]  latency {fmt(s.get('latency_s'), '.4f')} s/batch  p90 {fmt(s.get('latency_p90_s'), '.4f')}  "
                f"{fmt(s.get('images_per_s'), '.0f')} img/s  power {fmt(s.get('power_w'), '.2f')} W  "
                f"energy {fmt(None if s.get('energy_j') is None else s['energy_j'] * 1000, '.3f')} mJ/img  "
                f"weights {s.get('weights', '-')}"
            )
            if s.get("power_w") is None and s.get("power_reason"):
                lines.append(f"[yellow]power unavailable:[/] {escape(visible(s['power_reason']))}")
        if stream.error:
            lines.append(f"[b red]error:[/] {escape(visible(stream.error))}")
        self.query_one("#bench-stats", Static).update("\n".join(lines))
        env = stream.environment
        if env:
            shown = ", ".join(f"{k}={v}" for k, v in list(env.items())[:12] if not isinstance(v, (dict, list)))
            self.query_one("#bench-env", Static).update(f"[dim]{escape(visible(shown, limit=2000))}[/]")

    # ------------------------------------------------------------------ actions
    def action_bench(self) -> None:
        self.app.ask_bench([self.arch_id])

    def action_train(self) -> None:
        self.app.ask_train([self.arch_id])

    def action_cancel(self) -> None:
        self.app.cancel_jobs([self.arch_id])

    def action_resume(self) -> None:
        self.app.resume_jobs([self.arch_id])
