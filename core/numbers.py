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
# The decimals each figure is published with (the thesis' Table 1 / Appendix A): a figure is printed
# with at least these, and with enough for SIGNIFICANT digits (a measured 0.0242 s is `0.0242`).
DECIMALS: dict[str, int] = {"accuracy": 2, "best_accuracy": 2, "params_m": 1, "latency_s": 2, "latency_p90_s": 2,
                            "power_w": 2, "energy_mj": 1, "macs_m": 1}
# The unit of each figure, as tables and plots write it.
UNITS: dict[str, str] = {"accuracy": "%", "best_accuracy": "%", "params_m": "M", "macs_m": "M", "latency_s": "s/batch",
                         "latency_p90_s": "s/batch", "power_w": "W", "energy_j": "J/img", "energy_mj": "mJ/img",
                         "images_per_s": "img/s"}


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
    """A number for people, the one rule of every table (CLI, TUI, exports): ints as they are;
    floats with at least `decimals` decimals and enough for `digits` significant digits, no exponent,
    but never more decimals than the value has (the thesis' 0.49 s is `0.49`, never `0.4900` or
    `0.490`; an exact 1.2996 is `1.30`). None is `none`; anything else is `str(value)`."""
    if value is None:
        return none
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or (decimals is None and float(value).is_integer() and abs(value) >= 10 ** digits):
        return str(int(value))
    if not math.isfinite(value):
        return str(value)
    places = decimals_for(value, decimals, digits)
    for fewer in range(decimals or 0, places):  # a value that has fewer decimals is shown with them
        if abs(round(value, fewer) - value) <= 1e-9 * max(1.0, abs(value)):
            places = fewer
            break
    return f"{value:.{places}f}"


def column_figure(name: str, value: Any, none: str = "-") -> str:
    """`figure` with the decimals the column `name` is published with (DECIMALS; none: 3 significant digits)."""
    return figure(value, DECIMALS.get(name), none=none)


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
