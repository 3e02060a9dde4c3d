"""The `paper` recipe is the thesis' (issue 14): its learning-rate order, fp32 unless asked, and the
resolved recipe + torch/CUDA/cuDNN versions recorded with every run."""

import json
import math

import pytest
import torch

from core.store import Store
from core.train import PROFILES, epoch_lr, make_config, resolved_recipe
from tests.test_jobs import stop_active_runs


def thesis_lr(lr, epochs, epoch):
    """The thesis' train.py: `scheduler.step()` before epoch `epoch` -> CosineAnnealingLR at t = epoch + 1."""
    return 0.0 + (lr - 0.0) * (1 + math.cos(math.pi * (epoch + 1) / epochs)) / 2


def test_epoch_lr_is_torch_cosine_stepped_before_each_epoch():
    """The thesis' loop replayed with torch's own scheduler: step, then train the epoch."""
    cfg = make_config("paper")
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs)
    for epoch in range(cfg.epochs):
        opt.step()
        sched.step()
        assert epoch_lr(cfg, epoch) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9, abs=1e-12)
    assert epoch_lr(cfg, 0) == pytest.approx(0.025 * (1 + math.cos(math.pi / 600)) / 2)
    assert epoch_lr(cfg, cfg.epochs - 1) == 0.0  # the last epoch uses lr_min, not lr(599) ~ 1.7e-7


def test_profiles_fp32_unless_asked():
    paper, fast = make_config("paper"), make_config("fast")
    assert paper.amp is False and paper.channels_last is False
    assert fast.amp is True and fast.channels_last is True
    assert {k: v for k, v in fast.to_dict().items() if k not in ("profile", "amp", "channels_last")} == \
        {k: v for k, v in paper.to_dict().items() if k not in ("profile", "amp", "channels_last")}
    assert make_config("paper", amp=True).amp is True
    assert set(PROFILES) >= {"paper", "fast", "quick"}
    # --amp is recorded; where there is no CUDA the recipe says that it trained in fp32
    recipe = resolved_recipe(make_config("paper", amp=True), torch.device("cpu"))
    assert recipe["config"]["amp"] is True and recipe["precision"] == "fp32" and "CUDA only" in recipe["note"]
    assert resolved_recipe(make_config("fast"), torch.device("cpu"))["memory_format"] == "channels_last"


@pytest.mark.slow
def test_paper_schedule_two_epochs_on_real_cifar(cli, cifar_dir):
    """Train 2 epochs with the paper recipe (tiny data); every epoch's lr is the thesis' formula."""
    cli.env["KLMTUI_TORCH_THREADS"] = "1"
    try:
        r = cli("train", "1-1-1@8", "--epochs", "2", "--train-subset", "300", "--test-subset", "100",
                "--batch-size", "64", "--data", cifar_dir, "--json")
        assert r.returncode == 0, r.stderr
        [summary] = r.json()
        store = Store(cli.store)
        run = store.get("runs", summary["id"])
        rows = [json.loads(line) for line in (store.run_dir(run["id"]) / "metrics.jsonl").read_text().splitlines()]
        assert [row["epoch"] for row in rows] == [1, 2]
        for row in rows:
            assert row["lr"] == pytest.approx(thesis_lr(0.025, 2, row["epoch"] - 1), abs=1e-15)
        assert rows[0]["lr"] == pytest.approx(0.0125) and rows[1]["lr"] == 0.0
        recipe = run["recipe"]
        assert recipe == json.loads((store.run_dir(run["id"]) / "recipe.json").read_text())
        assert recipe["profile"] == "paper" and recipe["precision"] == "fp32" and recipe["thesis_numerics"] is True
        assert recipe["config"]["amp"] is False and "before each epoch" in recipe["lr_schedule"]
        assert recipe["torch"] == torch.__version__ and recipe["cuda"] == torch.version.cuda
        assert "cudnn" in recipe and recipe["deterministic_algorithms"] is True  # the CPU is deterministic
        weights = torch.load(summary["checkpoint"], weights_only=True)
        assert {t.dtype for t in weights.values() if t.is_floating_point()} == {torch.float32}
    finally:
        stop_active_runs(cli.store)
