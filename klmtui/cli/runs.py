"""`klmtui runs`, `show ID`, `rm ID...`, `compare ID|ARCH ...`: manage and compare what has run.

The work is `core.runs` (list, describe, remove, resolve what to compare); the benchmark samples of
a comparison are folded from `events.jsonl` by `klmtui.services.attach_samples` (the live panel's
fold). Before listing or deleting, vanished processes are marked `interrupted` (as the TUI does),
so a record whose process died can be removed.
"""

from __future__ import annotations

import sys

import click

from klmtui.cli.common import AppContext, bad_input, emit_json, pass_app, print_table, refresh_liveness, stdout_console
from core.numbers import figure


def _wide(app: AppContext, wide: bool) -> None:
    app.wide = app.wide or wide


@click.command("runs")
@click.option("--arch", metavar="K-L-M[@C]", help="Only this architecture (K-L-M: every channel count).")
@click.option("--status", metavar="STATUS", help="Only records with this status (done, failed, running, ...).")
@click.option("--kind", type=click.Choice(["train", "bench"]), help="Only training runs or only benchmarks.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array, one object per run or benchmark.")
@click.option("--wide", is_flag=True, help="Show every column, even wider than the terminal.")
@pass_app
def runs(app: AppContext, arch: str | None, status: str | None, kind: str | None, as_json: bool, wide: bool) -> None:
    """Training runs (t-...) and benchmarks (b-...), oldest first."""
    from core.runs import list_records

    store = app.store()
    rows = list_records(store, arch=arch, status=status, kind=kind)  # bad filters: exit 2 before anything
    if store.exists():
        refresh_liveness(store)
        rows = list_records(store, arch=arch, status=status, kind=kind)
    if as_json:
        emit_json(rows)
        return
    _wide(app, wide)
    if not rows:
        click.echo("no runs or benchmarks" + (" match" if arch or status or kind else " yet"), err=True)
        return
    table = [[r["id"], r["arch_id"], r["kind"], r["status"], r["where"],
              f"{r['epoch'] or 0}/{r['epochs']}" if r["kind"] == "train" else None,
              figure(r["accuracy"], 2), figure(r["latency_s"]), figure(r["power_w"], 2),
              (r["finished"] or r["created"] or "")[:19].replace("T", " ") or None, r["error"]] for r in rows]
    print_table(f"{len(rows)} run(s) and benchmark(s)",
                ["id", "arch", "kind", "status", "where", "epochs", "acc %", "s/batch", "W", "when", "error"],
                table, priorities={"error": 99, "when": 50, "where": 40, "W": 30, "kind": 20})


@click.command("show")
@click.argument("record_id", metavar="ID")
@click.option("--log", "log_n", type=click.IntRange(min=0), default=20, show_default=True,
              help="Lines of the log tail (0: the whole log).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: record, config, metrics, log, files.")
@pass_app
def show(app: AppContext, record_id: str, log_n: int, as_json: bool) -> None:
    """One run or benchmark: its configuration, metrics, log tail and files."""
    from core.runs import describe

    info = describe(app.store(), record_id, log_n or None)
    if as_json:
        emit_json(info)
        return
    from rich.markup import escape

    from core.safetext import visible

    rec = info["record"]
    console = stdout_console()
    what = "training run" if info["kind"] == "train" else "benchmark"
    console.print(f"[b]{what} {rec['id']}[/] of {rec.get('arch_id')}: [b]{rec.get('status')}[/]", highlight=False)
    if rec.get("error"):
        console.print(f"[red]error:[/] {escape(visible(rec['error']))}", highlight=False)
    keys = (("epoch", "epochs", "accuracy", "best_accuracy", "executor", "seed", "profile") if info["kind"] == "train"
            else ("device", "weights", "protocol", "timing", "batch", "latency_s", "latency_p90_s", "images_per_s",
                  "power_w", "energy_j", "power_reason"))
    facts = [[k, figure(rec.get(k)) if isinstance(rec.get(k), float) else rec.get(k)] for k in
             (*keys, "created", "started", "finished") if rec.get(k) is not None]
    print_table("record", ["field", "value"], facts)
    config = info["config"]
    if config:
        print_table("configuration", ["option", "value"],
                    [[k, v if not isinstance(v, (dict, list)) else str(v)] for k, v in config.items()])
    metrics = info["metrics"]
    if metrics:
        names = [n for n in ("epoch", "loss", "train_acc", "test_acc", "test_loss", "lr", "seconds")
                 if any(n in m for m in metrics)]
        print_table(f"metrics ({len(metrics)} epochs)", names,
                    [[figure(m.get(n), 2 if n.endswith("_acc") else None) for n in names] for m in metrics])
    lines = info["log"]
    console.print(f"[b]log[/] ({'all' if not log_n else 'last'} {len(lines)} line(s))" if lines else "[b]log[/]: empty",
                  highlight=False)
    for line in lines:
        console.print(visible(line), markup=False, highlight=False, soft_wrap=True)
    print_table(f"files in {info['folder']}", ["file", "bytes"], [[f["name"], f["bytes"]] for f in info["files"]])


