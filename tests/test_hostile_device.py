"""A malicious "device python" behind a real loopback sshd (issue 16): terminal escapes, rich
markup, NaN, wrong types, absurd numbers, a flood of garbage and endless lines. Each run must
end as a clean `failed` record with one clean line on stderr, bounded memory and files, and
nothing from the device interpreted by the terminal (CLI) or by rich."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.store import Store
from remote.linereader import MAX_LINE_BYTES, LineSplitter, LineTooLong
from tests.fixtures.cli import CliResult, assert_one_line_error

ESC_TITLE = "\x1b]2;PWNED\x07"  # sets the terminal / tmux pane title
OSC52 = "\x1b]52;c;cHduZWQ=\x07"  # writes the clipboard
MARKUP = "[/] [bold]x[/bold] [link=file:///etc]y"

FAKE_PYTHON = r'''#!@PYTHON@
import json, os, sys
mode = open(@MODE@).read().strip()
ESC, MARKUP = @ESC@, @MARKUP@
out = sys.stdout
def emit(obj):
    out.write(json.dumps(obj) + "\n"); out.flush()
if "-c" in sys.argv:  # the `device check` probe
    emit({"python": "3.6.9" + ESC, "torch": MARKUP, "cuda": False, "cuda_version": "\x1b[2J" + MARKUP})
    sys.exit(0)
emit({"event": "hello", "t": 0.1, "protocol": {"protocol": "thesis"}, "device": "cpu",
      "environment": {"gpu": ESC + MARKUP, "cpu": MARKUP}})
if mode == "absurd":
    out.write('{"event": "latency", "t": 0.2, "pass": "latency", "seconds": NaN}\n')
    emit({"event": "latency", "t": 0.2, "pass": "latency", "seconds": "fast"})
    emit({"event": "latency", "t": 0.2, "pass": "latency", "seconds": -5})
    emit({"event": "power", "t": 0.3, "board_power_mw": 1e9})
    emit({"event": "hello", "t": 0.3, "protocol": {"p": "x" * 1000}, "environment": {"k%d" % i: "v" * 1000 for i in range(60)}})
    garbage = (ESC + MARKUP + " garbage " * 30 + "\n") * 1000
    for _ in range(20):  # 20,000 garbage lines, ~7 MB
        out.write(garbage)
    emit({"event": "summary", "t": 9, "latency_s": -5, "latency_p90_s": 1e308, "power_w": 1e6, "images_per_s": "many"})
    out.flush()
    sys.exit(0)
if mode == "escapes":
    sys.stderr.write("Traceback (fake)\n" + ESC + @OSC52@ + MARKUP + "\n"); sys.stderr.flush()
    emit({"event": "error", "t": 1, "error": "boom " + ESC + @OSC52@ + MARKUP})
    sys.exit(1)
if mode in ("endless", "huge"):
    chunk = "x" * (1 << 20)
    for _ in range(200):  # 200 MB without a newline ("endless": then forever)
        out.write(chunk)
    while mode == "endless":
        out.write(chunk)
    out.write("\n"); out.flush()
    sys.exit(0)
'''


@pytest.fixture
def hostile(cli, ssh_env, sshd, tmp_path):
    """A registered, trusted device `evil` whose python is the fake; returns set_mode(mode)."""
    cli.env.update(ssh_env)
    mode_file = tmp_path / "mode"
    mode_file.write_text("absurd")
    fake = tmp_path / "fakepython"
    fake.write_text(
        FAKE_PYTHON.replace("@PYTHON@", sys.executable).replace("@MODE@", repr(str(mode_file)))
        .replace("@ESC@", repr(ESC_TITLE)).replace("@MARKUP@", repr(MARKUP)).replace("@OSC52@", repr(OSC52))
    )  # fmt: skip
    fake.chmod(0o755)
    r = cli("device", "add", "evil", "--host", "127.0.0.1", "--port", sshd.port, "--key", sshd.client_key,
            "--python", fake, "--workdir", tmp_path / "device", "--tegrastats", "no-such-tegrastats")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert cli("device", "trust", "evil", "--yes").returncode == 0
    return mode_file.write_text


def bench_watching_memory(cli, timeout: float = 240) -> tuple[CliResult, int]:
    """`klmtui bench 1-1-1@8 --device evil`, polling the CLI process' peak RSS (VmHWM, kB)."""
    argv = [sys.executable, "-m", "klmtui", "--store", str(cli.store), "bench", "1-1-1@8", "--device", "evil",
            "--batch", "2", "--runs", "2", "--batches", "2", "--warmup-runs", "1", "--warmup-batches", "1",
            "--compute", "cpu", "--threads", "1"]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=cli.cwd, env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak, deadline = 0, time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.05)
    if proc.poll() is None:
        proc.kill()
    out, err = proc.communicate(timeout=30)
    return CliResult(proc.returncode, out.decode(), err.decode()), peak


