"""`klmtui [--store PATH] [COMMAND ...]`: the scriptable CLI (docs/architecture.md, CLI contract).

Each area registers its commands from its own module (space, results, train, devices, bench);
heavy libraries are imported inside the commands so `klmtui --help` stays instant.
"""

from __future__ import annotations

import sys

import click

from core.errors import KlmtuiError
from klmtui.cli.common import AppContext, store_path_from_env


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--store",
    "store",
    metavar="PATH",
    default=None,
    help="The study store (TinyDB JSON). Default ./runs.json, or $KLMTUI_STORE.",
)
@click.option("--wide", is_flag=True, help="Tables show every column, even wider than the terminal.")
@click.version_option(package_name="klmtui")
@click.pass_context
def main(ctx: click.Context, store: str | None, wide: bool = False) -> None:
    """klmtui: sample, train and benchmark K-L-M cell-based architectures; with no command, open the TUI."""
    ctx.obj = AppContext(store_path=store_path_from_env(store), wide=wide)
    if ctx.invoked_subcommand is None:
        from klmtui.app import run_app

        run_app(ctx.obj.store_path)


def _register() -> None:
    from klmtui.cli import bench, devices, results, runs, space, train

    for module in (space, results, train, devices, bench, runs):
        for command in getattr(module, "COMMANDS", ()):
            main.add_command(command)
    from klmtui.cli import interop, reproduce  # the thesis: import-checkpoint, export-model, figures, report

    for command in (*interop.COMMANDS, *reproduce.COMMANDS):
        main.add_command(command)
    from klmtui.cli import predict  # issue 10: predict, plan

    for command in predict.COMMANDS:
        main.add_command(command)


_register()


def run(argv: list[str] | None = None) -> None:
    """Console-script entry point: every user-facing error is one line on stderr, no traceback."""
    try:
        # standalone_mode=False makes click *return* the code of an `Exit` instead of exiting
        code = main.main(args=argv, prog_name="klmtui", standalone_mode=False)
        if isinstance(code, int) and not isinstance(code, bool) and code:
            sys.exit(code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("klmtui: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        # Usage errors (unknown option, bad value) are bad input: exit 2, one line.
        message = " ".join(exc.format_message().split())  # one line: click's "Choose from:\n\t..." too
        ctx_cmd = getattr(getattr(exc, "ctx", None), "command_path", None)
        where = f" ({ctx_cmd} --help for usage)" if ctx_cmd and isinstance(exc, click.UsageError) else ""
        click.echo(f"klmtui: {message}{where}", err=True)
        sys.exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
    except KlmtuiError as exc:
        from core.safetext import visible  # errors can quote device text: one line, nothing interpreted

        click.echo(f"klmtui: {visible(str(exc))}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("klmtui: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
