"""Messages in the words of the UI they appear in: core/remote errors name CLI commands and flags
(`pass --data DIR`, `run: klmtui device trust nano`); the TUI shows the key or field instead."""

from __future__ import annotations

import re

TUI_WORDS = (  # (pattern, replacement), applied in order
    (r"pass --data DIR or set KLMTUI_DATA to an existing copy", "fill in the train form's data folder"),
    (r"pass --data DIR", "fill in the train form's data folder"),
    (r"run: klmtui device trust (\S+)", r"trust it on the devices screen (d, then t on \1)"),
    (r"\(klmtui device remove (\S+) first\)", r"(remove \1 on the devices screen first: x)"),
    (r"add it with `klmtui device add \S+ --host HOST` \(or use --device local\)", "add it on the devices screen (d, then a)"),
    (r"\(klmtui runs lists them\)", ""),
    (r"cancel it first \(klmtui cancel ID\)", "cancel it first (c)"),
    (r"move it away or pass --store", "move it away or start klmtui with --store PATH"),
    (r"\(confirm interactively or pass --yes\)", ""),
)


def for_tui(text: str) -> str:
    """`text` with CLI instructions replaced by the TUI's keys and fields."""
    for pattern, replacement in TUI_WORDS:
        text = re.sub(pattern, replacement, text)
    return " ".join(text.split())
