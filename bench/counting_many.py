"""Benchmark: exact params/MACs of 100k distinct K-L-M@C, per architecture vs core.counting.count_many.

The architectures are drawn like bench/store_scale.py's table (K, L, M in 1..64, channels 8..512
step 8, distinct). Side by side, best of --repeat (interleaved), every cache emptied before each
timing:

- `per_arch_loop_s`: the cell-by-cell exact path once per architecture, as count_params and
  count_macs ran before count_many (`_registered_cost`, one network walk per architecture);
- `count_many_s`: the batch call; `count_params_loop_s`: today's count_params + count_macs per
  architecture (they read count_many's tables).

Prints one JSON object; `identical` says all three gave the same integers for every architecture.

    .venv/bin/python bench/counting_many.py [--archs 100000] [--repeat 3] [--genotypes SNAS_mild,SNAS_mild_edge_all]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core import counting  # noqa: E402
from core.arch import Arch  # noqa: E402


def distinct_archs(n: int, genotypes: list[str], seed: int = 0) -> list[Arch]:
    rnd = random.Random(seed)
    seen: dict[tuple, None] = {}
    while len(seen) < n:
        seen[(rnd.randint(1, 64), rnd.randint(1, 64), rnd.randint(1, 64), rnd.choice(range(8, 513, 8)),
              rnd.choice(genotypes))] = None
    return [Arch(*key) for key in seen]


def cold() -> None:
    counting._registered_cost.cache_clear()
    counting._block_tables.cache_clear()
    counting.op_cost.cache_clear()
    counting._CELL_CACHE.clear()


def per_arch_loop(archs: list[Arch]) -> list[tuple[int, int]]:
    cost = counting._registered_cost
    return [(cost(a.channels, a.K, a.L, a.M, a.genotype).params, cost(a.channels, a.K, a.L, a.M, a.genotype).macs)
            for a in archs]


def count_params_loop(archs: list[Arch]) -> list[tuple[int, int]]:
    return [(counting.count_params(a), counting.count_macs(a)) for a in archs]


def best_of(repeat: int, runs: dict, archs: list[Arch]) -> tuple[dict[str, float], dict[str, list]]:
    """Best time of each run, the runs interleaved (this shared VM's speed moves within minutes)."""
    best, results = {name: float("inf") for name in runs}, {}
    for _ in range(repeat):
        for name, run in runs.items():
            cold()
            start = time.perf_counter()
            results[name] = run(archs)
            best[name] = min(best[name], time.perf_counter() - start)
    return best, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--genotypes", default="SNAS_mild", help="Comma-separated, drawn at random per architecture.")
    args = parser.parse_args()
    archs = distinct_archs(args.archs, args.genotypes.split(","))
    load = os.getloadavg()[0]
    seconds, results = best_of(args.repeat, {"loop": per_arch_loop, "many": counting.count_many,
                                              "single": count_params_loop}, archs)
    loop_s, many_s, single_s = seconds["loop"], seconds["many"], seconds["single"]
    expected, got, single = results["loop"], results["many"], results["single"]
    print(json.dumps({
        "archs": len(archs),
        "channels_genotype_pairs": len({(a.channels, a.genotype) for a in archs}),
        "per_arch_loop_s": round(loop_s, 3),
        "count_many_s": round(many_s, 3),
        "count_params_loop_s": round(single_s, 3),
        "ratio_per_arch_loop_to_count_many": round(loop_s / many_s, 1),
        "ratio_per_arch_loop_to_count_params_loop": round(loop_s / single_s, 1),
        "goal": "count_many >= 10x faster than the per-architecture loop",
        "goal_met": loop_s / many_s >= 10,
        "identical": got == expected == single,
        "load_avg_1min": [round(load, 2), round(os.getloadavg()[0], 2)],
    }))


if __name__ == "__main__":
    main()
