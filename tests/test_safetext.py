"""core.safetext: device text made visible, never interpreted (issue 16)."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from core.safetext import is_clean, plain, visible


def test_escapes_and_controls_become_visible():
    text = "a\x1b]2;PWNED\x07b\x1b[2Jc\x9bd\u202ee\r\x00"
    shown = visible(text)
    assert shown == "a\\x1b]2;PWNED\\x07b\\x1b[2Jc\\x9bd\\u202ee\\x0d\\x00"
    assert is_clean(shown) and not is_clean(text)


def test_newlines_only_kept_when_asked_and_limit():
    assert visible("a\nb\tc") == "a\\nb\\tc"
    assert visible("a\nb\tc", one_line=False) == "a\nb\tc"
    assert visible("x" * 100, limit=10) == "x" * 9 + "…"
    assert visible(None) == "None" and visible(3.5) == "3.5"


def test_plain_is_never_markup():
    out = io.StringIO()
    table = Table()
    table.add_column("v")
    table.add_row(plain("[/] [bold]x[/bold] \x1b]0;t\x07"))  # a str cell here would raise MarkupError
    Console(file=out, width=80, color_system=None).print(table)
    assert "[/] [bold]x[/bold]" in out.getvalue() and "\x1b" not in out.getvalue()
