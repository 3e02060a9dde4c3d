"""`klmtui train`, `cancel`, `resume` (docs/architecture.md, CLI contract): thin wrappers over `core.jobs`.

The foreground view only reads what the run processes write (`progress.json`, the store); the
runs themselves are detached, so Ctrl-C here leaves them training.
"""

from __future__ import annotations

import time

import click

from core.errors import InputError
from klmtui.cli.common import AppContext, emit_json, pass_app, print_table, stderr_console

POLL_S = 0.5
REFRESH_EVERY_S = 5.0
SUMMARY_KEYS = ("id", "arch", "channels", "seed", "epochs", "accuracy", "checkpoint", "status")


def _summary(store, rec: dict) -> dict:
    out = {k: rec.get(k) for k in SUMMARY_KEYS}
    out["arch_id"] = rec.get("arch_id")
    out["best_accuracy"] = rec.get("best_accuracy")
    out["epoch"] = rec.get("epoch")
    if out["checkpoint"]:
        out["checkpoint"] = str(store.resolve(out["checkpoint"]).resolve())
    if rec.get("error"):
        out["error"] = rec["error"]
    return out


@click.command("train")
@click.argument("archs", nargs=-1, required=True, metavar="ARCH...")
@click.option("--epochs", type=int, default=None, help="Epochs [profile: paper 600, quick 5].")
@click.option("--seeds", type=int, default=1, show_default=True, help="Independent runs per architecture.")
@click.option("--seed", type=int, default=None, help="First seed [0]; run i uses seed+i.")
@click.option("--profile", type=click.Choice(["paper", "fast", "quick"]), default="paper", show_default=True,
              help="paper: the thesis' recipe, fp32; fast: the same with mixed precision + channels_last on CUDA; "
                   "quick: a 5-epoch smoke run.")
@click.option("--amp/--no-amp", "amp", default=None,
              help="Mixed precision fp16 on CUDA [paper: off, as the thesis; fast: on]. Recorded with the run.")
@click.option("--data", metavar="DIR", default=None, help="CIFAR-10 folder [$KLMTUI_DATA, else download].")
@click.option("--train-subset", type=int, default=None, help="Train on N images (class-balanced, fixed).")
@click.option("--test-subset", type=int, default=None, help="Test on N images (class-balanced, fixed).")
@click.option("--batch-size", type=int, default=None, help="Batch size [paper 96].")
@click.option("--lr", type=float, default=None, help="Initial learning rate [paper 0.025].")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--address", metavar="ADDR", default=None, help="Ray cluster address (--executor ray) [$RAY_ADDRESS].")
@click.option("--storage", metavar="DIR", default=None, help="Checkpoint storage all Ray nodes see.")
@click.option("--detach", is_flag=True, help="Return at once, printing the run ids.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary object per run.")
@pass_app
def train(app: AppContext, archs: tuple[str, ...], epochs: int | None, seeds: int, seed: int | None, profile: str,
          data: str | None, train_subset: int | None, test_subset: int | None, batch_size: int | None,
          lr: float | None, amp: bool | None, executor: str, address: str | None, storage: str | None, detach: bool,
          as_json: bool) -> None:
    """Train architectures (any K-L-M@C) with the thesis recipe; a live progress view unless --detach."""
    from core.arch import parse_arch
    from core.jobs import submit
    from core.train import make_config

    parsed = [parse_arch(a) for a in archs]  # every argument checked before anything is written
    from core.limits import check_seeds

    check_seeds(seeds)
    cfg = make_config(profile, epochs=epochs, batch_size=batch_size, train_subset=train_subset,
                      test_subset=test_subset, data=data, seed=seed, lr=lr, amp=amp)
    store = app.store()
    ids: list[str] = []
    for arch in parsed:
        ids += submit(store, arch, cfg, executor, seeds=seeds, address=address, storage=storage,
                      auto_seed=seed is None)  # no --seed: the next seeds not used with this recipe
    if not detach:
        _follow(store, ids, quiet=False)
    records = [store.get("runs", i) for i in ids]
    if as_json:
        emit_json([_summary(store, r) for r in records])
    elif detach:
        for rec in records:
            click.echo(rec["id"])
    else:
        _print_results(store, records)
    if not detach:
        _exit_on_outcome(records)


