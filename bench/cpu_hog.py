"""CPU-bound processes that inject a drift into a benchmark (bench/adaptive_vs_thesis.py,
bench/record_latency_series.py): each spins from `start_at` (at once when None) until `stop_at`,
both read on `clock` (the caller's: wall time, or the agent's perf_counter)."""

from __future__ import annotations

import multiprocessing
import os
import time
from typing import Callable


def spin(stop_at: float, nice: int = 0, start_at: float | None = None, clock: Callable[[], float] = time.time) -> None:
    if nice:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    while start_at is not None and clock() < start_at:
        time.sleep(0.01)
    x = 0
    while clock() < stop_at:
        x = (x * 1103515245 + 12345) % 2147483648


def start_hogs(count: int, stop_at: float, nice: int = 0, start_at: float | None = None,
               clock: Callable[[], float] = time.time) -> list[multiprocessing.Process]:
    hogs = [multiprocessing.Process(target=spin, args=(stop_at, nice, start_at, clock)) for _ in range(count)]
    for hog in hogs:
        hog.start()
    return hogs
