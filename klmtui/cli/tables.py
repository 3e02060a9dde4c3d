"""Which columns of a CLI table fit the terminal: by priority, never truncating ids or architectures.

`common.print_table` asks `fit()` before it builds a rich table. Every column has a priority
(0 = always shown; higher numbers are dropped first; by default a column's position, so the
rightmost go first) and an identifying column (`id`, `arch`, ...) is never wrapped or cut: the
table drops whole low-priority columns instead and says which (`--wide` shows them all, wider
than the terminal if need be).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

# Columns whose values identify a row: shown whole, never folded, always kept.
IDENTIFYING = ("id", "arch", "arch_id", "architecture", "name", "K-L-M", "run", "benchmark", "")
# Columns kept as long as anything is dropped (after the identifying ones).
IMPORTANT = {"status": 1, "front": 1}
BORDER = 3  # rich's default box: one separator and a padding of one on each side


@dataclass(frozen=True)
class Fit:
    keep: list[int]  # indices of the columns shown, in order
    hidden: list[str]  # names of the columns left out
    widths: dict[int, int]  # natural width of every column (header and cells)
    total: int  # width of the table with the kept columns


def cell_width(cell: Any) -> int:
    """Display width of a cell's widest line (plain strings and rich Text; others count as 8)."""
    from rich.cells import cell_len

    if isinstance(cell, str):
        return max((cell_len(line) for line in cell.splitlines()), default=0)
    plain = getattr(cell, "plain", None)
    if isinstance(plain, str):
        return max((cell_len(line) for line in plain.splitlines()), default=0)
    return 8


def is_identifying(name: str) -> bool:
    return name.strip() in IDENTIFYING


def fit(columns: Sequence[str], rows: Sequence[Sequence[Any]], width: int, *, wide: bool = False,
        priorities: Mapping[str, int] | None = None) -> Fit:
    """Drop the highest-priority-number columns until the table's natural width fits `width`."""
    priorities = dict(priorities or {})
    natural = {}
    for i, name in enumerate(columns):
        natural[i] = max([cell_width(name)] + [cell_width(r[i]) for r in rows if i < len(r)]) + BORDER
    keep = list(range(len(columns)))

    def total(indices: list[int]) -> int:
        return sum(natural[i] for i in indices) + 1

    def rank(i: int) -> int:
        name = columns[i]
        if name in priorities:
            return priorities[name]
        return 0 if is_identifying(name) else IMPORTANT.get(name.strip(), i + 1)

    if not wide:
        droppable = sorted((i for i in keep if rank(i) > 0), key=lambda i: (rank(i), i), reverse=True)
        for i in droppable:
            if total(keep) <= width:
                break
            keep.remove(i)
    hidden = [columns[i] for i in range(len(columns)) if i not in keep]
    return Fit(keep, hidden, natural, total(keep))
