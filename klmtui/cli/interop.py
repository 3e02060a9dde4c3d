"""`klmtui import-checkpoint FILE ARCH` and `klmtui export-model ID --format thesis|onnx|torchscript -o FILE`:
weights to and from the thesis' / DARTS' / SNAS' code and deployable formats (core.interop)."""

from __future__ import annotations

import click

from klmtui.cli.common import AppContext, emit_json, pass_app


@click.command("import-checkpoint")
@click.argument("file", metavar="FILE")
@click.argument("arch", metavar="ARCH")
@click.option("--layout", type=click.Choice(["auto", "thesis", "compact"]), default="auto", show_default=True,
              help="The file's key layout: thesis (*_edge_all, what the thesis trained) or compact (DARTS style).")
@click.option("--accuracy", type=float, default=None, help="Its CIFAR-10 test accuracy in %, if known.")
@click.option("--note", default=None, help="Where the weights come from (kept in the run record).")
@click.option("--json", "as_json", is_flag=True, help="Print the new run record as JSON.")
@pass_app
def import_checkpoint(app: AppContext, file: str, arch: str, layout: str, accuracy: float | None,
                      note: str | None, as_json: bool) -> None:
    """Register weights trained by the thesis' (or DARTS'/SNAS') NetworkCIFAR as a done run of ARCH."""
    from core.arch import parse_arch
    from core.interop import import_checkpoint as do_import

    parsed = parse_arch(arch)
    record = do_import(app.store(), file, parsed, layout, accuracy=accuracy, note=note)
    if as_json:
        emit_json(record)
        return
    info = record["imported"]
    click.echo(f"{record['id']}: {parsed.id} from {info['file']} ({info['layout']} layout, "
               f"{info['file_genotype']}; {info['keys_renamed']} keys renamed by edge, loaded strictly)")


@click.command("export-model")
@click.argument("ref", metavar="ID")
@click.option("--format", "fmt", type=click.Choice(["thesis", "onnx", "torchscript"]), required=True,
              help="thesis: a state_dict the thesis' NetworkCIFAR loads strictly; onnx (opset 13, TensorRT 8.2); "
                   "torchscript.")
@click.option("-o", "--output", "output", metavar="FILE", required=True, help="The file to write.")
@click.option("--batch", type=int, default=1, show_default=True, help="Input batch of onnx/torchscript graphs.")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@pass_app
def export_model(app: AppContext, ref: str, fmt: str, output: str, batch: int, as_json: bool) -> None:
    """Write the weights of training run ID (or ARCH's latest done run) for another code base or a device."""
    from core.interop import export_model as do_export

    info = do_export(app.store(), ref, fmt, output, batch=batch)
    if as_json:
        emit_json(info)
    else:
        click.echo(f"{info['file']}: {info['arch']} (run {info['run']}) as {fmt}, {info['bytes']} bytes")


COMMANDS: list = [import_checkpoint, export_model]
