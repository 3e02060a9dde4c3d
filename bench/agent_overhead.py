"""Benchmark: what the agent's own bookkeeping costs next to what it measures.

The agent prints one JSON line per timed batch and parses every tegrastats line in a thread;
neither may distort the latency it reports. Prints, side by side (medians):
- one forward pass of a small network (`--arch`, `--batch`) timed the agent's way (SyncTimer),
- one latency event written (Emitter, to /dev/null),
- one tegrastats line parsed (remote.agent.tegrastats.parse, real fixture lines),
- the adaptive stop check after one more sample at n = 1350 (the thesis' sample count),
and the ratios of each to the forward pass. A Jetson Nano's forward pass of a thesis network at
batch 64 is 0.4-2.1 s, so the real ratios there are ~100x smaller than these CPU ones.

    .venv/bin/python bench/agent_overhead.py [--arch 1-1-1@8] [--batch 4] [--repeat 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="1-1-1@8")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()

    import torch

    from core.arch import parse_arch
    from core.latency import AdaptiveStop
    from core.network import Network
    from remote.agent.events import Emitter
    from remote.agent.timing import SyncTimer
    from remote.agent.tegrastats import parse

    torch.set_num_threads(1)
    arch = parse_arch(args.arch)
    model = Network(arch.channels, 10, arch.K, arch.L, arch.M, arch.genotype, auxiliary=False, drop_none=True).eval()
    timer = SyncTimer(torch, model, args.batch, torch.device("cpu"))
    for _ in range(5):
        timer()
    forward = median_time(timer, args.repeat)

    emit = Emitter(open(os.devnull, "w"))
    event = median_time(lambda: emit("latency", **{"pass": "latency", "run": 3, "batch": 7, "seconds": 0.01234,
                                                   "warmup": False}), args.repeat * 10)
    fixture = REPO.parent / "shared" / "fixtures" / "tegrastats.txt"
    lines = [l.split("|", 2)[2].strip() for l in fixture.read_text().splitlines() if l.strip() and not l.startswith("#")]
    parse_one = median_time(lambda: [parse(l) for l in lines], args.repeat) / len(lines)

    stop = AdaptiveStop(0.01, 30, 10 ** 6)
    for i in range(1350):
        stop.add(1.0 + (i % 17) * 1e-3)
    adaptive = median_time(lambda: (stop.add(1.0), stop.done()), 50)

    print(f"forward pass {args.arch} batch {args.batch} (SyncTimer): {forward * 1e3:9.3f} ms   1.0")
    for name, value in (("latency event written", event), ("tegrastats line parsed", parse_one),
                        ("adaptive check at n=1350", adaptive)):
        print(f"{name:<39} {value * 1e3:9.3f} ms   {value / forward:.4f} x forward")


if __name__ == "__main__":
    main()
