"""Benchmark: parsing hostile tegrastats lines, the bounded patterns against the old unbounded one.

The old CPU pattern `CPU \\[([^\\]]*)\\]` rescans the rest of the line from every `CPU [` when no
`]` follows: quadratic. Prints, for lines of growing size made of `CPU [1%@2,` repeated (no `]`),
the time of remote.agent.tegrastats.parse() and of the old pattern alone, and their ratio; and the
time to parse a real JetPack 7.2 line (the fixture) for scale.

    .venv/bin/python bench/tegrastats_parse.py [--sizes 10000,30000,100000]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

OLD_CPU_RE = re.compile(r"(?<![\w])CPU \[([^\]]*)\]")


def seconds(fn, repeat=3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    from remote.agent.tegrastats import parse
    from tests.fake_tegrastats import read_fixture

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,30000,100000", help="line lengths in characters")
    args = ap.parse_args()
    real = dict((n, l) for n, _, l in read_fixture(REPO / "tests/fixtures/tegrastats_families.txt"))["thor_jp72"]
    print(f"real JetPack 7.2 line ({len(real)} chars): parse {seconds(lambda: parse(real), 50) * 1e6:.0f} us")
    print(f"{'chars':>8} {'parse() s':>10} {'old CPU pattern s':>18} {'old / new':>10}")
    for size in (int(s) for s in args.sizes.split(",")):
        line = "RAM 1/2MB " + ("CPU [1%@2," * (size // 10 + 1))[:size]
        new = seconds(lambda: parse(line))
        old = seconds(lambda: OLD_CPU_RE.search(line), 1)
        print(f"{len(line):>8} {new:>10.4f} {old:>18.4f} {old / new:>9.0f}x")


if __name__ == "__main__":
    main()
