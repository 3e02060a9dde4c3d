"""Device text is data: make it safe to put on a terminal (the CLI and the TUI both use this).

Anything a device sends (an agent `error`, its stderr tail, `device check` fields, environment
values) may carry terminal escape sequences (OSC 0/2 set a window or tmux pane title, OSC 52
writes the clipboard, CSI moves the cursor), other control characters, or bidi overrides that
reorder what is shown. `visible()` makes every such character visible as a Python-style escape
(`\\x1b`, `\\x07`, `\\u202e`), so the text is still readable and nothing is interpreted. Rich
markup is a second, separate hazard: device text must be shown as `rich.text.Text(...)` (or
escaped with `rich.markup.escape`), never as a markup string; `visible()` does not touch `[`.
"""

from __future__ import annotations

import re
from typing import Any, Optional

# C0 controls except tab and newline, DEL, C1 controls (0x9b is a one-byte CSI), bidi
# embeddings/overrides/isolates and the line/paragraph separators.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_UNSAFE_OR_NEWLINE = re.compile(_UNSAFE.pattern[:-1] + "\t\n]")


def _escape(match: "re.Match[str]") -> str:
    char = match.group(0)
    code = ord(char)
    if char == "\n":
        return "\\n"
    if char == "\t":
        return "\\t"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(value: Any, *, one_line: bool = True, limit: Optional[int] = None) -> str:
    """`value` as text with every control character shown as an escape (never interpreted).

    one_line: also escape newlines and tabs (for messages that must stay one line).
    limit: cut to at most this many characters (after escaping), marked with an ellipsis.
    """
    text = value if isinstance(value, str) else str(value)
    text = (_UNSAFE_OR_NEWLINE if one_line else _UNSAFE).sub(_escape, text)
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 1)] + "…"
    return text


def is_clean(text: str, *, one_line: bool = True) -> bool:
    """True if `visible(text)` would leave it unchanged."""
    return (_UNSAFE_OR_NEWLINE if one_line else _UNSAFE).search(text) is None


def plain(value: Any, *, one_line: bool = True, limit: Optional[int] = None) -> Any:
    """A rich `Text` of `visible(value)`: shown literally, markup never interpreted."""
    from rich.text import Text

    return Text(visible(value, one_line=one_line, limit=limit))
