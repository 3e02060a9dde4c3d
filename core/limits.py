"""Sane bounds on everything a user (or a file) can hand klmtui, checked before anything is written.

One place for the numbers, so the CLI, the TUI forms, `core.jobs.submit`, CSV imports and the
store's own validation refuse the same things with the same words (issue 12). A refused value is
an `InputError` naming the option, the bound and the value: one line, exit 2.

| what | bound | why |
|---|---|---|
| K, L, M (normal cells per block) | 1 .. 64 | the thesis uses 2-12; `20000-1-1@8` grew to 6 GB |
| initial channels C | 1 .. 512 | the thesis uses 12/24/36 |
| batch size (training) | 2 .. 4096 | BatchNorm needs two images; memory |
| train/test subset | 10 (one image per class) .. 1,000,000 | balanced subsets need every class |
| epochs | 1 .. 100,000 | |
| learning rate | finite, > 0, <= 10 | |
| seed | 0 .. 2**31 - 1 | torch/numpy seed range |
| seeds per architecture | 1 .. 100 | |
| benchmark batch | 1 .. 4096; runs, batches <= 100,000; max batches <= 1,000,000 | |
| CSV field | 4096 characters | a results table has short cells |
| a number in the store | finite | NaN/inf are not JSON |
"""

from __future__ import annotations

import math
from typing import Any

from core.errors import InputError
from core.numbers import NotANumber, NotFinite, OutOfRange, finite_in, is_number

NUM_CLASSES = 10  # CIFAR-10
MAX_BLOCK = 64
MAX_CHANNELS = 512
MIN_BATCH = 2
MAX_BATCH = 4096
MAX_SUBSET = 1_000_000
MAX_EPOCHS = 100_000
MAX_LR = 10.0
MAX_SEED = 2**31 - 1
MAX_SEEDS = 100
MAX_BENCH_COUNT = 100_000  # runs, batches, warm-up runs/batches, min batches
MAX_BENCH_BATCHES = 1_000_000  # adaptive ceiling
MAX_CSV_FIELD = 4096
MAX_DIGITS = 7  # no bounded integer option needs more


def _label(name: str) -> str:
    return name.replace("_", " ")


def check_int(name: str, value: Any, low: int, high: int) -> int:
    """`value` as a whole number in [low, high], else InputError naming `name` and the bound."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InputError(f"{_label(name)} must be a whole number (got {value!r})")
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise InputError(f"{_label(name)} must be a whole number (got {value!r})")
        value = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text.lstrip("-").isdigit() or len(text) > MAX_DIGITS + 1:
            raise InputError(f"{_label(name)} must be a whole number in {low}..{high} (got {value[:20]!r})")
        value = int(text)
    if not low <= value <= high:
        shown = str(value) if abs(value) < 10**12 else f"a {len(str(abs(value)))}-digit number"
        raise InputError(f"{_label(name)} must be in {low}..{high} (got {shown})")
    return value


def check_float(name: str, value: Any, low: float, high: float, *, low_open: bool = False) -> float:
    """`value` as a finite number in [low, high] (or (low, high] with `low_open`; core.numbers.finite_in)."""
    try:
        return finite_in(value, low, high, low_open=low_open)
    except NotANumber:
        raise InputError(f"{_label(name)} must be a number (got {value!r})") from None
    except NotFinite as exc:
        raise InputError(f"{_label(name)} must be a finite number (got {exc.shown})") from None
    except OutOfRange as exc:
        raise InputError(f"{_label(name)} must be in {exc.interval} (got {exc.value:g})") from None


def check_arch_values(K: Any, L: Any, M: Any, channels: Any) -> None:
    """K, L, M in 1..MAX_BLOCK and channels in 1..MAX_CHANNELS; the message says which."""
    for name, value in (("K", K), ("L", L), ("M", M)):
        check_int(name, value, 1, MAX_BLOCK)
    check_int("initial channels", channels, 1, MAX_CHANNELS)


def check_train_config(cfg: Any) -> None:
    """The bounds of a training configuration (a `core.train.TrainConfig`)."""
    check_int("epochs", cfg.epochs, 1, MAX_EPOCHS)
    check_int("batch_size", cfg.batch_size, MIN_BATCH, MAX_BATCH)
    check_int("eval_batch_size", cfg.eval_batch_size, 1, 65536)
    for name in ("train_subset", "test_subset"):
        value = getattr(cfg, name)
        if value is not None:
            if is_number(value) and 0 < value < NUM_CLASSES:
                raise InputError(f"{_label(name)} must be >= {NUM_CLASSES}, one image per class (got {value})")
            check_int(name, value, NUM_CLASSES, MAX_SUBSET)
    check_int("seed", cfg.seed, 0, MAX_SEED)
    check_float("lr", cfg.lr, 0.0, MAX_LR, low_open=True)
    check_float("lr_min", cfg.lr_min, 0.0, MAX_LR)
    for name, high in (("momentum", 1.0), ("weight_decay", 1.0), ("auxiliary_weight", 100.0)):
        check_float(name, getattr(cfg, name), 0.0, high)
    check_float("grad_clip", cfg.grad_clip, 0.0, 1e6, low_open=True)
    check_int("cutout", cfg.cutout, 0, 32)
    check_float("drop_path", cfg.drop_path, 0.0, 1.0)
    if cfg.drop_path >= 1:
        raise InputError(f"drop path must be below 1 (got {cfg.drop_path:g})")


def check_seeds(seeds: Any) -> int:
    return check_int("--seeds", seeds, 1, MAX_SEEDS)


def check_protocol(protocol: Any) -> None:
    """Upper bounds of a benchmark protocol (`core.latency.Protocol` checks the lower ones)."""
    check_int("batch", protocol.batch, 1, MAX_BATCH)
    for name in ("runs", "batches", "warmup_runs", "warmup_batches", "min_batches"):
        value = getattr(protocol, name, None)
        if value is not None:
            check_int(name, value, 0, MAX_BENCH_COUNT)
    if getattr(protocol, "max_batches", None) is not None:
        check_int("max_batches", protocol.max_batches, 1, MAX_BENCH_BATCHES)
    if getattr(protocol, "ci_rel", None) is not None:
        check_float("ci_rel", protocol.ci_rel, 0.0, 1.0, low_open=True)


def check_agent_extras(extras: dict) -> None:
    """Upper bounds of the agent's own options (threads, tegrastats interval, power samples)."""
    for name, high in (("threads", 1024), ("tegrastats_interval", 60_000), ("power_min_samples", 100_000)):
        value = extras.get(name)
        if is_number(value):
            check_int(name, value, 0, high)


__all__ = [
    "NUM_CLASSES", "MAX_BLOCK", "MAX_CHANNELS", "MIN_BATCH", "MAX_BATCH", "MAX_SUBSET", "MAX_EPOCHS",
    "MAX_LR", "MAX_SEED", "MAX_SEEDS", "MAX_CSV_FIELD", "check_int", "check_float", "check_arch_values",
    "check_train_config", "check_seeds", "check_protocol", "check_agent_extras", "is_number",
]  # fmt: skip
