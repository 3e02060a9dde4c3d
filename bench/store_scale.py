"""Store scale (issue 12): 100k imported result rows, each command as a ratio to `json.load` of the file.

    .venv/bin/python bench/store_scale.py [--rows 100000] [--out result.json]

Builds a store in a temp folder (`klmtui init` + `import-results` of a generated NAS-Bench-sized
CSV: distinct K-L-M@C, random figures), then times the real commands as subprocesses
(`import-results`, `status --json`, `pareto --source NAME --json`, `device add`) and, in the same
run, the baseline: a Python process that does `json.load` of the same study as one file, in the
layout runs.json had before imported sources got files of their own (`write_one_file`; interpreter
start included on both sides, so the ratio is command vs. "just read the data"). Also reported:
`json.load` of the files the store has now (runs.json + the source file, much smaller). Prints one
JSON object: seconds per command, the baselines, the ratios, the file sizes. Goals from the issue:
import <= 10 s, status and pareto <= 1 s, a small write (device add) <= 0.2 s.

Figures (2026-12-01 16:51 UTC, the quiet shared 2-core VM, load 1.5; baseline 0.91-1.06 s):

    100k rows            import        status        pareto        device add
    one file (14:39)     13.6 s 11.1x  3.6 s 3.0x    3.9 s 3.2x    0.46 s 0.38x
    source files         1.6-1.8 s     0.94-0.95 s   0.48-0.60 s   0.12-0.17 s
                         1.7x          0.89-1.04x    0.46-0.65x    0.12-0.19x

README, "Scale".
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOALS = {"import": 10.0, "status": 1.0, "pareto": 1.0, "device_add": 0.2}  # seconds at 100k rows (issue 12)


def write_csv(path: Path, rows: int, seed: int = 0) -> None:
    rnd = random.Random(seed)
    seen: set[tuple[int, int, int, int]] = set()
    lines = ["K,L,M,channels,accuracy,params_m,latency_s,power_w"]
    while len(seen) < rows:
        key = (rnd.randint(1, 64), rnd.randint(1, 64), rnd.randint(1, 64), rnd.choice(range(8, 513, 8)))
        if key in seen:
            continue
        seen.add(key)
        lines.append(f"{key[0]},{key[1]},{key[2]},{key[3]},{rnd.uniform(80, 98):.3f},{rnd.uniform(0.1, 30):.4f},"
                     f"{rnd.uniform(0.01, 5):.4f},{rnd.uniform(2, 10):.3f}")
    path.write_text("\n".join(lines) + "\n")


def write_one_file(store: Path, out: Path) -> None:
    """The same study as ONE TinyDB-layout file, the way runs.json held imported rows before they got
    files of their own (a `results` record per row, an `architectures` record per architecture the
    store did not know): what the baseline `json.load`s, so that ratios compare with earlier rounds."""
    sys.path.insert(0, str(REPO))
    from core import sources
    from core.store import Store

    view = Store(store).view()
    tables = {"_meta": {1: view.meta()}, **{name: dict(enumerate(view.rows(name), 1)) for name in (
        "architectures", "runs", "benchmarks", "devices", "results")}}
    known = {a["id"] for a in tables["architectures"].values()}
    for manifest in sources.manifests(view).values():
        table = sources.load(view, manifest)
        for i, record in enumerate(table.records()):
            tables["results"][len(tables["results"]) + 1] = record
            if record["arch_id"] not in known:
                tables["architectures"][len(tables["architectures"]) + 1] = table.architecture(i)
    with open(out, "w") as fh:  # one record per line, as core.store writes
        fh.write("{")
        for t, (name, records) in enumerate(tables.items()):
            fh.write(("," if t else "") + f"\n{json.dumps(name)}: {{")
            fh.write(",".join(f"\n{json.dumps(str(k))}: {json.dumps(r)}" for k, r in records.items()))
            fh.write("}")
        fh.write("\n}\n")


def timed(argv: list[str], cwd: Path) -> float:
    env = dict(os.environ, PYTHONPATH=str(REPO), KLMTUI_HOME=str(cwd / "home"))
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[2:])} failed: {proc.stderr.strip()[-300:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=None, help="Also write the JSON result here.")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store = folder / "runs.json"
        csv_file = folder / "bench.csv"
        write_csv(csv_file, args.rows)
        klmtui = [sys.executable, "-m", "klmtui", "--store", str(store)]
        timed(klmtui + ["init"], folder)
        seconds = {"import": timed(klmtui + ["import-results", str(csv_file), "--source", "bench"], folder)}
        one_file = folder / "one-file.json"
        write_one_file(store, one_file)
        baseline = min(timed([sys.executable, "-c", f"import json; json.load(open({str(one_file)!r}))"], folder)
                       for _ in range(3))
        files = [store, *sorted((folder / "runs.sources").glob("*.json"))]
        now_load = min(timed([sys.executable, "-c", "import json\n" + "".join(
            f"json.load(open({str(f)!r}))\n" for f in files)], folder) for _ in range(3))
        seconds["status"] = min(timed(klmtui + ["status", "--json"], folder) for _ in range(2))
        seconds["pareto"] = min(timed(klmtui + ["pareto", "--source", "bench", "--json"], folder) for _ in range(2))
        seconds["device_add"] = min(timed(klmtui + ["device", "add", f"nano{n}", "--host", f"192.0.2.{10 + n}",
                                                    "--user", "u"], folder) for n in range(3))
        result = {
            "rows": args.rows,
            "one_file_mb": round(one_file.stat().st_size / 1e6, 1),
            "store_mb": round(store.stat().st_size / 1e6, 2),
            "source_files_mb": round(sum(f.stat().st_size for f in files[1:]) / 1e6, 1),
            "json_load_s": round(baseline, 3),
            "json_load_of_the_new_files_s": round(now_load, 3),
            "seconds": {k: round(v, 3) for k, v in seconds.items()},
            "ratio_to_json_load": {k: round(v / baseline, 2) for k, v in seconds.items()},
            "goals_s": GOALS,
            "goals_met": {k: seconds[k] <= GOALS[k] for k in GOALS},
            "load_average": [round(load_start, 2), round(os.getloadavg()[0], 2)],  # at the start and the end
        }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
