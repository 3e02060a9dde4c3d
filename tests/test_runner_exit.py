"""`cancel`, `resume` and a foreground command return only once the runner process is gone.

A detached runner (`python -m core.train --run-id ID ...`, `python -m remote.benchjobs --run ID`)
writes its final status a moment before it exits (it still hands the queue on and shuts the
interpreter down). The record must never say `cancelled` while the runner still runs, `cancel`
returns after it exited, and a `resume` right after starts exactly one runner (issue HC).
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from core.store import Store
from tests.fixtures.leaks import gone, runners_of
from tests.test_jobs import stop_active_runs, wait_for

TINY = ["--train-subset", "384", "--test-subset", "64", "--batch-size", "32"]


@pytest.fixture
def cli1(cli):
    cli.env.update(KLMTUI_TORCH_THREADS="1", KLMTUI_MAX_PARALLEL="1")
    yield cli
    stop_active_runs(cli.store)


@pytest.mark.slow
def test_cancel_waits_for_the_runner_and_resume_right_after_starts_one(cli1, cifar_dir):
    r = cli1("train", "1-1-1@8", "--epochs", "50", *TINY, "--data", cifar_dir, "--detach", "--json")
    assert r.returncode == 0, r.stderr
    [row] = r.json()
    run_id = row["id"]
    store = Store(cli1.store)
    rec = wait_for(lambda: (x := store.get("runs", run_id))["status"] == "running" and x.get("pid")
                   and (store.run_dir(run_id) / "progress.json").exists() and x, 120, "the run to train")
    pid = rec["pid"]
    assert runners_of(run_id) == [pid]

    # `klmtui cancel` in another process; meanwhile the record never says cancelled while pid lives
    cancel = subprocess.Popen([sys.executable, "-m", "klmtui", "--store", str(cli1.store), "cancel", run_id],
                              cwd=cli1.cwd, env=cli1.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    said_cancelled_while_alive = []
    while cancel.poll() is None:
        status = (store.get("runs", run_id) or {}).get("status")
        if status == "cancelled" and not gone(pid):
            said_cancelled_while_alive.append(time.monotonic())
        time.sleep(0.01)
    out, err = cancel.communicate()
    assert cancel.returncode == 0 and out.strip() == f"{run_id}: cancelled", err
    assert gone(pid), "cancel returned while the runner still ran"
    assert not said_cancelled_while_alive, "the record said cancelled before the runner had exited"
    assert store.get("runs", run_id)["status"] == "cancelled"

    # resume at once: one runner, the new one
    r = cli1("resume", run_id, "--detach")
    assert r.returncode == 0, r.stderr
    new = wait_for(lambda: store.get("runs", run_id).get("pid"), 30, "the resumed run's pid")
    assert new != pid and runners_of(run_id) == [new]
    r = cli1("cancel", run_id, "--json")
    assert r.returncode == 0, r.stderr
    assert r.json()[0]["status"] == "cancelled" and gone(new) and runners_of(run_id) == []


def test_resume_refuses_while_the_last_runner_is_still_exiting(tmp_path, monkeypatch):
    """A record that ended (failed) whose recorded process still runs: resume waits (here 0.5 s,
    10 s for real), then refuses with one InputError (exit 2), the store untouched. A process that
    only shares the pid (another start time) is not the runner."""
    import socket
    from pathlib import Path

    from core import jobs
    from core.errors import InputError
    from core.jobs import process
    from remote import benchjobs

    monkeypatch.setattr(process, "STOP_GRACE_S", 0.5)
    store = Store(tmp_path / "runs.json")
    run_id, bench_id = "t-0000beef", "b-0000beef"
    # a stand-in for a runner between its final status and its exit: its command line names both
    fake = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", run_id, bench_id],
                            start_new_session=True)
    try:
        wait_for(lambda: run_id in Path(f"/proc/{fake.pid}/cmdline").read_text(), 30, "the stand-in")
        ident = process.identity(fake.pid)
        arch = {"arch_id": "1-1-1@8", "arch": "1-1-1", "K": 1, "L": 1, "M": 1, "channels": 8, "genotype": "SNAS_mild"}
        store.insert("runs", dict(arch, id=run_id, seed=0, profile="quick", epochs=2, epoch=1, status="failed",
                                  executor="local", run_dir=f"runs/{run_id}", config={"epochs": 2},
                                  host=socket.gethostname(), **ident))
        store.insert("benchmarks", dict(arch, id=bench_id, status="failed", runner="detached", device="local",
                                        devices=["local"], host=socket.gethostname(), run_dir=f"runs/{bench_id}",
                                        **ident))
        before = Path(store.path).read_bytes()
        with pytest.raises(InputError, match=f"run {run_id} is failed but its process {fake.pid} has not exited yet"):
            jobs.resume(store, run_id)
        with pytest.raises(InputError, match=f"benchmark {bench_id} is failed but its runner .pid {fake.pid}. "
                                             "has not exited yet"):
            benchjobs.resume(store, bench_id)
        assert Path(store.path).read_bytes() == before
        assert jobs.wait_exited(store, [run_id]) == [run_id]
        store.update("runs", run_id, pid_start=ident["pid_start"] - 1)  # the pid reused by another process
        assert jobs.wait_exited(store, [run_id]) == []
    finally:
        fake.kill()
        fake.wait()


@pytest.mark.slow
def test_benchmark_cancel_waits_for_its_runner_and_kills_a_stuck_one(tmp_path, monkeypatch):
    """The runner records `cancelled`, then hands the device on (the queue lock, held here, so it
    cannot exit): cancel does not return beside it; after the grace (1 s here, 10 s for real) it
    SIGKILLs the runner's group and says so on one line."""
    from filelock import FileLock

    from core.jobs import process
    from remote import benchjobs
    from tests.test_benchjobs import TINY_OPTIONS, _runner_with_agent

    monkeypatch.setenv("KLMTUI_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(process, "STOP_GRACE_S", 1.0)
    store = Store(tmp_path / "runs.json")
    [bench_id] = benchjobs.submit(store, ["1-1-1@8"], ["local"], dict(TINY_OPTIONS, runs=100000, no_power=True))
    runner, agent = _runner_with_agent(store, bench_id)
    said: list[str] = []
    with FileLock(str(store.folder / "runs" / benchjobs.QUEUE_LOCK), timeout=30):
        record = benchjobs.cancel(store, bench_id, wait_s=90, warn=said.append)
        assert record["status"] == "cancelled"
        assert gone(runner) and gone(agent), "cancel returned while the runner still ran"
    assert said == [f"benchmark {bench_id}: its process {runner} still ran 1 s after it was asked to stop: "
                    "killed it (SIGKILL to its process group)"]
    assert runners_of(bench_id) == []
