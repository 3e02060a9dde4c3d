"""Issue 12: exit codes that tell the truth, a store that cannot be fooled, results that mean what
they say. Every test drives `python -m klmtui` as a subprocess and checks the exact output, the
exit code, and that the store is byte-identical after every refused command."""

import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from core.store import Store
from tests.fixtures.cli import assert_one_line_error
from tests.fixtures.paths import shared_file
from tests.test_jobs import stop_active_runs, wait_for

PER_CLASS = 12  # images per class and split in the small real CIFAR-10 folder


@pytest.fixture(scope="module")
def small_cifar(tmp_path_factory) -> Path:
    """A real CIFAR-10 ImageFolder with PER_CLASS JPEGs per class and split (from the shared tarball)."""
    tarball = shared_file("data/cifar10-jpeg.tar.gz")
    dest = tmp_path_factory.mktemp("small-cifar")
    taken: dict[tuple[str, str], int] = {}
    with tarfile.open(tarball) as tar:
        for member in tar:
            parts = Path(member.name).parts  # cifar10-jpeg/<split>/<class>/<file>
            if not member.isfile() or len(parts) != 4:
                continue
            key = (parts[1], parts[2])
            if taken.get(key, 0) >= PER_CLASS:
                continue
            taken[key] = taken.get(key, 0) + 1
            tar.extract(member, dest, filter="data")
    root = dest / "cifar10-jpeg"
    assert len(taken) == 20 and set(taken.values()) == {PER_CLASS}
    return root


@pytest.fixture
def cli(cli):
    cli.env.update(KLMTUI_TORCH_THREADS="1", KLMTUI_MAX_PARALLEL="2")
    cli.env.pop("KLMTUI_DATA", None)
    yield cli
    stop_active_runs(cli.store)


@pytest.fixture(scope="module")
def initialised(tmp_path_factory) -> bytes:
    """The bytes of a store after `klmtui init` (made once; tests write them instead of re-running init)."""
    from core.study import init_study

    path = tmp_path_factory.mktemp("init") / "runs.json"
    init_study(Store(path))
    return path.read_bytes()


@pytest.fixture
def study(cli, initialised):
    """The cli fixture on an initialised store."""
    cli.store.write_bytes(initialised)
    return cli


def store_bytes(cli) -> bytes:
    return cli.store.read_bytes() if cli.store.exists() else b""


def refused(cli, *args, code=2, contains=None) -> str:
    """Run a command that must be refused: one line, `code`, the store byte-identical."""
    before = store_bytes(cli)
    r = cli(*args)
    line = assert_one_line_error(r, code)
    assert store_bytes(cli) == before, f"{args} changed the store"
    if contains is not None:
        assert contains in line, line
    return line


# --------------------------------------------------------------------------- 1. exit codes


def test_train_that_fails_exits_1_json_too(cli, small_cifar, tmp_path):
    broken = tmp_path / "broken-cifar"
    shutil.copytree(small_cifar, broken)
    (broken / "train" / "cat" / "9999.jpg").write_bytes(b"not a jpeg")  # real decode failure in the run
    r = cli("train", "1-1-1@8", "--epochs", "1", "--train-subset", "20", "--test-subset", "10",
            "--batch-size", "10", "--data", broken, "--json", timeout=300)
    line = assert_one_line_error(r, 1)
    (row,) = json.loads(r.stdout)  # --json still prints the summary
    assert row["status"] == "failed"
    assert line.startswith(f"klmtui: run {row['id']} failed: cannot read image "), line
    assert "9999.jpg" in line

    # resume in the foreground fails again -> 1 as well
    r = cli("resume", row["id"], "--json", timeout=300)
    line = assert_one_line_error(r, 1)
    assert line.startswith(f"klmtui: run {row['id']} failed: cannot read image "), line

    # a detached submission exits 0 once queued
    r = cli("train", "1-1-1@8", "--epochs", "1", "--train-subset", "20", "--test-subset", "10",
            "--batch-size", "10", "--data", broken, "--detach")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith("t-")


