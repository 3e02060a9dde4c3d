"""How a figure is printed everywhere (CLI tables, TUI, exports): enough significant digits.

`figure(0.0242)` is `0.0242`, not `0.02`; `figure(97.06, 2)` keeps the two decimals accuracy is
published with; whole numbers stay whole (a port is `2222`, never `2.22e+03`).
"""

from __future__ import annotations

import math
from typing import Any

SIGNIFICANT = 3


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """`1 architecture`, `57 architectures`."""
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"


def decimals_for(value: float, decimals: int | None = None, digits: int = SIGNIFICANT) -> int:
    """At least `decimals` (when given) and at least enough to show `digits` significant digits."""
    if value == 0 or not math.isfinite(value):
        return decimals or 0
    needed = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return max(needed, decimals or 0)


def figure(value: Any, decimals: int | None = None, digits: int = SIGNIFICANT, none: str = "-") -> str:
    """A number for people: ints as they are, floats with `decimals_for` decimals, no exponent.
    None is `none`; anything else is `str(value)`."""
    if value is None:
        return none
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or (decimals is None and float(value).is_integer() and abs(value) >= 10 ** digits):
        return str(int(value))
    if not math.isfinite(value):
        return str(value)
    return f"{value:.{decimals_for(value, decimals, digits)}f}"
