"""Results CSV parsing (issue 12 item 10): the row-by-row parser against the whole-column fast path.

    .venv/bin/python bench/results_csv.py [--rows 100000] [--repeat 3] [--out result.json]

Writes a NAS-Bench-sized CSV (bench/store_scale.py's `write_csv`: distinct K-L-M@C, random
figures), then times, alternately and `--repeat` times each, in this one process with the
garbage collector paused as `read_results_csv` pauses it:

- old: the row-by-row path alone (`_csv_header` + `_checked_records`: csv.DictReader and the
  per-cell checks, the loop `parse_results_csv` was before the fast path, now kept to word the
  refusal of a bad file),
- new: `parse_results_csv` (the fast path; it falls back to the old loop only for a file it
  cannot take whole),
- read: `read_results_csv` on the file (what `import-results` calls: read, decode, parse),

then both on the same file with its last cell made `nan` (refused: the fast path gives up at that
column and the row-by-row path words the message), checks that old and new returned equal
records and messages, and prints one JSON object: the best seconds of each, the ratio old/new
(goal >= 3) and the load average. Figures (2026-12-01, the shared 2-core VM):
see README, "Scale".
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from core.errors import InputError  # noqa: E402
from core.reference import _checked_records, _csv_header, parse_results_csv, read_results_csv  # noqa: E402
from core.store_check import gc_paused  # noqa: E402
from store_scale import write_csv  # noqa: E402

GOAL = 3.0  # old / new at 100k rows (issue 12 item 10)


def timed(fn) -> tuple[float, object]:
    with gc_paused():
        start = time.perf_counter()
        result = fn()
        return time.perf_counter() - start, result


def _refusal(parse) -> str | None:
    try:
        parse()
    except InputError as exc:
        return str(exc)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="Also write the JSON result here.")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        csv_file = Path(tmp) / "bench.csv"
        write_csv(csv_file, args.rows)
        text = csv_file.read_text(encoding="utf-8")
        name = str(csv_file)
        old_s, new_s, read_s = float("inf"), float("inf"), float("inf")
        same = True
        for _ in range(args.repeat):  # alternate, so a load spike does not favour one side
            o, old = timed(lambda: _checked_records(text, _csv_header(text, name), "bench", name, None))
            n, new = timed(lambda: parse_results_csv(text, "bench", name=name))
            same = same and old == new
            old = new = None  # freed before the next run
            r, _records = timed(lambda: read_results_csv(csv_file, "bench"))
            _records = None
            old_s, new_s, read_s = min(old_s, o), min(new_s, n), min(read_s, r)
        # a refused file (its last cell NaN): the fast path gives up, the row-by-row path words it
        bad = text.rstrip("\n").rsplit(",", 1)[0] + ",nan\n"
        refused_old_s, refused_new_s = float("inf"), float("inf")
        for _ in range(args.repeat):
            o, old_error = timed(lambda: _refusal(lambda: _checked_records(bad, _csv_header(bad, name), "b", name, None)))
            n, new_error = timed(lambda: _refusal(lambda: parse_results_csv(bad, "b", name=name)))
            same = same and old_error == new_error and "nan" in str(new_error)
            refused_old_s, refused_new_s = min(refused_old_s, o), min(refused_new_s, n)
    result = {
        "rows": args.rows,
        "old_s": round(old_s, 3),
        "new_s": round(new_s, 3),
        "read_results_csv_s": round(read_s, 3),
        "ratio": round(old_s / new_s, 2),
        "goal_ratio": GOAL,
        "met": old_s / new_s >= GOAL,
        "refused_old_s": round(refused_old_s, 3),
        "refused_new_s": round(refused_new_s, 3),
        "same_records_and_messages": same,
        "load_average": [round(load_start, 2), round(os.getloadavg()[0], 2)],
    }
    text_out = json.dumps(result)
    print(text_out)
    if args.out:
        args.out.write_text(text_out + "\n")


if __name__ == "__main__":
    main()
