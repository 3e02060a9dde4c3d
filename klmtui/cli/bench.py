"""`klmtui bench ARCH... --device A [--device B ...]`: benchmark architectures over devices, live.

Composition only: remote.benchjobs queues one benchmark per architecture over the device pool
(one at a time per device, the devices in parallel, each taking the next queued architecture
when it is free) and runs each in a detached runner; this module follows their events (the one
schema, folded by remote.benchevents.BenchState, as the TUI does) into a live rich table on stderr
(when stderr is a terminal: `x/N batches, pass, ETA` per benchmark) and prints the records as the
table / `--json` rows on stdout. `--detach` returns at once (the queue outlives the command).
A benchmark that does not end `done` makes the command exit 1 with one line on stderr.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

import click

from core.errors import OperationFailed
from core.latency import PROTOCOLS, TIMINGS
from core.safetext import plain
from klmtui.cli.common import emit_json, pass_app, print_table, stderr_console

JSON_KEYS = ("id", "arch", "channels", "device", "started", "finished", "latency_s", "latency_p90_s", "power_w", "energy_j", "status",
             "images_per_s", "weights", "protocol", "timing", "batch", "power_reason", "error",
             "batches_timed", "seconds_timed", "stop_reason", "power_timed",
             "power_rails_w", "power_rail", "power_source", "power_pass", "energy_j_ci", "power_overhead_pct",
             "like_thesis", "clocks")


class LiveView:
    """Every benchmark of this command, one row each, folded from its events by BenchState."""

    def __init__(self, records: list[dict]):
        from remote.benchevents import BenchState

        self.states = {r["id"]: BenchState(r["id"], r.get("arch_id"), r.get("device")) for r in records}

    def on_event(self, bench_id: str, event: dict) -> None:
        self.states[bench_id].feed(event)

    def __rich__(self):
        from rich.table import Table

        table = Table(box=None, padding=(0, 2), header_style="bold")
        for column in ("id", "arch", "device", "progress", "median s/batch", "power W"):
            table.add_column(column)
        for bench_id, state in self.states.items():
            med = state.latency_median()
            power = state.power_w[-1] if state.power_w else None
            table.add_row(bench_id, plain(state.arch or ""), plain(state.device or "-"),
                          plain(state.progress_text() if state.status == "running" else (state.status or "")),
                          f"{med:.4f}" if med is not None else "-", f"{power:.2f}" if power is not None else "-")
        return table


def _row(record: dict) -> dict:
    out = {k: record.get(k) for k in JSON_KEYS}
    out["arch"] = record.get("arch")
    return out


@click.command("bench")
@click.argument("archs", nargs=-1, required=True, metavar="ARCH...")
@click.option("--device", "devices", multiple=True, required=True, metavar="NAME",
              help="A registered device, or `local`; repeat it to spread the architectures over several.")
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
@click.option("--min-seconds", type=float, default=None,
              help="adaptive: minimum timed duration, restarted by a drift (20).")
@click.option("--compute", type=click.Choice(("auto", "cpu", "cuda")), default=None, help="Where the agent runs the network.")
@click.option("--threads", type=int, default=None, help="torch CPU threads on the device.")
@click.option("--keep-none", is_flag=True, default=False, help="Time the genotype's `none` edges too (the thesis' code did).")
@click.option("--images", default=None, metavar="DIR", help="--timing thesis: an image folder on the device (default synthetic).")
@click.option("--no-power", is_flag=True, default=False, help="Skip the power pass.")
@click.option("--power-rail", default=None, metavar="RAIL",
              help="What power_w is: input (the board's input rail, default), gpu, cpu, sum, or a rail name "
                   "(the thesis logged POM_5V_GPU: gpu).")
@click.option("--power-source", type=click.Choice(("auto", "sysfs", "tegrastats")), default=None,
              help="auto (default): the INA monitors in sysfs where the board exposes them, else tegrastats.")
@click.option("--power-pass", type=click.Choice(("auto", "same", "separate")), default=None,
              help="same: latency and power in one pass (overhead measured); separate: the thesis' two passes; "
                   "auto: same with sysfs.")
@click.option("--like-thesis", is_flag=True, default=False,
              help="Measure what the thesis' script measured: edge_all genotype with `none` edges, cudnn.benchmark, "
                   "a DataLoader over real images, the whole loop body, GPU rail.")
@click.option("--lock-clocks", is_flag=True, default=False,
              help="sudo -n jetson_clocks for the benchmark, previous clocks restored afterwards.")
@click.option("--heartbeat-timeout", type=float, default=None, metavar="S",
              help="The agent stops itself after S seconds without the host's heartbeat (30).")
@click.option("--detach", is_flag=True, help="Queue the benchmarks and return at once (print their ids).")
@click.option("--json", "as_json", is_flag=True, help="Print one summary object per benchmark as a JSON array.")
@pass_app
def bench(app, archs, devices, as_json, detach, **options: Any) -> None:
    """Benchmark ARCH... (K-L-M@C) on one or more devices: latency, then board power, streamed live.

    Each architecture is one queued benchmark; every --device runs one at a time and takes the
    next queued architecture when it is free. Ctrl-C cancels the benchmarks of this command;
    closing the terminal leaves them running (`klmtui status`, `klmtui cancel b-...`).

    Weights: the checkpoint of the architecture's latest `done` training run, else its initial
    weights (marked `initial`). Inference leaves out the genotype's `none` edges (identical
    outputs, less work) unless --keep-none. Power is the mean of --power-rail (default: the
    board's input rail) from the INA monitors in sysfs (same pass) or tegrastats (a separate
    pass); every rail is recorded (power_rails_w) and energy per image is integrated per batch.
    Without a power source it is reported as unavailable.
    """
    from remote import benchjobs
    from remote.bench import parse_request

    arch_ids = [parse_request(a).id for a in archs]  # bad input: exit 2 before anything runs
    options = {k: v for k, v in options.items() if v is not None and v is not False}  # 0 is a value
    store = app.store()
    ids = benchjobs.submit(store, arch_ids, devices, options)  # validates all of it, then queues
    if detach:
        records = [store.get("benchmarks", i) for i in ids]
        if as_json:
            emit_json([_row(r) for r in records])
        else:
            for r in records:
                click.echo(f"{r['id']}: {r['arch_id']} {r['status']}" + (f" on {r['device']}" if r.get("device") else ""))
        return
    _print_estimate(store, ids, devices, options)
    records = follow_live(store, ids)
    console = stderr_console()
    rows = [_row(r) for r in records]
    if as_json:
        emit_json(rows)
    else:
        print_table("benchmarks", ["id", "arch", "C", "device", "weights", "s/batch (median)", "p90", "img/s", "W",
                                   "mJ/img", "status"],
                    [[r["id"], r["arch"], r["channels"], r["device"], r["weights"], r["latency_s"], r["latency_p90_s"],
                      r["images_per_s"], r["power_w"], None if r["energy_j"] is None else r["energy_j"] * 1000,
                      r["status"]] for r in rows])
        for r in rows:
            if r["status"] == "done" and r["power_w"] is None:
                console.print(plain(f"{r['id']}: power unavailable: {r['power_reason']}"), style="yellow")
        for rec in records:  # other work on the machine was timed too (remote.busy)
            for warning in (rec or {}).get("warnings") or []:
                console.print(plain(f"{rec['id']}: warning: {warning}"), style="yellow")
    bad = [r for r in rows if r["status"] != "done"]
    if bad:
        detail = "; ".join(f"{r['id']} ({r['arch']}@{r['channels']}) {r['status']}: {r['error']}" for r in bad)
        raise OperationFailed(detail or "benchmarks cancelled")


def _print_estimate(store, ids: list[str], devices, options: dict) -> None:
    """On a terminal: the predicted device time of these benchmarks (core.planning), before they start."""
    console = stderr_console()
    if not console.is_terminal:
        return  # scripts: stderr stays for the one-line error contract
    from core.latency import FIELDS, Protocol
    from core.planning import predicted_benchmark_seconds

    try:
        protocol = Protocol(**{k: v for k, v in options.items() if k in FIELDS})
        total = 0.0
        for bench_id in ids:
            record = store.get("benchmarks", bench_id) or {}
            seconds = predicted_benchmark_seconds(store, record.get("arch_id"), record.get("device") or devices[0],
                                                  protocol, power_pass=not options.get("no_power"))
            if seconds is None:
                return
            total += seconds
    except Exception:  # an estimate must never stop a benchmark
        return
    console.print(f"predicted device time: {total / 60:.1f} min for {len(ids)} benchmark(s) "
                  f"({protocol.protocol} protocol; `klmtui plan` explains the prediction)", style="dim")


def follow_live(store, ids: list[str]) -> list[dict]:
    """Follow benchmarks to their end (a live table on a terminal stderr); their final records.
    A first Ctrl-C (or SIGTERM) cancels them, a second one stops waiting."""
    from remote import benchjobs

    cancel = threading.Event()
    previous = _install_cancel_handlers(cancel)
    console = stderr_console()
    view = LiveView([store.get("benchmarks", i) for i in ids])
    cancelling: list[threading.Thread] = []

    def stop() -> bool:
        if cancel.is_set() and not cancelling:
            for bench_id in ids:
                thread = threading.Thread(target=_cancel_one, args=(store, bench_id), daemon=True)
                thread.start()
                cancelling.append(thread)
        return False

    try:
        if console.is_terminal:
            from rich.live import Live

            with Live(view, console=console, refresh_per_second=4, transient=False):
                records = benchjobs.follow(store, ids, view.on_event, stop=stop)
        else:  # scripts: stderr stays for the one-line error contract
            records = benchjobs.follow(store, ids, view.on_event, stop=stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return records or []


def _cancel_one(store, bench_id: str) -> None:
    """Cancel one followed benchmark (in a thread of its own). By type: an InputError is one that
    ended meanwhile (its final record is reported by the follower anyway); a failure to stop it is
    said on stderr as a warning (following goes on until it ends)."""
    from core.errors import InputError, KlmtuiError
    from remote import benchjobs

    try:
        benchjobs.cancel(store, bench_id)
    except InputError:
        return  # "not running (status done)": it ended before the cancel reached it
    except KlmtuiError as exc:
        click.echo(plain(f"klmtui: {bench_id}: warning: not cancelled: {exc}"), err=True)


def _install_cancel_handlers(cancel: threading.Event) -> dict:
    """SIGTERM and a first Ctrl-C cancel cleanly; a second Ctrl-C stops waiting."""

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
