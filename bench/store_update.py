"""One status update with 10,000 records in the store: klmtui's Store next to plain TinyDB.

    .venv/bin/python bench/store_update.py [--records 10000] [--repeat 30]

Prints the median time of one `update(runs, id, status=...)` for:
- Store, warm: a long-lived process (TUI, training run) whose last read is still current;
- Store, cold: a fresh process's first write, or the first write after another process wrote
  (parse + full serialisation);
- TinyDB with its plain JSONStorage (no lock, no atomic replace, not process-safe): the baseline;
and the ratios, plus the file size. Target: <= 50 ms for one status update (warm and cold).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.store import Store  # noqa: E402


def run_record(i: int) -> dict:
    """A realistic `runs` record (the shape of the team brief)."""
    rid = f"t-{i:08x}"
    return {
        "id": rid, "arch_id": "6-6-6@36", "arch": "6-6-6", "K": 6, "L": 6, "M": 6, "channels": 36,
        "genotype": "SNAS_mild", "seed": i % 10, "profile": "paper", "epochs": 600, "epoch": 600,
        "status": "done", "accuracy": 97.01, "best_accuracy": 97.12, "checkpoint": f"runs/{rid}/model.pt",
        "executor": "local", "pid": 12345, "host": "gpu-box", "created": "2026-11-24T05:00:00Z",
        "started": "2026-11-24T05:00:01Z", "finished": "2026-11-24T06:00:00Z", "error": None,
        "config": {"lr": 0.025, "batch_size": 96, "cutout": True, "drop_path_prob": 0.2, "auxiliary_weight": 0.4},
        "run_dir": f"runs/{rid}",
    }


def median_ms(fn, repeat: int) -> float:
    times = []
    for i in range(repeat):
        t0 = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    statuses = ("running", "done")

    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent) as tmp:
        path = Path(tmp) / "runs.json"
        store = Store(path)
        with store.transaction() as tx:
            for i in range(args.records):
                tx.insert("runs", run_record(i))
        size = path.stat().st_size
        target = f"t-{args.records // 2:08x}"

        warm = median_ms(lambda i: store.update("runs", target, status=statuses[i % 2]), args.repeat)
        cold = median_ms(lambda i: Store(path).update("runs", target, status=statuses[i % 2]), args.repeat)
        assert Store(path).count("runs") == args.records

        from tinydb import Query, TinyDB

        plain_path = Path(tmp) / "plain.json"
        plain_path.write_bytes(path.read_bytes())
        db = TinyDB(plain_path)
        table = db.table("runs")
        q = Query()
        plain = median_ms(lambda i: table.update({"status": statuses[i % 2]}, q.id == target), args.repeat)
        db.close()

    print(f"records: {args.records:,}   file: {size / 1e6:.2f} MB   median of {args.repeat} updates")
    print(f"  klmtui Store, warm (same process kept the file):   {warm:7.1f} ms   ratio vs TinyDB {warm / plain:.2f}x")
    print(f"  klmtui Store, cold (file changed / new process):   {cold:7.1f} ms   ratio vs TinyDB {cold / plain:.2f}x")
    print(f"  TinyDB JSONStorage (no lock, not atomic, unsafe):  {plain:7.1f} ms")
    print("  Store = lock + read + temp file + fsync + rename + fsync(dir); target <= 50 ms")
    print(f"  cpu count {os.cpu_count()}, python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
