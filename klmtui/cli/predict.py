"""`klmtui predict` and `klmtui plan`: predicted figures (never mistaken for measured ones) and what to measure next.

Composition only: core.predict fits and predicts; this module parses options and prints.

    klmtui predict [--source NAME | --device NAME] [--target latency_s] [--target power_w] [--target energy_j] [--json]
    klmtui plan N --device D [--protocol thesis|adaptive] [--source NAME] [--json]
"""

from __future__ import annotations

import click

from core.latency import PROTOCOLS
from core.numbers import UNITS, column_figure
from klmtui.cli.common import emit_json, pass_app, print_table, stdout_console

TARGET_CHOICES = ("latency_s", "power_w", "energy_j")  # energy_j: joules per image (core.report.energy_per_image_j)


def _fmt(target: str, value) -> str:
    """The house rule (core.numbers): 3 significant digits, at least the published decimals."""
    return column_figure(target, value)


@click.command("predict")
@click.option("--source", default=None, metavar="NAME",
              help="Fit on this source's rows (thesis, an imported NAME, measured[:DEVICE]). Default thesis.")
@click.option("--device", default=None, metavar="NAME", help="Fit on this device's done benchmarks instead.")
@click.option("--from-device", "from_device", default=None, metavar="NAME",
              help="Use the latency measured on this other device as a feature (its architectures only).")
@click.option("--target", "targets", multiple=True, type=click.Choice(TARGET_CHOICES),
              help="What to predict; repeat. Default latency_s.")
@click.option("--all", "show_all", is_flag=True, help="Table: also rows the source measured (JSON always has all).")
@click.option("--json", "as_json", is_flag=True,
              help="One object per (architecture, target): arch, K, L, M, channels, target, value, low, high, measured.")
@pass_app
def predict(app, source, device, from_device, targets, show_all: bool, as_json: bool) -> None:
    """Predict latency / power / energy of every architecture from a source's measured rows.

    Features are analytic (cells, channels and MACs per block; no torch); the model for each
    target is chosen by leave-one-triple-out cross-validation from a small family; every figure
    has a 90% prediction interval. Too few rows with the target: one line, exit 2.
    """
    from core.predict import contract_row, predict_source, source_for

    name = source_for(source, device)
    preds, models = predict_source(app.store(), name, tuple(dict.fromkeys(targets or ("latency_s",))), from_device)
    if as_json:
        emit_json([contract_row(p) for p in preds])
        return
    shown = preds if show_all else [p for p in preds if p["measured"] is None]
    rows = [[p["arch"], p["channels"], p["target"], UNITS[p["target"]], _fmt(p["target"], p["value"]),
             f"[{_fmt(p['target'], p['low'])}, {_fmt(p['target'], p['high'])}]",
             _fmt(p["target"], p["measured"]) if p["measured"] is not None else "-"] for p in shown]
    hidden = len(preds) - len(shown)
    title = (f"predicted from {name}: {len(shown)} figure(s)"
             + (f" ({hidden} measured by the source not shown; --all shows them)" if hidden else ""))
    print_table(title, ["arch", "C", "target", "unit", "predicted", "90% interval", "measured"], rows)
    console = stdout_console()
    for model in models.values():
        console.print(f"model {model.describe()}")


@click.command("plan")
@click.argument("count", metavar="N", type=click.IntRange(1, 100000))
@click.option("--device", required=True, metavar="NAME", help="The device to benchmark on (`local` or registered).")
@click.option("--protocol", type=click.Choice(PROTOCOLS), default="adaptive", show_default=True)
@click.option("--source", default=None, metavar="NAME",
              help="Predict latency from this source while the device has too few benchmarks (default thesis).")
@click.option("--no-power", is_flag=True, default=False, help="Plan without the power pass.")
@click.option("--json", "as_json", is_flag=True, help="One object per planned architecture, in order, as a JSON array.")
@pass_app
def plan(app, count: int, device: str, protocol: str, source, no_power: bool, as_json: bool) -> None:
    """Pick the N architectures whose measurement on DEVICE most reduces the predictor's uncertainty.

    Greedy D-optimal design on the latency model's features, given the device's done
    benchmarks; each with the predicted device time of benchmarking it under --protocol.
    """
    from core.planning import plan_benchmarks

    result = plan_benchmarks(app.store(), device, count, protocol, source=source, power_pass=not no_power)
    if as_json:
        emit_json(result["rows"])
        return
    rows = [[i + 1, r["arch"], r["channels"], _fmt("latency_s", r["latency_s"]), f"[{_fmt('latency_s', r['low'])}, {_fmt('latency_s', r['high'])}]",
             _duration(r["device_seconds"])] for i, r in enumerate(result["rows"])]
    print_table(f"plan: {len(rows)} architecture(s) to benchmark on {device} ({protocol} protocol)",
                ["#", "arch", "C", "s/batch (pred.)", "90% interval", "device time"], rows)
    console = stdout_console()
    console.print(f"total predicted device time: {_duration(result['total_seconds'])} "
                  f"(latency predicted from {result['model_source']}: {result['model']})")


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


COMMANDS: list = [predict, plan]