@click.command("rm")
@click.argument("record_ids", metavar="ID...", nargs=-1, required=True)
@click.option("--yes", is_flag=True, help="Do not ask (scripts).")
@click.option("--json", "as_json", is_flag=True, help="Print the removed ids as a JSON array.")
@pass_app
def rm(app: AppContext, record_ids: tuple[str, ...], yes: bool, as_json: bool) -> None:
    """Delete runs or benchmarks and their run folders (refuses active ones: cancel them first)."""
    from core.runs import find, remove

    store = app.store()
    for record_id in record_ids:
        find(store, record_id)  # an unknown id: exit 2 before asking
    refresh_liveness(store)  # a run whose process vanished is `interrupted`, so deletable
    if not yes:
        if not sys.stdin.isatty():
            raise bad_input(f"rm {' '.join(record_ids)}: add --yes to delete without a terminal to ask on")
        click.confirm(f"delete {len(record_ids)} record(s) and their run folders ({' '.join(record_ids)})?",
                      abort=True, err=True)
    removed = remove(store, list(record_ids))
    if as_json:
        emit_json(removed)
    else:
        for record_id in removed:
            click.echo(f"removed {record_id}")


@click.command("compare")
@click.argument("refs", metavar="ID|ARCH...", nargs=-1, required=True)
@click.option("--all", "show_all", is_flag=True, help="Also list the figures that are the same everywhere.")
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON array, one object per item: figures, curve, latency and power samples.")
@click.option("--wide", is_flag=True, help="Show every column, even wider than the terminal.")
@pass_app
def compare(app: AppContext, refs: tuple[str, ...], show_all: bool, as_json: bool, wide: bool) -> None:
    """Runs, benchmarks or architectures side by side (an architecture: its latest done run and benchmark)."""
    from core.numbers import column_figure
    from core.runs import differences, figures, quantiles
    from klmtui.services import Services

    items = Services(app.store_path).compare(list(refs))  # the TUI's compare screen reads the same
    if as_json:
        emit_json([{"ref": i.ref, "arch_id": i.arch_id, "figures": figures(i), "curve": i.curve,
                    "latency_s": i.latencies, "power_w": i.power} for i in items])
        return
    _wide(app, wide)
    labels = [i.ref for i in items]
    rows = [[label, *[column_figure(key, v) for v in values]]
            for key, label, values, _ in differences(items, only_different=not show_all)]
    print_table("differences" if not show_all else "figures", ["", *labels], rows)
    dist = []
    for name, scale, attr in (("latency ms/batch", 1000.0, "latencies"), ("power W", 1.0, "power")):
        for item in items:
            samples = getattr(item, attr)
            if samples:
                q = quantiles(samples)
                dist.append([item.ref, name, len(samples), *[figure(v * scale) for v in q]])
    if dist:
        print_table("distributions", ["run", "what", "n", "min", "p10", "median", "p90", "max"], dist)
    curves = [i for i in items if i.curve]
    if curves:
        epochs = sorted({int(m.get("epoch") or 0) for i in curves for m in i.curve})
        step = max(1, len(epochs) // 10)
        shown = epochs[::step] + ([epochs[-1]] if epochs[-1] not in epochs[::step] else [])
        by = [{int(m.get("epoch") or 0): m for m in i.curve} for i in curves]
        print_table("test accuracy % by epoch", ["epoch", *[i.ref for i in curves]],
                    [[e, *[figure((b.get(e) or {}).get("test_acc"), 2) for b in by]] for e in shown])


COMMANDS: list = [runs, show, rm, compare]
