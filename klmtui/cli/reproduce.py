"""`klmtui figures` (the thesis' Figure 3 and Figure 4 a-e for any source) and `klmtui report`
(a reproduction report: one source against another). The work is in core.figures and
core.reproduction."""

from __future__ import annotations

from pathlib import Path

import click

from core.schema import MEASURED_SOURCE, THESIS_SOURCE
from klmtui.cli.common import AppContext, emit_json, pass_app


@click.command("figures")
@click.option("--source", default=THESIS_SOURCE, show_default=True, help="Figures source (thesis, measured, an import).")
@click.option("--device", metavar="A", default=None, help="With --source measured: the benchmarks on device A.")
@click.option("--vs-device", metavar="B", default=None,
              help="Figure 3's second series: the benchmarks on device B, or a source named B.")
@click.option("-o", "--output", "output", metavar="DIR", required=True, help="Folder to write the figures into.")
@click.option("--format", "fmt", type=click.Choice(["png", "svg", "pdf"]), default="png", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print what was written as a JSON array.")
@pass_app
def figures(app: AppContext, source: str, device: str | None, vs_device: str | None, output: str, fmt: str,
            as_json: bool) -> None:
    """Draw the thesis' Figure 3 (latency on two devices) and Figure 4 a-e (2-D Pareto fronts)."""
    from core.figures import draw_figures

    store = app.store()
    written = draw_figures(store, output, source=source, device=device, vs_device=vs_device, fmt=fmt)
    if as_json:
        emit_json([w.to_dict() for w in written])
        return
    for w in written:
        click.echo(f"{w.path}  ({w.rows} rows)")


@click.command("report")
@click.option("--source", default=MEASURED_SOURCE, show_default=True, help="The figures being checked.")
@click.option("--against", default=THESIS_SOURCE, show_default=True, help="The figures they are checked against.")
@click.option("-o", "--output", "output", metavar="FILE", default=None, help="Write the Markdown here.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@pass_app
def report(app: AppContext, source: str, against: str, output: str | None, as_json: bool) -> None:
    """Reproduction report: accuracy deltas, latency/power ratios, Kendall's tau, front overlap, caveats."""
    from core.reproduction import reproduction, to_markdown

    result = reproduction(app.store(), source, against)
    text = to_markdown(result)
    if output:
        path = Path(output)
        if path.is_dir():
            from core.errors import InputError

            raise InputError(f"-o {path} is a folder: give a file name")
        path.write_text(text, encoding="utf-8")
    if as_json:
        emit_json(result)
    elif output:
        click.echo(f"{output}: {result['paired']} paired architectures, {source} against {against}")
    else:
        click.echo(text, nl=False)


COMMANDS: list = [figures, report]
