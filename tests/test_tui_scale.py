"""The home table with a big imported source (issue 12, scale), driven with Textual's Pilot.

A store with the study plus a 5,000-row imported source `nasb`: `s` reaches it; its rows are built,
filtered and sorted over ALL rows in a thread worker (not on the UI thread); the table draws only
the first `SHOWN_ROWS` of that order, says so in a line above it, and adds more as the cursor
nears the end; the front marker is over all rows; a filter and a header sort consider all rows.
The Pareto screen of the source has the same front and lists it first in a bounded table. The
study alone (57 rows) is drawn on the UI thread at once, as before.
Also: `views.mark_front`'s column path gives the flags of `views.front` (the path it replaced).
"""

from __future__ import annotations

import random
import threading

import pytest

from core.arch import parse_arch
from core.pareto import DEFAULT_OBJECTIVES, pareto_front
from core.reference import parse_results_csv
from core.store import Store
from core.study import import_results
from klmtui import views
from klmtui.app import KlmtuiApp
from klmtui.widgets.arch_table import SHOWN_ROWS
from tests.test_sources import csv_text
from tests.test_tui import sync, table_ids, wait_until

ROWS = 5000


@pytest.fixture
def big_store(tmp_path, initialised):
    """The initialised study plus `nasb`: 5,000 architectures (K, L, M up to 40), some figures
    missing, some points identical."""
    path = tmp_path / "runs.json"
    path.write_bytes(initialised)
    store = Store(path)
    import_results(store, parse_results_csv(csv_text(ROWS, seed=7, span=40), "nasb"))
    return path


def arch_order(arch_id: str):
    a = parse_arch(arch_id)
    return (a.K, a.L, a.M, a.channels)


def note(app) -> str:
    widget = app.screen.query_one("#rows-note")
    return str(widget.render()) if widget.display else ""


@sync
async def test_a_20k_style_source_is_built_off_the_ui_thread_bounded_and_sorted_over_all(big_store, monkeypatch):
    from klmtui.screens import home

    threads: list[tuple[str, bool]] = []
    real_arch_rows = home.arch_rows

    def recording(snapshot, source, predicted=False):
        threads.append((source, threading.current_thread() is threading.main_thread()))
        return real_arch_rows(snapshot, source, predicted=predicted)

    monkeypatch.setattr(home, "arch_rows", recording)
    app = KlmtuiApp(big_store, jobs_refresh_s=None)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: "figures: thesis" in (app.screen.sub_title or ""), what="the study")
        table = app.screen.query_one("#arch-table")
        assert table.row_count == len(table.rows_by_id) == 57 and note(app) == ""  # the study: as before
        assert set(threads) == {("thesis", True)}

        await pilot.press("s")  # measured, thesis, nasb: from thesis, the next is nasb
        await wait_until(pilot, lambda: "figures: nasb" in app.screen.sub_title, what="the big source")
        assert ("nasb", False) in threads and ("nasb", True) not in threads  # read in the worker
        snapshot = app.snapshot
        every = {a["id"] for a in snapshot.table("architectures")} | {r["arch_id"] for r in snapshot.figures["nasb"]}
        total = len(every)
        assert total > ROWS and f"{total:,} architectures" in app.screen.sub_title
        assert table.total == len(table.rows_by_id) == total
        assert table.row_count == SHOWN_ROWS
        assert note(app).startswith(f"{SHOWN_ROWS:,} of {total:,} shown")
        # the first rows of the order (K-L-M, then C) over ALL rows
        assert table_ids(app) == sorted(every, key=arch_order)[:SHOWN_ROWS]
        # the front marker is the 4-objective front over all of the source's rows
        front = {r["arch_id"] for r in pareto_front(snapshot.figures["nasb"], DEFAULT_OBJECTIVES).front}
        marked = {i for i, r in table.rows_by_id.items() if r.on_front}
        assert marked == front and not front <= set(table_ids(app))  # some starred rows are not drawn
        drawn_stars = {i for i in table_ids(app) if str(table.get_row(i)[3]) == "★"}
        assert drawn_stars == front & set(table_ids(app))

        # space selects one row by changing one cell: the rows stay as they are
        first = table_ids(app)
        await pilot.press("space")
        assert table.selected == {first[0]} and str(table.get_row(first[0])[0]) == "✓"
        assert table_ids(app) == first and table.cursor_row == 1

        # a filter narrows over all rows (to more than are drawn: still bounded, still in order)
        await pilot.press("slash", *"@36", "enter")
        at36 = sorted((i for i in every if "@36" in i), key=arch_order)  # no status, no @360
        await wait_until(pilot, lambda: table.total == len(at36), what="the @36 filter")
        assert SHOWN_ROWS < len(at36) < total
        assert table_ids(app) == at36[:SHOWN_ROWS] and f"{len(at36):,} architectures" in app.screen.sub_title
        assert note(app).startswith(f"{SHOWN_ROWS:,} of {len(at36):,} shown")
        # ... to a row that was never drawn (the last of the order)
        last = sorted(every, key=arch_order)[-1]
        app.screen.query_one("#filter").value = last  # as if typed (each keystroke would be a redraw)
        await wait_until(pilot, lambda: table_ids(app) == [last], what="the one-row filter")
        assert note(app) == "" and table.row_count == 1
        await pilot.press("escape")
        await wait_until(pilot, lambda: table.total == total, what="the filter cleared")

        # a header sorts all rows (in the worker): accuracy up, then down; missing figures last
        accuracies = sorted(r["accuracy"] for r in snapshot.figures["nasb"] if r.get("accuracy") is not None)
        shown_accuracy = lambda: [table.rows_by_id[i].accuracy for i in table_ids(app)]  # noqa: E731
        for expected in (accuracies[:SHOWN_ROWS], accuracies[::-1][:SHOWN_ROWS]):
            column = table.columns["accuracy"]
            table.post_message(table.HeaderSelected(table, column.key, 5, column.label))
            await wait_until(pilot, lambda: shown_accuracy() == expected, what="the sort")
        assert table.sort_column == "accuracy" and table.sort_reverse
        table.sort_by("accuracy")  # up again: the rows without an accuracy stay last
        await wait_until(pilot, lambda: shown_accuracy() == accuracies[:SHOWN_ROWS], what="the sort back")
        assert [r.accuracy for r in list(table.rows_by_id.values())[-5:]] == [None] * 5

        # the cursor nearing the last drawn row draws the next rows of the order
        before = table_ids(app)
        assert table.row_count == SHOWN_ROWS
        await pilot.press(*["pagedown"] * 3)
        await wait_until(pilot, lambda: table.row_count >= 2 * SHOWN_ROWS, what="more rows")
        await pilot.pause(0.2)
        drawn = table.row_count
        assert table_ids(app)[:SHOWN_ROWS] == before and drawn % SHOWN_ROWS == 0
        assert [table.rows_by_id[i].accuracy for i in table_ids(app)] == accuracies[:drawn]
        assert note(app).startswith(f"{drawn:,} of {total:,} shown")
        # new store content (a run elsewhere) redraws the same view: the rows drawn stay drawn
        top = table_ids(app)[0]
        Store(big_store).insert("runs", {"id": "t-00000b16", "arch_id": top, "arch": top.split("@")[0],
                                         "channels": int(top.split("@")[1]), "seed": 0, "profile": "quick",
                                         "epochs": 5, "epoch": 2, "status": "running", "executor": "local",
                                         "created": "2026-01-01T00:00:00Z"})
        await wait_until(pilot, lambda: table.rows_by_id[top].status == "running 2/5", what="the new snapshot")
        assert table.row_count == drawn and table.total == total
        # a new filter starts again from the first rows
        app.screen.query_one("#filter").value = "@36"
        await wait_until(pilot, lambda: table.total == len(at36), what="the @36 filter again")
        assert table.row_count == SHOWN_ROWS
        app.screen.query_one("#filter").value = ""

        # the Pareto screen of the source: the same front; its table lists the front first, bounded too
        await pilot.press("p")
        await wait_until(pilot, lambda: getattr(app.screen, "result", None) is not None, what="the Pareto screen")
        pareto_table = app.screen.query_one("#front-table")
        assert {r["id"] for r in app.screen.result.front} == front
        assert pareto_table.row_count == max(SHOWN_ROWS, len(front)) < len(app.screen.result.rows)
        assert {row.key.value for row in pareto_table.ordered_rows[:len(front)]} == front
        assert "The table lists" in str(app.screen.query_one("#front-description").render())
        await pilot.press("escape")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "HomeScreen", what="home again")

        # back to the study: drawn at once on the UI thread, no note
        await pilot.press("s", "s")
        await wait_until(pilot, lambda: "figures: thesis" in app.screen.sub_title, what="the thesis again")
        study = {a["id"] for a in snapshot.table("architectures")} | {top}  # and the run's architecture
        assert table.row_count == len(study) and note(app) == "" and threads[-1] == ("thesis", True)


