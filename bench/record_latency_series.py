"""Record real per-batch latency series on this machine for the adaptive stop rule's offline tests (issue 10).

Runs the real device agent (`python -m remote.agent.main`, the code `--device local` runs) on a
tiny network (default 1-1-1@8, batch 16, 1 thread, sync timing, no power) for a fixed number of
batches (`--protocol thesis --runs 1 --batches N`, after 20 warm-up batches) and keeps every timed
batch's seconds and its end time. Scenarios:

- `quiet`: nothing injected (whatever else the shared machine runs is part of the record);
- `hog-start`: `--hog-procs` CPU-bound processes start with the agent and stop `--hog-seconds`
  after it started (what bench/adaptive_vs_thesis.py injects);
- `hog-mid`: the same processes run from `--hog-at` to `--hog-at + --hog-seconds` seconds after
  the first timed batch (a step up, then a step down).

Hog times are perf_counter (CLOCK_MONOTONIC, shared with the agent), stored relative to the
start of the first timed batch, like every batch's end time.

    .venv/bin/python bench/record_latency_series.py -o tests/fixtures/latency_series.json \
        --scenario quiet --scenario quiet --scenario hog-start --scenario hog-mid

Output: JSON {"recorded": {...how...}, "series": [{"name", "scenario", "loadavg_before",
"loadavg_after", "hog": [start_s, end_s] or null, "seconds_us": [...], "end_ms": [...]}]}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from cpu_hog import start_hogs  # bench/ is on sys.path: these scripts run as `python bench/NAME.py`

REPO = Path(__file__).resolve().parents[1]


def record(args, scenario: str) -> dict:
    arch = args.arch.replace("@", "-").split("-")
    argv = [sys.executable, "-u", "-m", "remote.agent.main", "--K", arch[0], "--L", arch[1], "--M", arch[2],
            "--channels", arch[3], "--batch", str(args.batch), "--threads", str(args.threads),
            "--protocol", "thesis", "--runs", "1", "--batches", str(args.batches + 20),
            "--warmup-runs", "0", "--warmup-batches", "20", "--no-power", "--device", "cpu"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    load_before = os.getloadavg()
    hogs, hog = [], None
    started = time.perf_counter()
    nice = (lambda: os.setpriority(os.PRIO_PROCESS, 0, args.nice)) if args.nice else None
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True, preexec_fn=nice)
    if scenario == "hog-start":
        hog = [started, started + args.hog_seconds]
        hogs = start_hogs(args.hog_procs, hog[1], args.nice, clock=time.perf_counter)
    seconds, ends, first = [], [], None
    for line in proc.stdout:
        event = json.loads(line)
        if event.get("event") == "error":
            raise SystemExit("agent failed: %s" % event.get("error"))
        if event.get("event") != "latency" or event.get("warmup"):
            continue
        if first is None:
            first = event["t0"]
            if scenario == "hog-mid":
                hog = [first + args.hog_at, first + args.hog_at + args.hog_seconds]
                hogs = start_hogs(args.hog_procs, hog[1], args.nice, start_at=hog[0], clock=time.perf_counter)
        seconds.append(int(round(event["seconds"] * 1e6)))
        ends.append(int(round((event["t1"] - first) * 1e3)))
    proc.wait()
    for h in hogs:
        h.join()
    if proc.returncode != 0:
        raise SystemExit("agent exited with status %d" % proc.returncode)
    return {"name": "%s-%d" % (scenario, int(time.time())), "scenario": scenario,
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "hog": [round(hog[0] - first, 3), round(hog[1] - first, 3)] if hog else None, "nice": args.nice,
            "seconds_us": seconds, "end_ms": ends}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--scenario", action="append", choices=("quiet", "hog-start", "hog-mid"), required=True)
    parser.add_argument("--arch", default="1-1-1@8")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batches", type=int, default=2500, help="timed batches per series (after 20 warm-up)")
    parser.add_argument("--hog-procs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--hog-seconds", type=float, default=45.0)
    parser.add_argument("--hog-at", type=float, default=15.0)
    parser.add_argument("--nice", type=int, default=0,
                        help="run the agent and the hogs at this nice level (e.g. -10 as root: other users' load on a "
                             "shared machine then disturbs less; recorded beside each series)")
    args = parser.parse_args()
    out = Path(args.output)
    data = json.loads(out.read_text()) if out.exists() else {"series": []}
    data["recorded"] = {
        "how": "bench/record_latency_series.py: the real agent (remote.agent.main) on this machine's CPU, "
               "%s, batch %d, %d thread(s), sync timing, 20 warm-up batches then %d timed; hogs: %d CPU-bound "
               "processes; hog times and end_ms are seconds / ms since the first timed batch started"
               % (args.arch, args.batch, args.threads, args.batches, args.hog_procs),
        "machine": "%s, %d CPUs, Python %s (shared VM, other users' load included)" % (
            platform.platform(), os.cpu_count() or 0, platform.python_version()),
    }
    for scenario in args.scenario:
        series = record(args, scenario)
        data["series"].append(series)
        med = sorted(series["seconds_us"])[len(series["seconds_us"]) // 2] / 1000.0
        print("%s: %d batches, median %.2f ms, %.1f s, hog %s, load %s -> %s" % (
            series["name"], len(series["seconds_us"]), med, series["end_ms"][-1] / 1000.0, series["hog"],
            series["loadavg_before"], series["loadavg_after"]), flush=True)
        out.write_text(json.dumps(data, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
