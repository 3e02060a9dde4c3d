"""Training on real CIFAR-10 images through the CLI: learning, exact resume after kill -9, bad input."""

import json
import os
import signal
from pathlib import Path

import pytest
import torch

from core.store import Store
from tests.fixtures.cli import assert_one_line_error
from tests.fixtures.leaks import runners_of
from tests.test_jobs import stop_active_runs, wait_for

TINY = ["--train-subset", "384", "--test-subset", "128", "--batch-size", "64"]
RECORD_FIELDS = ("id", "arch_id", "arch", "K", "L", "M", "channels", "genotype", "seed", "profile", "epochs", "epoch",
                 "status", "accuracy", "best_accuracy", "checkpoint", "executor", "pid", "host", "created", "started",
                 "finished", "error", "config", "run_dir")
METRIC_FIELDS = ("epoch", "loss", "train_acc", "test_acc", "lr", "seconds", "images_per_s")


@pytest.fixture
def cli1(cli):
    """The CLI with one torch thread per run process (2 cores shared by everything); no detached
    run outlives the test."""
    cli.env["KLMTUI_TORCH_THREADS"] = "1"
    cli.env["KLMTUI_MAX_PARALLEL"] = "1"
    yield cli
    stop_active_runs(cli.store)


@pytest.mark.slow
def test_small_net_learns_real_cifar(cli1, cifar_dir):
    r = cli1("train", "1-1-1@8", "--profile", "quick", "--epochs", "3", "--train-subset", "2000",
             "--test-subset", "500", "--batch-size", "64", "--lr", "0.05", "--data", cifar_dir, "--json")
    assert r.returncode == 0, r.stderr
    [summary] = r.json()
    assert summary["status"] == "done" and summary["arch"] == "1-1-1" and summary["channels"] == 8
    assert summary["seed"] == 0 and summary["epochs"] == 3
    assert summary["accuracy"] > 25.0, summary  # chance is 10%
    store = Store(cli1.store)
    record = store.get("runs", summary["id"])
    assert set(RECORD_FIELDS) <= set(record), set(RECORD_FIELDS) - set(record)
    assert record["epoch"] == 3 and record["finished"] and record["error"] is None
    # the process identity stays recorded, and the foreground command returned after that process exited
    assert record["pid"] and record["pid_start"] and runners_of(summary["id"]) == []
    assert record["best_accuracy"] >= record["accuracy"] == summary["accuracy"]
    rows = [json.loads(line) for line in (store.run_dir(summary["id"]) / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    assert all(set(METRIC_FIELDS) <= set(row) for row in rows)
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert rows[0]["lr"] > rows[-1]["lr"] == 0  # cosine, the thesis order: the last epoch trains with lr_min
    # an architecture outside the sample is added, not sampled
    arch = store.get("architectures", "1-1-1@8")
    assert arch["sampled"] is False and arch["params"] > 0
    # model.pt is a plain state_dict the network loads, checkpoint.pt the resumable one
    from core.arch import parse_arch
    from core.models import build_network

    state = torch.load(summary["checkpoint"], map_location="cpu", weights_only=True)
    build_network(parse_arch("1-1-1@8")).load_state_dict(state)
    full = torch.load(Path(summary["checkpoint"]).with_name("checkpoint.pt"), weights_only=False)
    assert full["epoch"] == 3 and {"model", "optimizer", "scheduler", "rng"} <= set(full)


@pytest.mark.slow
def test_kill_9_then_resume_continues_exactly(cli1, cifar_dir, tmp_path):
    """kill -9 mid-epoch 2, resume: epochs 2 and 3 equal an uninterrupted run with the same seed."""
    from core.arch import parse_arch
    from core.train import make_config, train

    r = cli1("train", "1-1-1@8", "--epochs", "3", *TINY, "--data", cifar_dir, "--detach", "--json")
    assert r.returncode == 0, r.stderr
    [summary] = r.json()
    run_id = summary["id"]
    store = Store(cli1.store)
    run_dir = store.run_dir(run_id)

    def in_epoch_2():
        try:
            state = json.loads((run_dir / "progress.json").read_text())
        except (OSError, ValueError):
            return False
        return state.get("epoch") == 2 and (state.get("batch") or 0) >= 1 and state.get("phase") == "train"

    wait_for(in_epoch_2, what="epoch 2 to start")
    pid = store.get("runs", run_id)["pid"]
    assert os.getsid(pid) == pid  # detached: its own session
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3],
          30, "the process to die")

    # the uninterrupted reference, in this process, after the kill (same config, 1 thread)
    record = store.get("runs", run_id)
    torch.set_num_threads(1)
    cfg = make_config(**record["config"])
    train(parse_arch("1-1-1@8"), cfg, tmp_path / "reference")
    reference = [json.loads(x) for x in (tmp_path / "reference" / "metrics.jsonl").read_text().splitlines()]

    from core.jobs import refresh

    assert run_id in refresh(store)
    record = store.get("runs", run_id)
    assert record["status"] == "interrupted" and record["epoch"] == 1

    r = cli1("resume", run_id, "--json")
    assert r.returncode == 0, r.stderr
    [resumed] = r.json()
    assert resumed["status"] == "done" and resumed["epoch"] == 3
    assert runners_of(run_id) == []  # `resume` in the foreground returned once its runner had exited
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    for ours, ref in zip(rows, reference):
        for key in ("loss", "train_acc", "test_acc", "test_loss", "lr", "drop_path"):
            assert ours[key] == ref[key], (ours["epoch"], key, ours[key], ref[key])
    assert "resumed" in (run_dir / "log.txt").read_text()


def test_bad_input_is_one_line_and_keeps_the_store(cli1, cifar_dir, tmp_path):
    # a store with one interrupted run whose checkpoint is corrupt
    store = Store(cli1.store)
    store.insert("runs", {"id": "t-0badc0de", "arch_id": "1-1-1@8", "arch": "1-1-1", "K": 1, "L": 1, "M": 1,
                          "channels": 8, "genotype": "SNAS_mild", "seed": 0, "profile": "quick", "epochs": 2,
                          "epoch": 1, "status": "interrupted", "executor": "local", "run_dir": "runs/t-0badc0de",
                          "config": {"epochs": 2}, "accuracy": 12.5, "checkpoint": "runs/t-0badc0de/model.pt"})
    (store.run_dir("t-0badc0de") / "checkpoint.pt").write_bytes(b"PK\x03\x04 truncated zip")
    before = Path(cli1.store).read_bytes()

    cases = [
        (("train", "1-x-1@8", "--data", cifar_dir), "1-x-1@8"),
        (("train", "0-1-1@8", "--data", cifar_dir), "K must be >= 1"),
        (("train", "1-1-1@8", "--epochs", "-3", "--data", cifar_dir), "epochs must be >= 1"),
        (("train", "1-1-1@8", "--data", tmp_path / "no-such-data"), "no-such-data"),
        (("train", "1-1-1@8/NOPE", "--data", cifar_dir), "NOPE"),
        (("train", "1-1-1@8", "--executor", "ray", "--data", cifar_dir), "--address"),
        (("resume", "t-0badc0de"), "checkpoint"),
        (("resume", "t-00000000"), "t-00000000"),
        (("cancel", "t-0badc0de"), "already interrupted"),
    ]
    for args, needle in cases:
        line = assert_one_line_error(cli1(*args), 2)
        assert needle in line, (args, line)
        assert Path(cli1.store).read_bytes() == before, args
    assert not list((Path(cli1.store).parent / "runs").glob("t-*/stdout.txt"))  # nothing was started