def random_rows(rnd: random.Random, n: int) -> list[views.ArchRow]:
    """Rows with floats, ints, ties, infinities, and figures missing (or a whole column missing)."""
    columns = rnd.sample(["accuracy", "latency_s", "power_w", "energy_mj", "ref_params_m", "macs"], rnd.randint(1, 6))
    rows = []
    for i in range(n):
        row = views.ArchRow(id=f"{i % (n - 3) if n > 3 else i}-1-1@8", arch="1-1-1", channels=8,
                            params=rnd.choice([None, rnd.randint(1, 10**6)]), macs=None, in_thesis=None)
        for name in columns:
            if name == "macs":
                row.macs = rnd.choice([None, 10**6, rnd.randint(1, 10**9)])
            else:
                setattr(row, name, rnd.choice([None, float("inf"), rnd.randint(1, 5), 2.5, rnd.uniform(0, 10),
                                               rnd.uniform(0, 10)]))
        rows.append(row)
    return rows


def test_mark_front_gives_the_flags_of_front():
    """The column path (one column per objective into plain_front) against `front` over row dicts,
    the path it replaced: random rows, duplicate ids, several objective sets, 5k rows once."""
    from core import pareto

    rnd = random.Random(12)
    cases = [(random_rows(rnd, rnd.randint(1, 60)), rnd.choice([DEFAULT_OBJECTIVES, ("accuracy:max", "latency_s:min"),
                                                                  ("power_w",), ("macs_m:min", "energy_mj:min",
                                                                                 "params_m:min", "accuracy:max")]))
             for _ in range(150)]
    cases.append((random_rows(rnd, 5000), DEFAULT_OBJECTIVES))
    cases.append(([], DEFAULT_OBJECTIVES))
    for rows, objectives in cases:
        specs = [str(o) for o in objectives]
        views.mark_front(rows, specs)
        new = [r.on_front for r in rows]
        for r in rows:
            r.on_front = False
        kept, _ = pareto.available_objectives([r.as_dict() for r in rows], [pareto.parse_objective(o) for o in specs])
        if kept:
            views.front(rows, [str(o) for o in kept])
        assert new == [r.on_front for r in rows], (len(rows), specs)
    assert any(r.on_front for r in cases[-2][0])
