"""Numbers for people: how a figure is printed everywhere, and what a finite number in a range is.

`figure(0.0242)` is `0.0242`, not `0.02`; `figure(97.06, 2)` keeps the two decimals accuracy is
published with; whole numbers stay whole (a port is `2222`, never `2.22e+03`).

`finite_in(value, low, high)` is the one check "a finite number in [low, high]" (core.limits for
options, core.reference for CSV cells): it raises `NotANumber`, `NotFinite` or `OutOfRange` (all
`ValueError`s), and each caller words the refusal in its own error type.
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


class NotANumber(ValueError):
    """Not an int or float (a bool is not a number either)."""


class NotFinite(ValueError):
    """NaN, an infinity, or an integer too large for a float; `shown` says which in a few words."""

    def __init__(self, shown: str) -> None:
        super().__init__(shown)
        self.shown = shown


class OutOfRange(ValueError):
    """Finite, but outside the interval; `interval` is written `[low, high]` or `(low, high]`."""

    def __init__(self, value: float, interval: str) -> None:
        super().__init__(f"{value:g} is not in {interval}")
        self.value, self.interval = value, interval


def is_number(value: Any) -> bool:
    """An int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def interval(low: float, high: float, *, low_open: bool = False) -> str:
    """`[0, 100]`, or `(0, 10]` when `low` itself is excluded."""
    return f"{'(' if low_open else '['}{low:g}, {high:g}]"


def finite_in(value: Any, low: float = -math.inf, high: float = math.inf, *, low_open: bool = False) -> float:
    """`value` (an int or float) as a finite float in [low, high] (`low_open`: (low, high]), else
    NotANumber / NotFinite / OutOfRange."""
    if not is_number(value):
        raise NotANumber(repr(value))
    try:
        number = float(value)
    except OverflowError:
        raise NotFinite("an integer too large") from None
    if not math.isfinite(number):
        raise NotFinite(repr(number))
    if (number <= low if low_open else number < low) or number > high:
        raise OutOfRange(number, interval(low, high, low_open=low_open))
    return number
