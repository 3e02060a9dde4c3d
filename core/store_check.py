"""What a store record may hold: checked on every write and on every parse of `runs.json` (issue 12).

A store file is input like any other: it can be edited by hand, truncated, or hostile. So
`core.store` decodes it with NaN/Infinity refused, numbers that overflow to infinity refused,
nesting bounded, and every record's known fields checked for type and range; readers that index
records (`Store.view(strict=True)`: status, pareto, export, the TUI) also get the keys they need.
A bad file is one line naming the table, the record and the field, exit 2, the file untouched.

The same `record_problem` refuses a write of NaN, inf, accuracy 101 or latency -1: a bad value
never reaches the file.
"""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from typing import Any, Iterator

from core.limits import MAX_BATCH, MAX_BLOCK, MAX_CHANNELS, MAX_EPOCHS, MAX_SEED
from core.schema import STATUSES

MAX_DEPTH = 32  # nesting of a record's values (configs, environments, extras are 2-3 deep)

# field -> (low, high, low_open): numbers (int or float) within the bounds, or None
NUMBER_RANGES: dict[str, tuple[float, float, bool]] = {
    "accuracy": (0.0, 100.0, False),
    "best_accuracy": (0.0, 100.0, False),
    "train_acc": (0.0, 100.0, False),
    "test_acc": (0.0, 100.0, False),
    "latency_s": (0.0, 1e6, True),
    "latency_p90_s": (0.0, 1e6, True),
    "power_w": (0.0, 1e5, False),
    "energy_j": (0.0, 1e9, False),
    "params_m": (0.0, 1e6, False),
    "images_per_s": (0.0, 1e12, False),
    "accuracy_std": (0.0, 100.0, False),
}
# field -> (low, high): whole numbers within the bounds, or None
INT_RANGES: dict[str, tuple[int, int]] = {
    "K": (1, MAX_BLOCK),
    "L": (1, MAX_BLOCK),
    "M": (1, MAX_BLOCK),
    "channels": (1, MAX_CHANNELS),
    "epoch": (0, MAX_EPOCHS),
    "epochs": (1, MAX_EPOCHS),
    "seed": (0, MAX_SEED),
    "batch": (1, MAX_BATCH),
    "params": (0, 10**12),
    "macs": (0, 10**15),
    "pid": (1, 2**31 - 1),
    "seeds": (0, 10**6),
}
STRING_FIELDS = ("arch_id", "arch", "source", "genotype", "device", "host", "name", "error")
DICT_FIELDS = ("config", "extra", "options", "environment")
STATUS_TABLES = ("runs", "benchmarks")
# what readers index without a default (`record["K"]`): checked by Store.view(strict=True)
REQUIRED: dict[str, tuple[str, ...]] = {
    "architectures": ("K", "L", "M", "channels"),
    "runs": ("arch_id", "status"),
    "benchmarks": ("arch_id", "status"),
    "results": ("source", "arch_id", "K", "L", "M", "channels"),
    "devices": (),
    "sources": ("file", "sha256", "rows"),
}
_CHECKED = frozenset((*INT_RANGES, *NUMBER_RANGES, *STRING_FIELDS, *DICT_FIELDS))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:40]}... ({len(text)} characters)"


