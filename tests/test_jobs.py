"""The local executor: detached processes, a queue with a concurrency limit, cancel, resume."""

import json
import os
import time
from pathlib import Path

import pytest

from core.store import Store


def stop_active_runs(store_path) -> None:
    """Test teardown: cancel whatever a failed test left queued or running (detached processes)."""
    from core.jobs import cancel

    store = Store(store_path)
    if not store.exists():
        return
    for rec in store.all("runs"):
        if rec["status"] in ("queued", "running", "pending"):
            try:
                cancel(store, rec["id"])
            except Exception:
                pass


@pytest.fixture
def cli(cli):
    """The CLI fixture, plus: no detached run outlives the test."""
    yield cli
    stop_active_runs(cli.store)


def wait_for(predicate, timeout=300.0, what="condition", every=0.1):
    """Poll `predicate` until it returns something true; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_queue_cancel_and_resume(cli, cifar_dir):
    cli.env.update(KLMTUI_TORCH_THREADS="1", KLMTUI_MAX_PARALLEL="1")
    tiny = ["--train-subset", "256", "--test-subset", "64", "--batch-size", "64", "--data", cifar_dir]
    r = cli("train", "1-1-1@8", "--epochs", "3", "--seeds", "3", *tiny, "--detach", "--json")
    assert r.returncode == 0, r.stderr
    first, second, third = (row["id"] for row in r.json())
    assert [row["seed"] for row in r.json()] == [0, 1, 2]
    store = Store(cli.store)
    status = {i: store.get("runs", i)["status"] for i in (first, second, third)}
    assert status == {first: "running", second: "queued", third: "queued"}, status
    pid = store.get("runs", first)["pid"]
    assert os.getsid(pid) == pid  # its own session: closing the terminal does not stop it

    # a queued run is cancelled without ever starting
    r = cli("cancel", second)
    assert r.returncode == 0 and "cancelled" in r.stdout, r.stderr
    # the running one after its first epoch: SIGTERM, checkpoint kept; the next queued one starts
    wait_for(lambda: (store.get("runs", first) or {}).get("epoch", 0) >= 1, what="epoch 1 of the first run")
    r = cli("cancel", first)
    assert r.returncode == 0, r.stderr
    record = store.get("runs", first)
    assert record["status"] == "cancelled" and record["pid"] is None
    assert (store.run_dir(first) / "checkpoint.pt").exists()
    assert not os.path.exists(f"/proc/{pid}/cmdline") or first not in Path(f"/proc/{pid}/cmdline").read_text()
    wait_for(lambda: store.get("runs", third)["status"] == "running", 30, "the queued run to start")
    assert store.get("runs", second)["status"] == "cancelled" and not store.get("runs", second).get("started")

    # resume the cancelled run: it queues behind the running one, then continues after its epoch
    done_before = store.get("runs", first)["epoch"]
    r = cli("resume", first, "--json")
    assert r.returncode == 0, r.stderr
    [resumed] = r.json()
    assert resumed["status"] == "done" and resumed["epoch"] == 3
    assert store.get("runs", third)["status"] == "done"  # it ran first: the queue kept one at a time
    rows = [json.loads(x) for x in (store.run_dir(first) / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2, 3] and done_before >= 1
    assert "resumed 1-1-1@8 from" in (store.run_dir(first) / "log.txt").read_text()
    r = cli("cancel", first)
    assert r.returncode == 2 and "already done" in r.stderr
