"""The defaults of the train and benchmark choices, one set for the CLI and the TUI, and what the
user chose last (data folder, profile, device ...), remembered in `$KLMTUI_HOME/defaults.json`.

`defaults()` is the built-in defaults overlaid with the remembered choices; `remember(section,
values)` records the choices of a submitted form (or a CLI command) atomically. An unreadable or
malformed file is ignored (the built-in defaults apply) and replaced on the next `remember`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from core import settings
from core.schema import LOCAL_DEVICE

PREFS_FILE = "defaults.json"
DEFAULT_PROFILE = "paper"  # the thesis recipe (CLI `train --profile` and the TUI form)
PROFILES = ("paper", "fast", "quick")
BUILT_IN: dict[str, dict[str, Any]] = {
    "train": {"profile": DEFAULT_PROFILE, "seeds": 1, "executor": "local", "data": ""},
    "bench": {"device": LOCAL_DEVICE, "protocol": "thesis", "timing": "sync"},
}
REMEMBERED = {  # what a submitted form leaves behind for next time
    "train": ("profile", "seeds", "executor", "data", "epochs", "train_subset", "test_subset", "batch_size",
              "address", "storage"),
    "bench": ("device", "protocol", "timing", "batch", "runs", "batches", "warmup_runs", "warmup_batches"),
}


def path(home: Optional[Path] = None) -> Path:
    return Path(home or settings.home()) / PREFS_FILE


def _read(home: Optional[Path]) -> dict:
    try:
        data = json.loads(path(home).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def defaults(section: str, home: Optional[Path] = None) -> dict[str, Any]:
    """Built-in defaults of `section` (train, bench), then $KLMTUI_DATA, then the remembered choices."""
    values = dict(BUILT_IN[section])
    if section == "train" and settings.data_dir() is not None:
        values["data"] = str(settings.data_dir())
    saved = _read(home).get(section)
    if isinstance(saved, dict):
        values.update({k: v for k, v in saved.items() if k in REMEMBERED[section]})
    if values.get("profile") not in (None, *PROFILES):
        values["profile"] = DEFAULT_PROFILE
    return values


def remember(section: str, values: dict[str, Any], home: Optional[Path] = None) -> None:
    """Record the choices of `section` (None and "" clear a remembered value)."""
    from core.store import atomic_write_text

    data = _read(home)
    saved = dict(data.get(section) or {})
    for key in REMEMBERED[section]:
        if key in values:
            if values[key] in (None, ""):
                saved.pop(key, None)
            else:
                saved[key] = values[key]
    data[section] = saved
    target = path(home)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, json.dumps(data, indent=2, sort_keys=True) + "\n")