def _too_deep(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
    return False


MAX_INT = 2**63 - 1  # integers beyond 64 bits are refused: other JSON readers (and orjson) turn them into floats


def _non_finite(value: Any) -> str | None:
    """What refused number is anywhere in `value` (nested): a NaN or infinity, an integer beyond 64 bits."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return "a NaN or infinite number"
        elif isinstance(item, int):
            if not -MAX_INT - 1 <= item <= MAX_INT:
                return "an integer beyond 64 bits"
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return None


def record_problem(table: str, record: dict, *, deep: bool = True) -> str | None:
    """What is wrong with `record` as a row of `table`, in a few words, or None.

    `deep` also looks for NaN/inf and integers beyond 64 bits inside nested values.
    """
    for key, value in record.items():  # the record's own order: the same message every time
        if value is None:
            continue
        if key not in _CHECKED:
            cls = value.__class__
            if cls is float:
                if not math.isfinite(value):
                    return f"{key} {value!r} is not a finite number"
            elif cls is int:
                if not -MAX_INT - 1 <= value <= MAX_INT:
                    return f"{key} {_shown(value)} is an integer beyond 64 bits"
            elif cls is dict or cls is list:
                if _too_deep(value, MAX_DEPTH):
                    return f"{key} is nested deeper than {MAX_DEPTH} levels"
                bad = _non_finite(value) if deep else None
                if bad:
                    return f"{key} holds {bad}"
        elif key in NUMBER_RANGES:
            if not _is_number(value):
                return f"{key} {_shown(value)} is not a number"
            low, high, low_open = NUMBER_RANGES[key]
            try:
                as_float = float(value)
            except OverflowError:
                return f"{key} is a number too large"
            if not math.isfinite(as_float):
                return f"{key} {value!r} is not a finite number"
            if (as_float <= low if low_open else as_float < low) or as_float > high:
                return f"{key} {_shown(value)} is out of range {'(' if low_open else '['}{low:g}, {high:g}]"
        elif key in INT_RANGES:
            if not isinstance(value, int) or isinstance(value, bool):
                return f"{key} {_shown(value)} is not a whole number"
            low, high = INT_RANGES[key]
            if not low <= value <= high:
                return f"{key} {_shown(value)} is out of range {low}..{high}"
        elif key in STRING_FIELDS:
            if not isinstance(value, str):
                return f"{key} {_shown(value)} is not text"
        elif not isinstance(value, dict):
            return f"{key} {_shown(value)} is not an object"
        elif _too_deep(value, MAX_DEPTH):
            return f"{key} is nested deeper than {MAX_DEPTH} levels"
        elif deep and _non_finite(value):
            return f"{key} holds {_non_finite(value)}"
    if table in STATUS_TABLES and "status" in record and record["status"] not in STATUSES:
        return f"status {_shown(record['status'])} is not one of {', '.join(STATUSES)}"
    return None


def missing_keys(table: str, record: dict) -> list[str]:
    return [k for k in REQUIRED.get(table, ()) if k not in record or record[k] is None]


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _loads(data: bytes | memoryview, fast: bool) -> Any:
    if fast:
        try:
            import orjson
        except ImportError:  # an install without it: the standard library, just slower
            pass
        else:
            try:
                return orjson.loads(data)
            except (ValueError, TypeError):  # anything it refuses, the standard decoder judges (same messages)
                pass
    return json.loads(bytes(data) if isinstance(data, memoryview) else data, parse_constant=_refuse_constant)


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a block builds many containers that live on (decoding 100k
    records, one status row per architecture): the collector would scan them again and again, and
    JSON data holds no cycles. Nests; the collector is back on after the outermost block."""
    import gc

    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def decode(data: bytes | memoryview, *, fast: bool = False) -> Any:
    """`json.loads` that refuses NaN/Infinity literals (ValueError; RecursionError for absurd
    nesting). A number overflowing to infinity (1e999) parses as inf and is refused by
    `record_problem` (every float is checked there), which costs less than a parse hook.

    `fast`: decode with orjson (2x faster on large stores) when it accepts the text, else as above.
    For a valid file the result is the same (both decoders round floats correctly, keep key order,
    last duplicate key wins) except integers beyond 64 bits, which orjson reads as floats: only
    text klmtui wrote itself (where `record_problem` refused such integers) may be decoded `fast`.
    The garbage collector is paused while the containers are built (`gc_paused`)."""
    with gc_paused():
        return _loads(data, fast)


__all__ = ["gc_paused", "MAX_DEPTH", "NUMBER_RANGES", "INT_RANGES", "REQUIRED", "record_problem", "missing_keys", "decode"]