def _exit_on_outcome(records: list[dict], kind: str = "run") -> None:
    """Exit 1 with the reason on one line unless every run waited for is `done` (issue 12)."""
    bad = [r for r in records if r is None or r.get("status") != "done"]
    if bad:
        from core.errors import OperationFailed

        first = bad[0] or {}
        reason = " ".join(str(first.get("error") or "no error recorded").split())
        more = f" (and {len(bad) - 1} more not done)" if len(bad) > 1 else ""
        said = "" if reason == first.get("status") else f": {reason}"  # never "cancelled: cancelled"
        raise OperationFailed(f"{kind} {first.get('id')} {first.get('status')}{said}{more}")


def _follow(store, ids: list[str], quiet: bool) -> None:
    """A rich progress bar per run (on stderr) until every run is final; Ctrl-C detaches."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from core.jobs import progress, refresh
    from core.schema import FINAL_STATUSES

    console = stderr_console()
    quiet = quiet or not console.is_terminal  # scripts: stderr stays for the one-line error contract
    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"), TimeRemainingColumn()]
    last_refresh = time.monotonic()
    try:
        with Progress(*columns, console=console, transient=False, disable=quiet) as bars:
            tasks = {}
            for run_id in ids:
                rec = store.get("runs", run_id)
                label = f"{run_id} {rec['arch_id']} s{rec['seed']}"
                tasks[run_id] = bars.add_task(label, total=rec["epochs"], info=rec["status"])
            while True:
                done = 0
                for run_id, task in tasks.items():
                    rec = store.get("runs", run_id)
                    state = progress(store, run_id) or {}
                    completed = _completed(rec, state)
                    bars.update(task, completed=completed, info=_info(rec, state))
                    done += rec["status"] in FINAL_STATUSES
                if done == len(tasks):
                    break
                if time.monotonic() - last_refresh > REFRESH_EVERY_S:
                    refresh(store)
                    last_refresh = time.monotonic()
                time.sleep(POLL_S)
    except KeyboardInterrupt:
        console.print("runs continue in the background; stop them with: klmtui cancel " + " ".join(ids))
        raise click.exceptions.Exit(130) from None
    from core.jobs import wait_exited

    for run_id in wait_exited(store, ids):  # a run says `done`/`failed` a moment before its process exits
        click.echo(f"klmtui: warning: run {run_id}: its process {store.get('runs', run_id).get('pid')} "
                   "has not exited yet", err=True)


def _completed(rec: dict, state: dict) -> float:
    epoch_done = float(rec.get("epoch") or 0)
    if rec["status"] == "running" and state.get("batch") and state.get("batches"):
        return max(epoch_done, state["epoch"] - 1 + state["batch"] / state["batches"])
    return epoch_done


def _info(rec: dict, state: dict) -> str:
    if rec["status"] != "running" or not state:
        acc = f" test {rec['accuracy']:.2f}%" if rec.get("accuracy") is not None else ""
        return f"{rec['status']} epoch {rec.get('epoch') or 0}/{rec['epochs']}{acc}"
    parts = [f"epoch {state.get('epoch', '?')}/{state.get('epochs', rec['epochs'])}"]
    if state.get("batch"):
        parts.append(f"batch {state['batch']}/{state.get('batches', '?')}")
    if state.get("loss") is not None:
        parts.append(f"loss {state['loss']:.3f}")
    if state.get("train_acc") is not None:
        parts.append(f"acc {state['train_acc']:.1f}%")
    if state.get("test_acc") is not None:
        parts.append(f"test {state['test_acc']:.1f}%")
    if state.get("images_per_s"):
        parts.append(f"{state['images_per_s']:.0f} img/s")
    return " ".join(parts)


def _print_results(store, records: list[dict]) -> None:
    rows = [[r["id"], r["arch_id"], r["seed"], f"{r.get('epoch') or 0}/{r['epochs']}", r["status"],
             None if r.get("accuracy") is None else f"{r['accuracy']:.2f}",
             None if r.get("best_accuracy") is None else f"{r['best_accuracy']:.2f}", r.get("error")]
            for r in records]
    print_table("training runs", ["id", "arch", "seed", "epochs", "status", "accuracy %", "best %", "error"], rows)
    by_arch: dict[str, list[dict]] = {}
    for r in records:
        by_arch.setdefault(r["arch_id"], []).append(r)
    from core.aggregate import seed_groups

    for arch_id, group in by_arch.items():
        best = seed_groups(group)
        if best and best[0].n > 1:
            click.echo(f"{arch_id}: {best[0].text()} %")


def _is_benchmark(run_id: str) -> bool:
    return run_id.startswith("b-")


def _warn(line: str) -> None:
    click.echo(f"klmtui: warning: {line}", err=True)


@click.command("cancel")
@click.argument("run_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print the updated record as JSON.")
@pass_app
def cancel(app: AppContext, run_id: str, as_json: bool) -> None:
    """Stop a training run (t-...) or a benchmark (b-...); a run keeps its last checkpoint.

    Returns once its process has exited (SIGTERM, then SIGKILL after 10 s, said on stderr)."""
    store = app.store()
    if _is_benchmark(run_id):
        from remote import benchjobs

        rec = benchjobs.cancel(store, run_id, warn=_warn)
    else:
        from core.jobs import cancel as cancel_run

        rec = cancel_run(store, run_id, warn=_warn)
    if as_json:
        emit_json([rec])
    else:
        click.echo(f"{run_id}: {rec.get('status')}")


@click.command("resume")
@click.argument("run_id", metavar="ID")
@click.option("--detach", is_flag=True, help="Return at once (the run or benchmark goes on).")
@click.option("--data", metavar="DIR", default=None,
              help="Training runs: the CIFAR-10 folder to continue with (overrides the one recorded).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_app
def resume(app: AppContext, run_id: str, detach: bool, data: str | None, as_json: bool) -> None:
    """Continue an interrupted, cancelled or failed training run (t-...) or benchmark (b-...)."""
    store = app.store()
    if data is not None and _is_benchmark(run_id):
        raise InputError("--data is for training runs (t-...), not benchmarks")
    if _is_benchmark(run_id):  # queued again (remote.benchjobs), followed live unless --detach
        from klmtui.cli.bench import follow_live
        from remote import benchjobs

        rec = benchjobs.resume(store, run_id)
        if not detach:
            [rec] = follow_live(store, [run_id])
        if as_json:
            emit_json([rec])
        else:
            click.echo(f"{run_id}: {rec.get('status')}")
        if not detach:
            _exit_on_outcome([rec], "benchmark")
        return
    from core.jobs import refresh
    from core.jobs import resume as resume_run

    refresh(store)
    rec = resume_run(store, run_id, data=data)
    if rec.get("warning"):
        click.echo(f"klmtui: warning: {rec['warning']}", err=True)
    if not detach:
        _follow(store, [run_id], quiet=False)
        rec = store.get("runs", run_id)
    if as_json:
        emit_json([_summary(store, rec)])
    else:
        click.echo(f"{run_id}: {rec['status']} epoch {rec.get('epoch') or 0}/{rec['epochs']}"
                   + (f" accuracy {rec['accuracy']:.2f}%" if rec.get("accuracy") is not None else ""))
    if not detach:
        _exit_on_outcome([rec])


COMMANDS: list = [train, cancel, resume]
