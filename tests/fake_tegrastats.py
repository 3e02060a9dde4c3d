#!/usr/bin/env python3
"""A stand-in `tegrastats` that replays real lines from the shared fixture file.

Used by the agent tests (local) and the SSH tests (on the loopback "device"):

    python tests/fake_tegrastats.py [--interval MS] [--fixture FILE] [--records NAME,NAME]
                                    [--faults garbage,torn] [--log FILE] [--count N]

Options can also come from the environment (so a plain `tegrastats` wrapper on PATH works):
FAKE_TEGRASTATS_FIXTURE, FAKE_TEGRASTATS_RECORDS, FAKE_TEGRASTATS_FAULTS, FAKE_TEGRASTATS_LOG.
Every `--interval` ms it prints the next record's line (cycling through `--records`, default all),
flushed. With faults, a garbage line and/or a torn line (a real line cut in two, written as two
lines) is inserted after every real line. `--log` appends one JSON object per emitted line
({"pid", "kind": "real"|"garbage"|"torn", "name", "board_power_mw", "line"}) so a test can compute
the expected power from exactly what was replayed. Exits quietly on SIGTERM or a closed pipe.

`install(bin_dir, ...)` writes an executable `tegrastats` wrapper into bin_dir for PATH use.
"""

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

SHARED = Path(os.environ.get("KLMTUI_SHARED") or Path(__file__).resolve().parents[2] / "shared")
DEFAULT_FIXTURE = SHARED / "fixtures" / "tegrastats.txt"


def read_fixture(path):
    """[(name, board_power_mw or None, line)] from the fixture file (`NAME | POWER | LINE`)."""
    records = []
    for raw in Path(path).read_text().splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        name, power, line = (part.strip() for part in raw.split("|", 2))
        records.append((name, None if power == "none" else int(power), line))
    return records


def install(bin_dir, fixture=None, records=None, faults=None, log=None, python=None, interval=None):
    """Write `bin_dir/tegrastats` (a shell wrapper around this script); return bin_dir.

    `interval` (ms) overrides the `--interval` the caller passes: a board that reports slowly, so
    a power pass waiting for its samples lasts a known wall time whatever the CPU's speed."""
    bin_dir = Path(bin_dir)
    bin_dir.mkdir(parents=True, exist_ok=True)
    args = [python or sys.executable, str(Path(__file__).resolve())]
    if fixture:
        args += ["--fixture", str(fixture)]
    if records:
        args += ["--records", ",".join(records)]
    if faults:
        args += ["--faults", ",".join(faults)]
    if log:
        args += ["--log", str(log)]
    import shlex

    script = bin_dir / "tegrastats"
    forced = " --interval %d" % int(interval) if interval else ""
    script.write_text("#!/bin/sh\nexec %s \"$@\"%s\n" % (" ".join(shlex.quote(a) for a in args), forced))
    script.chmod(0o755)
    return bin_dir


def main(argv=None):
    env = os.environ
    parser = argparse.ArgumentParser(prog="tegrastats", description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=int, default=1000, help="ms between lines (tegrastats' option)")
    parser.add_argument("--fixture", default=env.get("FAKE_TEGRASTATS_FIXTURE", str(DEFAULT_FIXTURE)))
    parser.add_argument("--records", default=env.get("FAKE_TEGRASTATS_RECORDS", ""))
    parser.add_argument("--faults", default=env.get("FAKE_TEGRASTATS_FAULTS", ""))
    parser.add_argument("--log", default=env.get("FAKE_TEGRASTATS_LOG"))
    parser.add_argument("--count", type=int, default=0, help="stop after N real lines (0: forever)")
    parser.add_argument("--logfile", help="accepted and ignored (real tegrastats option)")
    args = parser.parse_args(argv)

    stopping = []  # SIGTERM finishes the current line (and its log entry) and then exits
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    records = read_fixture(args.fixture)
    wanted = [r for r in args.records.split(",") if r]
    if wanted:
        by_name = {r[0]: r for r in records}
        missing = [w for w in wanted if w not in by_name]
        if missing:
            parser.error("unknown record(s): %s" % ", ".join(missing))
        records = [by_name[w] for w in wanted]
    faults = set(f for f in args.faults.split(",") if f)
    log = open(args.log, "a") if args.log else None

    def emit(kind, name, power, line):
        if log:  # logged first: when the reader sees a line, its log entry is already there
            log.write(json.dumps({"pid": os.getpid(), "kind": kind, "name": name,
                                  "board_power_mw": power, "line": line}) + "\n")
            log.flush()
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    try:
        i = 0
        while (not args.count or i < args.count) and not stopping:
            name, power, line = records[i % len(records)]
            emit("real", name, power, line)
            if "garbage" in faults:
                emit("garbage", None, None, "\x00\x01garbage: not tegrastats at all")
            if "torn" in faults:
                cut = len(line) // 2
                emit("torn", name, None, line[:cut])
                emit("torn", name, None, line[cut:])
            i += 1
            deadline = time.time() + args.interval / 1000.0
            while not stopping and time.time() < deadline:
                time.sleep(min(0.02, max(0.0, deadline - time.time())))
    except (BrokenPipeError, KeyboardInterrupt):
        pass
    finally:
        if log:
            log.close()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        os._exit(0)