def test_bench_and_resume_on_a_device_that_is_down_exit_1(cli):
    r = cli("device", "add", "dead", "--host", "127.0.0.1", "--port", "1", "--user", "me")
    assert r.returncode == 0, r.stderr
    r = cli("bench", "1-1-1@8", "--device", "dead", "--json")
    line = assert_one_line_error(r, 1)
    (row,) = r.json()
    assert row["status"] == "failed"
    assert line == (f"klmtui: {row['id']} (1-1-1@8) failed: device dead: connection refused by 127.0.0.1:1 "
                    "(is sshd running?)")
    r = cli("resume", row["id"])
    line = assert_one_line_error(r, 1)
    assert line == (f"klmtui: benchmark {row['id']} failed: device dead: connection refused by 127.0.0.1:1 "
                    "(is sshd running?)")
    assert r.stdout == f"{row['id']}: failed\n"


# --------------------------------------------------------------------------- 2. 0 is a value


@pytest.mark.parametrize("option, message", [
    (["--warmup-runs", "0", "--runs", "0"], "warm-up runs (0) must be fewer than runs (0)"),
    (["--batch", "0"], "batch must be >= 1 (got 0)"),
    (["--runs", "0"], "warm-up runs (20) must be fewer than runs (0)"),
    (["--protocol", "adaptive", "--ci", "0"], "ci_rel must be between 0 and 1 (got 0.0)"),
    (["--protocol", "adaptive", "--min-batches", "0"], "min batches must be >= 1 (got 0)"),
])
def test_zero_is_a_value_for_bench_options(study, option, message):
    line = refused(study, "bench", "1-1-1@8", "--device", "local", *option)
    assert line == f"klmtui: bad benchmark protocol: {message}"


def test_warmup_runs_zero_is_used(cli):
    r = cli("bench", "1-1-1@8", "--device", "local", "--warmup-runs", "0", "--runs", "1", "--batches", "2",
            "--warmup-batches", "0", "--batch", "2", "--no-power", "--json", timeout=300)
    assert r.returncode == 0, r.stderr
    (row,) = r.json()
    assert row["status"] == "done" and row["batch"] == 2
    rec = Store(cli.store).get("benchmarks", row["id"])
    assert rec["options"]["warmup_runs"] == 0 and rec["options"]["warmup_batches"] == 0


# --------------------------------------------------------------------------- 3. liveness


def _sleeper(*marker: str):
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", *marker])


def _forge(cli, table: str, record_id: str, proc, pid_start) -> None:
    """A `running` record owned by `proc` (a real process), as a crashed job would leave it."""
    import socket

    store = Store(cli.store)
    base = {"id": record_id, "arch_id": "1-1-1@8", "arch": "1-1-1", "K": 1, "L": 1, "M": 1, "channels": 8,
            "genotype": "SNAS_mild", "status": "running", "pid": proc.pid, "pid_start": pid_start,
            "host": socket.gethostname(), "executor": "local", "epochs": 1, "epoch": 0, "created": "2026-01-01T00:00:00Z"}
    store.insert(table, base)


def _statuses(cli) -> dict:
    store = Store(cli.store)
    return {r["id"]: r["status"] for t in ("runs", "benchmarks") for r in store.all(t)}


def test_killed_and_pid_reused_jobs_show_interrupted_on_every_read_path(study):
    from core.jobs.process import start_time

    cli = study
    alive, killed, reused = _sleeper("t-0000000a"), _sleeper("b-0000000b"), _sleeper("t-0000000c", "b-0000000d")
    try:
        _forge(cli, "runs", "t-0000000a", alive, start_time(alive.pid))
        _forge(cli, "benchmarks", "b-0000000b", killed, start_time(killed.pid))
        # the pid of a live process whose command line even names the run, but that started later:
        # a reused pid, not the run's process
        _forge(cli, "runs", "t-0000000c", reused, start_time(reused.pid) - 1)
        _forge(cli, "benchmarks", "b-0000000d", reused, start_time(reused.pid) - 1)
        killed.kill()
        killed.wait()
        r = cli("status", "--json")
        assert r.returncode == 0, r.stderr
        (row,) = [x for x in r.json() if x["id"] == "1-1-1@8"]
        assert row["runs"]["by_status"] == {"running": 1, "interrupted": 1}
        assert row["benchmarks"]["by_status"] == {"interrupted": 2}
        assert _statuses(cli) == {"t-0000000a": "running", "b-0000000b": "interrupted",
                                  "t-0000000c": "interrupted", "b-0000000d": "interrupted"}
        err = Store(cli.store).get("runs", "t-0000000c")["error"]
        assert err == "the run's process vanished (killed, crashed or rebooted)"

        # pareto and the runs listing read through the same check
        alive.kill()
        alive.wait()
        r = cli("pareto", "--source", "thesis", "--json")
        assert r.returncode == 0, r.stderr
        assert _statuses(cli)["t-0000000a"] == "interrupted"
    finally:
        for proc in (alive, killed, reused):
            proc.kill()
            proc.wait()


