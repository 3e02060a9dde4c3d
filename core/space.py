"""The thesis' sampler of the K-L-M meta-architecture (sections 3.2 and 3.3), read literally.

1. All triples K + L + M = cells - 2 with every block >= `min_block`, sorted by (K, L, M).
2. Keep those with max(K, L, M) - min(K, L, M) <= `balance` ("can not differ ... more than b").
3. From the balanced triple (6-6-6 for 20 cells) walk up the sorted list, then down from it
   again, dropping every triple whose Manhattan distance to the last KEPT one is < `min_distance`.
4. Drop triples whose exact parameter count (core.counting) at `params_channels` (default: the
   largest channel count) is >= `max_params`.
Each surviving triple is listed at every channel count.

With the defaults (43 triples within balance 6) this gives the 18 triples of Appendix A plus
5-5-8: the downward walk keeps it at distance exactly 4 from 5-7-6 (the last kept), and it has
3,203,002 parameters at 36 channels, under the cap (3-7-8 with 3,325,474 and 4-4-10 are the ones
the cap removes). No rule in the text removes 5-5-8, and dropping it changes nothing else (the next
kept triple, 4-10-4, is 6 away from 5-7-6), so it is kept, with `in_thesis=False`. `in_thesis` is True when the
configuration (K, L, M, channels) has a row in Appendix A and the genotype is SNAS mild (the
compact and edge_all forms count the same).

No torch import: counting is analytic, so sampling takes milliseconds.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Sequence

from core.arch import Arch
from core.counting import arch_cost
from core.schema import DEFAULT_GENOTYPE
from core.errors import InputError
from core.models import resolve_genotype

Triple = tuple[int, int, int]

APPENDIX_A = Path(__file__).with_name("reference") / "thesis_appendix_a.csv"
THESIS_GENOTYPES = ("SNAS_mild", "SNAS_mild_edge_all")


@dataclass(frozen=True)
class SampledArch:
    """One sampled configuration, with its exact counts."""

    K: int
    L: int
    M: int
    channels: int
    genotype: str
    params: int
    macs: int
    in_thesis: bool

    @property
    def triple(self) -> str:
        return f"{self.K}-{self.L}-{self.M}"

    @property
    def arch(self) -> Arch:
        return Arch(self.K, self.L, self.M, self.channels, self.genotype)

    def to_dict(self) -> dict[str, Any]:
        row = {"arch": self.triple}
        row.update(asdict(self))
        return row


@lru_cache(maxsize=1)
def thesis_configurations() -> frozenset[tuple[int, int, int, int]]:
    """(K, L, M, channels) of every row of Appendix A (shipped as core/reference/*.csv)."""
    with APPENDIX_A.open(newline="") as f:
        return frozenset((int(r["K"]), int(r["L"]), int(r["M"]), int(r["channels"])) for r in csv.DictReader(f))


def manhattan(a: Triple, b: Triple) -> int:
    """Equation 1 of the thesis."""
    return sum(abs(x - y) for x, y in zip(a, b))


def all_triples(cells: int, min_block: int) -> list[Triple]:
    """Every K-L-M with K + L + M = cells - 2 and each >= min_block, sorted by (K, L, M)."""
    n = cells - 2
    return [(k, l, n - k - l) for k in range(min_block, n + 1) for l in range(min_block, n - k + 1)
            if n - k - l >= min_block]


def within_balance(triples: Iterable[Triple], balance: int) -> list[Triple]:
    """Keep triples whose blocks differ by at most `balance` (inclusive)."""
    return [t for t in triples if max(t) - min(t) <= balance]


def balanced_start(triples: Sequence[Triple]) -> int:
    """Index of the most balanced triple (6-6-6 for 20 cells); ties: the middle one of them."""
    spread = min(max(t) - min(t) for t in triples)
    tied = [i for i, t in enumerate(triples) if max(t) - min(t) == spread]
    return tied[(len(tied) - 1) // 2]


def spread_out(triples: Sequence[Triple], start: int, min_distance: int) -> list[Triple]:
    """Walk up, then down, from `start`, dropping triples closer than `min_distance` to the last kept."""
    kept = [triples[start]]
    for direction in (range(start + 1, len(triples)), range(start - 1, -1, -1)):
        last = triples[start]
        for i in direction:
            if manhattan(triples[i], last) >= min_distance:
                kept.append(triples[i])
                last = triples[i]
    return sorted(kept)


def _check(cells: int, channels: Sequence[int], balance: int, min_distance: int, max_params: float,
           params_channels: int | None, min_block: int) -> None:
    if min_block < 1:
        raise InputError(f"--min-block must be >= 1 (got {min_block})")
    if cells - 2 < 3 * min_block:
        raise InputError(f"--cells {cells} leaves {cells - 2} normal cells, fewer than 3 blocks of {min_block}")
    if balance < 0:
        raise InputError(f"--balance must be >= 0 (got {balance})")
    if min_distance < 0:
        raise InputError(f"--min-distance must be >= 0 (got {min_distance})")
    if not max_params > 0:
        raise InputError(f"--max-params must be > 0 (got {max_params})")
    if not channels:
        raise InputError("--channels needs at least one channel count")
    bad = [c for c in channels if c < 1]
    if bad:
        raise InputError(f"channel counts must be >= 1 (got {bad[0]})")
    if params_channels is not None and params_channels < 1:
        raise InputError(f"--params-channels must be >= 1 (got {params_channels})")


def sample_triples(cells: int = 20, balance: int = 6, min_distance: int = 4, max_params: float = 3.3e6,
                   params_channels: int = 36, min_block: int = 2, genotype: str = DEFAULT_GENOTYPE) -> list[Triple]:
    """Steps 1-4 of the module docstring: the sampled K-L-M triples, sorted."""
    candidates = within_balance(all_triples(cells, min_block), balance)
    if not candidates:
        return []
    spread = spread_out(candidates, balanced_start(candidates), min_distance)
    return [t for t in spread if arch_cost(Arch(*t, params_channels, genotype)).params < max_params]


def sample(cells: int = 20, channels: Sequence[int] = (12, 24, 36), balance: int = 6, min_distance: int = 4,
           max_params: float = 3.3e6, params_channels: int | None = None, min_block: int = 2,
           genotype: str = DEFAULT_GENOTYPE) -> list[SampledArch]:
    """The sampled configurations: every kept triple at every channel count (triple-major order)."""
    channels = list(dict.fromkeys(channels))  # keep the order, drop repeats
    _check(cells, channels, balance, min_distance, max_params, params_channels, min_block)
    resolve_genotype(genotype)
    cap_channels = params_channels if params_channels is not None else max(channels)
    thesis = thesis_configurations() if genotype in THESIS_GENOTYPES else frozenset()
    rows = []
    for k, l, m in sample_triples(cells, balance, min_distance, max_params, cap_channels, min_block, genotype):
        for c in channels:
            cost = arch_cost(Arch(k, l, m, c, genotype))
            rows.append(SampledArch(k, l, m, c, genotype, cost.params, cost.macs, (k, l, m, c) in thesis))
    return rows
