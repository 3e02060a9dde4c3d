"""The home table with a big imported source: switching to it (`s`), a filter keystroke, a sort.

Builds a temp store: the initialised study plus `nasb`, N generated rows (`bench/store_scale.py`'s
CSV, imported with `core.study.import_results`). Runs the real app headless (Textual's Pilot,
120x36) and measures, per step, the time until the table shows the new rows and the event loop's
worst stall meanwhile (a 10 ms ticker's largest gap: how long a key press could wait).

- klmtui: the rows are built, filtered and sorted in a thread worker; the table draws the first
  `SHOWN_ROWS` of the order (klmtui/widgets/arch_table.py);
- baseline: the same code with the bound lifted (`SHOWN_ROWS` = 10**9): every row is built and
  drawn on the UI thread, as the home table did before (apart from the faster `mark_front`).

    .venv/bin/python bench/tui_big_source.py [--rows 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))


def make_store(folder: Path, rows: int) -> Path:
    from store_scale import write_csv

    from core.reference import read_results_csv
    from core.store import Store
    from core.study import import_results, init_study

    store = Store(folder / "runs.json")
    init_study(store)
    write_csv(folder / "nasb.csv", rows)
    import_results(store, read_results_csv(folder / "nasb.csv", "nasb"))
    return store.path


async def until(cond, timeout: float = 600.0) -> None:
    deadline = time.perf_counter() + timeout
    while not cond():
        if time.perf_counter() > deadline:
            raise TimeoutError("the table did not show the rows")
        await asyncio.sleep(0.005)


class Ticker:
    """The event loop's worst lateness: a 10 ms interval timer's largest gap since `take`."""

    def __init__(self, app) -> None:
        self.last: float | None = None
        self.worst = 0.0
        app.set_interval(0.01, self.tick)

    def tick(self) -> None:
        now = time.perf_counter()
        if self.last is not None:
            self.worst = max(self.worst, now - self.last)
        self.last = now

    def take(self) -> float:
        worst, self.worst, self.last = self.worst, 0.0, time.perf_counter()  # a stall from now on counts
        return worst


async def measure(path: Path) -> dict[str, tuple[float, float]]:
    from klmtui.app import KlmtuiApp

    app = KlmtuiApp(path, jobs_refresh_s=None)
    out: dict[str, tuple[float, float]] = {}
    async with app.run_test(size=(120, 36)) as pilot:
        await until(lambda: "figures: thesis" in (app.screen.sub_title or ""))
        ticker = Ticker(app)
        await asyncio.sleep(0.3)
        table = app.screen.query_one("#arch-table")

        async def step(name: str, act, done) -> None:
            ticker.take()
            start = time.perf_counter()
            await act()
            await until(done)
            shown = time.perf_counter() - start
            await asyncio.sleep(0.1)  # the ticker's first tick after a stall measures it
            out[name] = (shown, ticker.take())
            await asyncio.sleep(0.1)

        await step("switch (s)", lambda: pilot.press("s"), lambda: "figures: nasb" in app.screen.sub_title)

        def typed(text: str):
            async def act():
                app.screen.query_one("#filter").value = text  # what one keystroke changes

            return act, lambda: app.screen._view == ("nasb", False, text.split()) and not app.screen._pending

        await step("filter '@'", *typed("@"))  # the first key of @24: every row still passes

        async def sort_key():
            column = table.columns["accuracy"]
            table.post_message(table.HeaderSelected(table, column.key, 5, column.label))

        def sorted_by_accuracy() -> bool:
            shown = [table.rows_by_id[row.key.value].accuracy for row in table.ordered_rows[:20]]
            return table.sort_column == "accuracy" and None not in shown and shown == sorted(shown)

        await step("sort Acc %", sort_key, sorted_by_accuracy)
        await step("filter '@24'", *typed("@24"))
    return out


def run(path: Path, bounded: bool) -> dict[str, tuple[float, float]]:
    from klmtui.screens import home
    from klmtui.widgets import arch_table

    bound = arch_table.SHOWN_ROWS
    if not bounded:
        arch_table.SHOWN_ROWS = home.SHOWN_ROWS = 10**9
    try:
        return asyncio.run(measure(path))
    finally:
        arch_table.SHOWN_ROWS = home.SHOWN_ROWS = bound


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    random.seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = make_store(Path(tmp), args.rows)
        results: dict[str, dict[str, list]] = {"klmtui": {}, "baseline": {}}
        for _ in range(args.repeats):  # interleaved: the shared VM's speed moves
            for name, bounded in (("klmtui", True), ("baseline", False)):
                for stepname, value in run(path, bounded).items():
                    results[name].setdefault(stepname, []).append(value)
    print(f"{args.rows} imported rows, 120x36, median of {args.repeats}: time until shown / worst UI stall")
    for stepname in results["klmtui"]:
        new = [statistics.median(v) for v in zip(*results["klmtui"][stepname])]
        old = [statistics.median(v) for v in zip(*results["baseline"][stepname])]
        print(f"  {stepname:13} klmtui {new[0]:6.2f} s / {new[1]:5.2f} s   baseline {old[0]:6.2f} s / {old[1]:5.2f} s"
              f"   ({old[0] / new[0]:.1f}x / {old[1] / new[1]:.1f}x)")


if __name__ == "__main__":
    main()