def test_training_run_killed_minus_9_is_interrupted_in_status(cli, small_cifar):
    import signal

    r = cli("train", "1-1-1@8", "--epochs", "50", "--train-subset", "120", "--test-subset", "20",
            "--batch-size", "10", "--data", small_cifar, "--detach")
    assert r.returncode == 0, r.stderr
    run_id = r.stdout.strip()
    store = Store(cli.store)
    rec = wait_for(lambda: (lambda x: x if x.get("pid") and x.get("pid_start") else None)(store.get("runs", run_id)),
                   60, "the run's pid and start time")
    os.kill(rec["pid"], signal.SIGKILL)
    wait_for(lambda: not Path(f"/proc/{rec['pid']}").exists() or
             Path(f"/proc/{rec['pid']}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z", 30, "the kill")
    r = cli("status", "--json")
    assert r.returncode == 0, r.stderr
    (row,) = [x for x in r.json() if x["id"] == "1-1-1@8"]
    assert row["runs"]["by_status"] == {"interrupted": 1}


# --------------------------------------------------------------------------- 6. limits at submit

LIMITS = [
    (["train", "20000-1-1@8"], "klmtui: K must be <= 64 in 20000-1-1 (got 20000)"),
    (["train", "1-70-1@8"], "klmtui: L must be <= 64 in 1-70-1 (got 70)"),
    (["train", "1-1-1@9999"], "klmtui: initial channels must be <= 512 (got 9999)"),
    (["train", "1-1-1@" + "9" * 5000],
     "klmtui: architecture '1-1-1@" + "9" * 53 + "... (5008 characters) "
     "is out of range: K, L, M must be <= 64, channels <= 512"),
    (["train", "1-1-1@8", "--lr", "nan"], "klmtui: lr must be a finite number (got nan)"),
    (["train", "1-1-1@8", "--lr", "inf"], "klmtui: lr must be a finite number (got inf)"),
    (["train", "1-1-1@8", "--lr", "-0.1"], "klmtui: lr must be > 0, weight decay >= 0, grad clip > 0 and drop path in [0, 1)"),
    (["train", "1-1-1@8", "--lr", "11"], "klmtui: lr must be in (0, 10] (got 11)"),
    (["train", "1-1-1@8", "--batch-size", "1"], "klmtui: batch size must be in 2..4096 (got 1)"),
    (["train", "1-1-1@8", "--train-subset", "1"], "klmtui: train subset must be >= 10, one image per class (got 1)"),
    (["train", "1-1-1@8", "--test-subset", "9"], "klmtui: test subset must be >= 10, one image per class (got 9)"),
    (["train", "1-1-1@8", "--train-subset", "9" * 30], "klmtui: train subset must be in 10..1000000 (got a 30-digit number)"),
    (["train", "1-1-1@8", "--seed", "-1"], "klmtui: seed must be in 0..2147483647 (got -1)"),
    (["train", "1-1-1@8", "--seed", "4294967296"], "klmtui: seed must be in 0..2147483647 (got 4294967296)"),
    (["train", "1-1-1@8", "--seeds", "0"], "klmtui: --seeds must be in 1..100 (got 0)"),
    (["train", "1-1-1@8", "--seeds", "101"], "klmtui: --seeds must be in 1..100 (got 101)"),
    (["bench", "1-1-1@8", "--device", "local", "--batch", "99999"], "klmtui: batch must be in 1..4096 (got 99999)"),
    (["bench", "1-1-1@8", "--device", "local", "--threads", "9" * 20],
     "klmtui: threads must be in 0..1024 (got a 20-digit number)"),
    (["bench", "1-1-1@8", "--device", "local", "--protocol", "adaptive", "--ci", "nan"],
     "klmtui: bad benchmark protocol: ci_rel must be between 0 and 1 (got nan)"),
    (["bench", "70-1-1@8", "--device", "local"], "klmtui: K must be <= 64 in 70-1-1 (got 70)"),
]


@pytest.mark.parametrize("args, message", LIMITS, ids=[" ".join(a)[:40] for a, _ in LIMITS])
def test_limits_at_submit_one_line_exit_2_store_untouched(study, args, message):
    assert refused(study, *args) == message
