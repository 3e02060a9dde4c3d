"""What every CLI command shares: the store, one-line errors, JSON output, rich tables."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import click

from core.errors import InputError, KlmtuiError

DEFAULT_STORE = "runs.json"


@dataclass
class AppContext:
    """Handed to every command as `ctx.obj`."""

    store_path: Path

    def store(self):
        """Open the store (lazily imported: `klmtui --help` must not pay for TinyDB)."""
        from core.store import Store

        return Store(self.store_path)


pass_app = click.make_pass_decorator(AppContext)


def bad_input(message: str) -> InputError:
    """Raise this for a user mistake: one line on stderr, exit 2."""
    return InputError(message)


def emit_json(rows: Any) -> None:
    """Write JSON to stdout and nothing else (the `--json` contract)."""
    json.dump(rows, sys.stdout, indent=2, default=_json_default)
    sys.stdout.write("\n")
    sys.stdout.flush()


def emit_json_line(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, default=_json_default) + "\n")
    sys.stdout.flush()


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def stdout_console():
    from rich.console import Console

    return Console()


def stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def print_table(title: str | None, columns: Iterable[str], rows: Iterable[Iterable[Any]], **kw) -> None:
    """A rich table on stdout. Cells may be rich renderables or plain values."""
    from rich.table import Table

    table = Table(title=title, **kw)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*[c if hasattr(c, "__rich_console__") or hasattr(c, "__rich__") else _fmt(c) for c in row])
    stdout_console().print(table)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def fail(message: str, code: int = 1) -> "click.exceptions.Exit":
    click.echo(f"klmtui: {message}", err=True)
    return click.exceptions.Exit(code)


def store_path_from_env(value: str | None) -> Path:
    return Path(value or os.environ.get("KLMTUI_STORE") or DEFAULT_STORE)


__all__ = [
    "AppContext",
    "pass_app",
    "bad_input",
    "emit_json",
    "emit_json_line",
    "print_table",
    "stdout_console",
    "stderr_console",
    "KlmtuiError",
    "InputError",
]
