"""Benchmark: analytic counting (`klmtui space`) against building every sampled model with torch.

Prints, side by side: the wall time of `klmtui space --json` as a user runs it (a fresh process,
torch never imported), the in-process time of `core.space.sample()`, and the time of building
all sampled networks with torch and counting their parameters (numel), as ratios.

    .venv/bin/python bench/space_counting.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def time_cli(repeat: int) -> tuple[float, int]:
    best, rows = float("inf"), 0
    for _ in range(repeat):
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "klmtui", "space", "--json"], capture_output=True,
                             text=True, check=True, cwd=REPO)
        best = min(best, time.perf_counter() - start)
        rows = len(json.loads(out.stdout))
    return best, rows


def time_sample(repeat: int) -> float:
    from core.counting import _block_tables, _registered_cost, op_cost
    from core.space import sample

    best = float("inf")
    for _ in range(repeat):
        _registered_cost.cache_clear()
        _block_tables.cache_clear()
        op_cost.cache_clear()
        start = time.perf_counter()
        sample()
        best = min(best, time.perf_counter() - start)
    return best


def time_torch(rows) -> tuple[float, float]:
    """(seconds to import torch, seconds to build every sampled model and count numel)."""
    start = time.perf_counter()
    import torch

    from core.models import build_network

    imported = time.perf_counter() - start
    torch.set_num_threads(1)
    start = time.perf_counter()
    for row in rows:
        net = build_network(row.arch)
        count = sum(p.numel() for n, p in net.named_parameters() if not n.startswith("auxiliary_head."))
        assert count == row.params, (row.arch.id, count, row.params)
    return imported, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from core.space import sample

    cli_s, n_rows = time_cli(args.repeat)
    sample_s = time_sample(args.repeat)
    import_s, build_s = time_torch(sample())
    torch_total = import_s + build_s
    print(f"configurations sampled:                       {n_rows}")
    print(f"klmtui space --json (fresh process, analytic): {cli_s:8.3f} s")
    print(f"core.space.sample() in process (analytic):     {sample_s * 1e3:8.1f} ms")
    print(f"torch: import {import_s:.2f} s + build {n_rows} models and count numel {build_s:.2f} s = {torch_total:.2f} s")
    print(f"ratio torch build / klmtui space:  {torch_total / cli_s:8.1f}x")
    print(f"ratio torch build / sample():      {build_s / sample_s:8.1f}x  (counts identical for all {n_rows})")


if __name__ == "__main__":
    main()