def assert_clean_failure(cli, result: CliResult) -> tuple[str, dict]:
    line = assert_one_line_error(result, 1)
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr  # nothing a terminal would act on
    [record] = Store(cli.store).all("benchmarks")
    assert record["status"] == "failed", record
    assert record["latency_s"] is None and record["power_w"] is None
    return line, record


def test_absurd_numbers_nan_wrong_types_and_a_garbage_flood(cli, hostile, sshd):
    hostile("absurd")
    result, _ = bench_watching_memory(cli)
    line, record = assert_clean_failure(cli, result)
    assert "without a valid summary" in line
    assert record["bad_lines"] >= 20_000  # NaN, wrong type, -5 s, 1 MW, oversized hello, garbage, summary
    folder = cli.store.parent / record["run_dir"]
    assert (folder / "agent.log").stat().st_size <= 1 << 20  # was 99 MB for 200k lines
    assert cli.store.stat().st_size < 200_000  # no 50 KB environment, no garbage in runs.json
    stored_env = json.dumps(record.get("environment"))
    assert len(stored_env) < 17000
    for event in (json.loads(l) for l in (folder / "events.jsonl").read_text().splitlines()):
        assert event["event"] != "summary"  # the absurd summary never became data


def test_escapes_and_markup_are_shown_not_interpreted(cli, hostile):
    hostile("escapes")
    result, _ = bench_watching_memory(cli)
    line, record = assert_clean_failure(cli, result)
    assert "boom" in line and "\\x1b]2;PWNED\\x07" in line and "[/]" in line  # visible, literally
    # `device check` with markup and escapes in every field: no MarkupError, no raw escapes.
    check = cli("device", "check", "evil")
    assert check.returncode == 0, check.stderr
    assert "\x1b" not in check.stdout and "[/]" in check.stdout and "\\x1b" in check.stdout
    assert "Traceback" not in check.stderr
    [report] = cli("device", "check", "evil", "--json").json()
    assert report["torch"] == MARKUP  # --json is data: kept exactly, JSON-escaped


@pytest.mark.parametrize("mode", ["endless", "huge"])
def test_endless_or_huge_line_ends_the_run_with_bounded_memory(cli, hostile, mode):
    hostile(mode)
    result, peak_kb = bench_watching_memory(cli)
    line, record = assert_clean_failure(cli, result)
    assert "longer than 1024 KiB" in line
    assert peak_kb < 400_000, peak_kb  # 200 MB of line never held (the CLI itself is ~100-200 MB)


def test_line_splitter_is_linear_and_capped():
    splitter = LineSplitter("d", max_line=1000)
    assert splitter.feed(b"a\nbc") == [b"a"] and splitter.feed(b"d\n\n") == [b"bcd", b""]
    with pytest.raises(LineTooLong):
        for _ in range(100):
            splitter.feed(b"y" * 100)  # an endless line: stopped at the cap
    # 40 MB in 64 KiB chunks of no newline would be quadratic if rescanned; here it stops at the cap
    big = LineSplitter("d")
    start = time.perf_counter()
    fed = 0
    with pytest.raises(LineTooLong):
        while True:
            big.feed(b"z" * 65536)
            fed += 65536
    assert fed <= MAX_LINE_BYTES
    many = LineSplitter("d")
    lines = many.feed(b"0123456789\n" * 500_000)  # one 5.5 MB chunk of short lines
    assert len(lines) == 500_000
    assert time.perf_counter() - start < 30  # linear: well under a second here
