"""`klmtui bench ARCH... --device NAME`: benchmark architectures on a device, live (design.md section 3).

Composition only: remote.bench does the work; this module turns its events into a live rich
display on stderr (when stderr is a terminal) and its records into the table / `--json` rows on
stdout. A benchmark that does not end `done` makes the command exit 1 with one line on stderr.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

import click

from core.errors import InputError, OperationFailed
from core.latency import PROTOCOLS, TIMINGS
from core.safetext import plain
from klmtui.cli.common import emit_json, pass_app, print_table, stderr_console

JSON_KEYS = ("id", "arch", "channels", "device", "latency_s", "latency_p90_s", "power_w", "energy_j", "status",
             "images_per_s", "weights", "protocol", "timing", "batch", "power_reason", "error")


class LiveView:
    """The running benchmark as a small rich panel, fed by remote.bench events."""

    def __init__(self, arch_id: str, device: str):
        self.arch_id, self.device = arch_id, device
        self.stage = "starting"
        self.info = ""
        self.latency: dict[str, list[float]] = {"latency": [], "power": []}
        self.batches = {"latency": 0, "power": 0}
        self.planned = None
        self.power_mw: list[int] = []
        self.last_power = None
        self.status = None

    def on_event(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "benchmark":
            self.info = f"{event.get('id')} · weights {event.get('weights')}"
        elif kind == "stage":
            self.stage = event.get("stage", "")
        elif kind == "hello":
            self.stage = "latency pass"
            proto = event.get("protocol") or {}
            if proto.get("protocol") == "thesis":
                self.planned = proto.get("runs", 0) * proto.get("batches", 0)
            env = event.get("environment") or {}
            self.info += f" · {event.get('device')} {env.get('gpu') or env.get('cpu') or ''} · timing {event.get('timing')}"
        elif kind == "latency":
            which = event.get("pass", "latency")
            self.batches[which] = self.batches.get(which, 0) + 1
            if which == "power":
                self.stage = "power pass"
            if not event.get("warmup"):
                self.latency.setdefault(which, []).append(event.get("seconds") or 0.0)
        elif kind == "power":
            self.last_power = event.get("board_power_mw")
            if event.get("in_window"):
                self.power_mw.append(self.last_power)
        elif kind == "summary":
            self.stage = "summary"
        elif kind == "finished":
            self.status = event.get("status")
            self.stage = event.get("status") or "finished"

    def __rich__(self):
        from rich.panel import Panel
        from rich.table import Table

        from core.latency import median

        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        grid.add_row("stage", plain(self.stage))
        lat = self.latency["latency"]
        done = self.batches["latency"]
        of = f"/{self.planned}" if self.planned else ""
        med = median(lat)
        grid.add_row("latency", f"{done}{of} batches · {len(lat)} kept · median "
                     + (f"{med:.4f} s/batch" if med is not None else "-"))
        if self.batches.get("power"):
            grid.add_row("power pass", f"{self.batches['power']} batches")
        if self.last_power is not None:
            mean = sum(self.power_mw) / len(self.power_mw) / 1000 if self.power_mw else None
            grid.add_row("board power", f"now {self.last_power / 1000:.2f} W · mean "
                         + (f"{mean:.2f} W over {len(self.power_mw)} samples" if mean is not None else "-"))
        return Panel(grid, title=plain(f"{self.arch_id} on {self.device}"), subtitle=plain(self.info, limit=200) if self.info else None)


def _row(record: dict) -> dict:
    out = {k: record.get(k) for k in JSON_KEYS}
    out["arch"] = record.get("arch")
    return out


@click.command("bench")
@click.argument("archs", nargs=-1, required=True, metavar="ARCH...")
@click.option("--device", "device", required=True, metavar="NAME", help="A registered device, or `local`.")
@click.option("--protocol", type=click.Choice(PROTOCOLS), default="thesis", show_default=True)
@click.option("--timing", type=click.Choice(TIMINGS), default="sync", show_default=True,
              help="sync: device time of the forward pass; thesis: host clock incl. image loading, no synchronize.")
@click.option("--batch", type=int, default=None, help="Images per batch (64).")
@click.option("--runs", type=int, default=None, help="thesis: runs (50).")
@click.option("--batches", type=int, default=None, help="thesis: batches per run (50).")
@click.option("--warmup-runs", type=int, default=None, help="thesis: runs discarded (20).")
@click.option("--warmup-batches", type=int, default=None, help="Batches discarded (thesis: per run, 5; adaptive: 20).")
@click.option("--min-batches", type=int, default=None, help="adaptive: floor on timed batches (30).")
@click.option("--max-batches", type=int, default=None, help="adaptive: ceiling on timed batches (2500).")
@click.option("--ci", "ci_rel", type=float, default=None, help="adaptive: CI half-width of the median (0.01).")
@click.option("--compute", type=click.Choice(("auto", "cpu", "cuda")), default=None, help="Where the agent runs the network.")
@click.option("--threads", type=int, default=None, help="torch CPU threads on the device.")
@click.option("--keep-none", is_flag=True, default=False, help="Time the genotype's `none` edges too (the thesis' code did).")
@click.option("--images", default=None, metavar="DIR", help="--timing thesis: an image folder on the device (default synthetic).")
@click.option("--no-power", is_flag=True, default=False, help="Skip the power pass.")
@click.option("--json", "as_json", is_flag=True, help="Print one summary object per benchmark as a JSON array.")
@click.option("--id", "bench_ids", multiple=True, hidden=True, metavar="b-...",
              help="Internal (the TUI): the benchmark id to record, one per ARCH, in order.")
@pass_app
def bench(app, archs, device, as_json, bench_ids, **options: Any) -> None:
    """Benchmark ARCH... (K-L-M@C) on a device: latency, then board power, streamed live.

    Weights: the checkpoint of the architecture's latest `done` training run, else its initial
    weights (marked `initial`). Inference leaves out the genotype's `none` edges (identical
    outputs, less work) unless --keep-none. Power is the mean board power during a separate
    pass with tegrastats running; without tegrastats it is reported as unavailable.
    """
    from remote.bench import check_new_id, device_record, parse_request, run_benchmark, split_options

    arch_ids = [parse_request(a).id for a in archs]  # bad input: exit 2 before anything runs
    options = {k: v for k, v in options.items() if v is not None and v is not False}  # 0 is a value
    split_options(options)
    store = app.store()
    device_record(store, device)
    if bench_ids and (len(bench_ids) != len(arch_ids) or len(set(bench_ids)) != len(bench_ids)):
        raise InputError(f"--id: give one distinct id per architecture ({len(arch_ids)}), got {len(bench_ids)}")
    for bench_id in bench_ids:
        check_new_id(store, bench_id)
    ids = list(bench_ids) or [None] * len(arch_ids)

    cancel = threading.Event()
    previous = _install_cancel_handlers(cancel)
    console = stderr_console()
    records = []
    try:
        for arch_id, bench_id in zip(arch_ids, ids):
            if cancel.is_set():
                break
            view = LiveView(arch_id, device)
            if console.is_terminal:
                from rich.live import Live

                with Live(view, console=console, refresh_per_second=4, transient=False):
                    record = run_benchmark(store, arch_id, device, options, on_event=view.on_event, cancel=cancel,
                                           bench_id=bench_id)
            else:  # scripts: stderr stays for the one-line error contract
                record = run_benchmark(store, arch_id, device, options, cancel=cancel, bench_id=bench_id)
            records.append(record)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    rows = [_row(r) for r in records]
    if as_json:
        emit_json(rows)
    else:
        print_table("benchmarks", ["id", "arch", "C", "device", "weights", "s/batch (median)", "p90", "img/s", "W",
                                   "J/img", "status"],
                    [[r["id"], r["arch"], r["channels"], r["device"], r["weights"], r["latency_s"], r["latency_p90_s"],
                      r["images_per_s"], r["power_w"], r["energy_j"], r["status"]] for r in rows])
        for r in rows:
            if r["status"] == "done" and r["power_w"] is None:
                console.print(plain(f"{r['id']}: power unavailable: {r['power_reason']}"), style="yellow")
    bad = [r for r in rows if r["status"] != "done"]
    if bad or len(records) < len(arch_ids):
        detail = "; ".join(f"{r['id']} ({r['arch']}@{r['channels']}) {r['status']}: {r['error']}" for r in bad)
        raise OperationFailed(detail or "benchmarks cancelled")


def _install_cancel_handlers(cancel: threading.Event) -> dict:
    """SIGTERM (`klmtui cancel b-...` as a last resort) and a first Ctrl-C cancel cleanly."""

    def handler(signum, frame):
        if cancel.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        cancel.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, handler)
    return previous


COMMANDS: list = [bench]
