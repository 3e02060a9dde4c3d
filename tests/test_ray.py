"""The Ray executor on a real local cluster (3 logical GPUs): live progress, cancel, worker death."""

import json
import os
import signal
from pathlib import Path

import pytest

from core.store import Store
from tests.fixtures.leaks import gone
from tests.test_jobs import stop_active_runs, wait_for

pytestmark = pytest.mark.slow


def test_three_gpu_runs_live_progress_cancel_and_retry(cli, cifar_dir, ray_cluster, tmp_path):
    cli.env.update(ray_cluster["env"])
    storage = tmp_path / "shared-storage"
    try:
        _scenario(cli, cifar_dir, ray_cluster["address"], storage)
    finally:
        stop_active_runs(cli.store)


def _scenario(cli, cifar_dir, address, storage):
    r = cli("train", "1-1-1@8", "--seeds", "3", "--epochs", "8", "--train-subset", "256", "--test-subset", "64",
            "--batch-size", "64", "--data", cifar_dir, "--executor", "ray", "--address", address,
            "--storage", storage, "--detach", "--json")
    assert r.returncode == 0, r.stderr
    to_cancel, to_kill, plain = (row["id"] for row in r.json())
    store = Store(cli.store)
    ids = (to_cancel, to_kill, plain)

    def rec(run_id):
        return store.get("runs", run_id)

    # all three run at once, each with its own logical GPU
    wait_for(lambda: all(rec(i)["status"] == "running" and rec(i).get("gpu_ids") for i in ids), what="3 running tasks")
    gpu_sets = [tuple(rec(i)["gpu_ids"]) for i in ids]
    assert all(len(g) == 1 for g in gpu_sets) and len(set(gpu_sets)) == 3, gpu_sets
    assert all(rec(i)["executor"] == "ray" and rec(i)["worker_pid"] for i in ids)

    # progress arrives live: several distinct (epoch, batch) states while the run is running
    seen = set()

    def progressed():
        try:
            state = json.loads((store.run_dir(plain) / "progress.json").read_text())
        except (OSError, ValueError):
            return False
        if rec(plain)["status"] == "running" and state.get("batch"):
            seen.add((state["epoch"], state["batch"]))
        return len(seen) >= 3

    wait_for(progressed, what="live progress", every=0.05)

    # after epoch 1: cancel one, SIGKILL the worker of another (8 epochs: on an idle machine 4 were
    # over before the cancel landed, "already done")
    wait_for(lambda: rec(to_cancel)["epoch"] >= 1 and rec(to_kill)["epoch"] >= 1, what="epoch 1 of two runs")
    victim = rec(to_kill)["worker_pid"]
    os.kill(victim, signal.SIGKILL)
    driver = rec(to_cancel)["pid"]
    r = cli("cancel", to_cancel)
    assert r.returncode == 0, r.stderr
    assert rec(to_cancel)["status"] == "cancelled"
    assert gone(driver)  # cancel returned once the run's driver had exited

    wait_for(lambda: rec(to_kill)["status"] in ("done", "failed") and rec(plain)["status"] in ("done", "failed"),
          what="the other two runs to finish")
    from core.jobs import wait_exited

    assert wait_exited(store, [to_kill, plain], timeout_s=60) == []  # their drivers exit after the status
    killed, normal = rec(to_kill), rec(plain)
    assert normal["status"] == "done" and normal["epoch"] == 8, normal
    assert killed["status"] == "done" and killed["epoch"] == 8, killed
    assert killed["attempts"] == 2 and killed["worker_pid"] != victim  # retried on a new worker
    log = (store.run_dir(to_kill) / "log.txt").read_text()
    assert "attempt 2" in log and "resumed after epoch" in log, log
    rows = [json.loads(x) for x in (store.run_dir(to_kill) / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == list(range(1, 9))
    # checkpoints live on the shared storage; the record points there
    assert Path(killed["checkpoint"]).is_file() and str(storage) in killed["checkpoint"]
    cancelled = rec(to_cancel)
    assert cancelled["status"] == "cancelled" and cancelled["epoch"] < 8
    assert (storage / "runs" / to_cancel / "checkpoint.pt").exists()  # kept for resume
