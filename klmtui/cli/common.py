"""What every CLI command shares: the store, one-line errors, JSON output, rich tables."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import click

from core import settings
from core.errors import InputError, KlmtuiError

DEFAULT_STORE = settings.DEFAULT_STORE


@dataclass
class AppContext:
    """Handed to every command as `ctx.obj`."""

    store_path: Path
    wide: bool = False  # --wide: tables show every column (klmtui.cli.tables)

    def store(self):
        """Open the store (lazily imported: `klmtui --help` must not pay for TinyDB)."""
        from core.store import Store

        return Store(self.store_path)

    def live_store(self):
        """The store, after runs and benchmarks whose process is gone were marked `interrupted`."""
        store = self.store()
        refresh_liveness(store)
        return store

    def live_view(self):
        """One version of the store (`Store.view(strict=True)`: every table from one parse, records
        checked for the keys readers need), after runs and benchmarks whose process is gone were
        marked `interrupted`: a read path (`status`, `pareto`, `export`) never claims a dead job runs."""
        store = self.store()
        refresh_liveness(store)
        return store.view(strict=True)


def refresh_liveness(store) -> None:
    """Mark training runs and benchmarks whose process vanished (pid + start time) `interrupted`
    (`klmtui.services.refresh_liveness`), in a store that exists."""
    from klmtui import services

    if store.exists():
        services.refresh_liveness(store)


pass_app = click.make_pass_decorator(AppContext)


def bad_input(message: str) -> InputError:
    """Raise this for a user mistake: one line on stderr, exit 2."""
    return InputError(message)


def emit_json(rows: Any) -> None:
    """Write JSON to stdout and nothing else (the `--json` contract)."""
    # one write (100k rows: a tenth of the time of json.dump's many small writes); large outputs compact
    indent = 2 if not isinstance(rows, list) or len(rows) <= 2000 else None
    data = _fast_json(rows) if indent is None else None  # 100k rows: orjson, a tenth of the time
    if data is not None and hasattr(sys.stdout, "buffer"):  # 50 MB of status: no decode and re-encode
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.write(b"\n")
        sys.stdout.buffer.flush()
        return
    text = data.decode("utf-8") if data is not None else json.dumps(rows, indent=indent, default=_json_default)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _fast_json(rows: Any) -> bytes | None:
    """Compact JSON by orjson (the same data as json.dumps; no space after separators; a NaN, which
    the store refuses anyway, would be null, valid JSON, not `NaN`), None when orjson is missing or
    refuses something (an integer beyond 64 bits): then json.dumps writes it."""
    try:
        import orjson
    except ImportError:
        return None
    try:
        return orjson.dumps(rows, default=_json_default)
    except (TypeError, ValueError):
        return None


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


def print_table(title: str | None, columns: Iterable[str], rows: Iterable[Iterable[Any]],
                priorities: dict[str, int] | None = None, **kw) -> None:
    """A rich table on stdout. Cells may be rich renderables or plain values; plain values (and a
    string title) are shown literally: control characters made visible, markup never interpreted
    (cells often carry device text)."""
    from rich.table import Table

    from core.safetext import plain

    from klmtui.cli.tables import fit, is_identifying

    columns = list(columns)
    cells = [[c if hasattr(c, "__rich_console__") or hasattr(c, "__rich__") else plain(_fmt(c)) for c in row]
             for row in rows]
    console = stdout_console()
    wide = wide_output()
    chosen = fit(columns, cells, console.width, wide=wide, priorities=priorities)
    if wide and chosen.total > console.width:
        console.width = chosen.total  # --wide: every column whole, wider than the terminal
    if isinstance(title, str):  # a narrow table must not fold its title
        kw.setdefault("min_width", min(len(title) + 4, console.width))
    table = Table(title=plain(title) if isinstance(title, str) else title, **kw)
    for i in chosen.keep:
        ident = is_identifying(columns[i])
        table.add_column(columns[i], no_wrap=ident, min_width=chosen.widths[i] - 3 if ident else None)
    for row in cells:
        table.add_row(*[row[i] for i in chosen.keep])
    console.print(table)
    if chosen.hidden:
        console.print(f"[dim]{len(chosen.hidden)} column(s) left out at {console.width} columns: "
                      f"{', '.join(chosen.hidden)} (--wide shows all)[/]", highlight=False)


def wide_output() -> bool:
    """`klmtui --wide ...` (or a command's own --wide): tables show every column."""
    ctx = click.get_current_context(silent=True)
    app = ctx.find_object(AppContext) if ctx is not None else None
    return bool(app is not None and app.wide)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def fail(message: str, code: int = 1) -> "click.exceptions.Exit":
    from core.safetext import visible

    click.echo(f"klmtui: {visible(message)}", err=True)
    return click.exceptions.Exit(code)


def store_path_from_env(value: str | None) -> Path:
    return settings.store_path(value)


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
