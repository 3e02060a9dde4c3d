"""The thesis' training recipe for any K-L-M@C network: one run = one process.

`python -m core.train --run-id ID --store PATH` trains the run the store describes (its `config`),
writing into the run folder:
- `checkpoint.pt`: model, optimizer, scheduler, AMP scaler, RNG states, epoch (atomic, every epoch);
- `model.pt`: the plain `state_dict` (what the Jetson agent loads with torch 1.10);
- `metrics.jsonl`: one row per epoch (epoch, loss, train_acc, test_acc, test_loss, lr, drop_path,
  seconds, images_per_s, time);
- `progress.json`: the live state of the current epoch (rewritten about twice a second);
- `log.txt`: human-readable lines;
- `recipe.json`: the resolved recipe (config, lr schedule, precision, memory format, determinism,
  torch/CUDA/cuDNN versions; also the run record's `recipe`).
It resumes from `checkpoint.pt` whenever one exists, so a resumed or retried run continues exactly.

Exact continuation: every random stream of an epoch (the shuffle, the augmentation, path dropout)
is seeded from (seed, epoch), not carried over from the previous epoch, so epoch e+1 after a resume
draws what an uninterrupted run draws; on the CPU the kernels are deterministic. The RNG states are
saved and restored as well, for anything outside the loop.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import sys
import time
import traceback
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable

from core import settings
from core.arch import Arch, parse_arch
from core.errors import InputError, KlmtuiError

CHECKPOINT = "checkpoint.pt"
PREVIOUS_CHECKPOINT = "checkpoint.prev.pt"  # the last two are kept (issue 12)
MODEL = "model.pt"
METRICS = "metrics.jsonl"
PROGRESS = "progress.json"
LOG = "log.txt"
RECIPE = "recipe.json"
CHECKPOINT_VERSION = 1
PROGRESS_INTERVAL_S = 0.5

Reporter = Callable[[dict], None]


@dataclass
class TrainConfig:
    """Everything a run needs besides the architecture; stored as the run's `config`."""

    profile: str = "paper"
    epochs: int = 600
    batch_size: int = 96
    lr: float = 0.025
    lr_min: float = 0.0
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    cutout: int = 16
    drop_path: float = 0.2  # ramped linearly: drop_path * epoch / epochs
    auxiliary_weight: float = 0.4
    train_subset: int | None = None
    test_subset: int | None = None
    data: str | None = None
    seed: int = 0
    eval_batch_size: int = 500
    amp: bool = False  # CUDA only: mixed precision fp16 (the thesis trained in fp32); `--amp`, profile `fast`
    channels_last: bool = False  # CUDA only: channels_last memory format (the CPU always uses it, fp32 either way)
    deterministic: bool = False  # CPU: always deterministic; CUDA: deterministic kernels only when True

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# The thesis (section 3.4, SNAS/DARTS evaluation settings, fp32), the same recipe with what is faster
# on a GPU (mixed precision + channels_last: not the thesis' numerics, and the run record says so),
# and a few-minutes smoke profile.
PROFILES: dict[str, dict] = {
    "paper": {},
    "fast": {"amp": True, "channels_last": True},
    "quick": dict(epochs=5, batch_size=128, lr=0.05, cutout=0, drop_path=0.0, train_subset=10000, test_subset=2000),
}


def make_config(profile: str = "paper", **overrides: Any) -> TrainConfig:
    """The profile's settings with the non-None `overrides` applied, validated (InputError)."""
    if profile not in PROFILES:
        raise InputError(f"unknown profile {profile!r} (known: {', '.join(PROFILES)})")
    values = dict(PROFILES[profile], profile=profile)
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name: f for f in fields(TrainConfig)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise InputError(f"unknown training option(s): {', '.join(unknown)}")
    for name, value in list(values.items()):
        values[name] = _coerce(name, value, known[name].type)
    cfg = TrainConfig(**values)
    for name in ("epochs", "batch_size", "eval_batch_size"):
        if int(getattr(cfg, name)) < 1:
            raise InputError(f"{name.replace('_', ' ')} must be >= 1 (got {getattr(cfg, name)})")
    for name in ("train_subset", "test_subset"):
        value = getattr(cfg, name)
        if value is not None and int(value) < 1:
            raise InputError(f"{name.replace('_', ' ')} must be >= 1 (got {value})")
    if cfg.lr <= 0 or cfg.weight_decay < 0 or cfg.grad_clip <= 0 or not 0 <= cfg.drop_path < 1:
        raise InputError("lr must be > 0, weight decay >= 0, grad clip > 0 and drop path in [0, 1)")
    from core.limits import check_train_config

    check_train_config(cfg)  # upper bounds, finiteness, batch >= 2, subsets >= one image per class
    return cfg


def _coerce(name: str, value: Any, annotation: object) -> Any:
    """Form and JSON values arrive as strings too: "3" -> 3 for an int field, clear error otherwise."""
    if value is None:
        return None
    kind = str(annotation).split("|")[0].strip()
    try:
        if kind == "bool":
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
        if kind == "int":
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if kind == "float":
            return float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name.replace('_', ' ')} must be a number (got {value!r})") from None
    return str(value) if kind == "str" else value


def epoch_lr(cfg: TrainConfig, epoch: int) -> float:
    """The learning rate of 0-based `epoch`, in the thesis' order: its train.py calls
    `scheduler.step()` *before* each epoch, so epoch e trains with the cosine value of e + 1
    (epoch 0 with lr(1), the last epoch with lr(epochs) = lr_min):
    lr(t) = lr_min + (lr - lr_min) * (1 + cos(pi * t / epochs)) / 2."""
    import math

    t = min(epoch + 1, cfg.epochs)
    return cfg.lr_min + (cfg.lr - cfg.lr_min) * (1.0 + math.cos(math.pi * t / cfg.epochs)) / 2.0


LR_SCHEDULE = "cosine to lr_min over the epochs, stepped before each epoch as the thesis' train.py: epoch e uses lr(e+1)"


def resolved_recipe(cfg: TrainConfig, device) -> dict:
    """What a run actually does on `device`, recorded with every run: the config, the schedule,
    precision, memory format, determinism, and the torch / CUDA / cuDNN versions."""
    import platform

    import torch

    cuda = device.type == "cuda"
    amp = bool(cfg.amp and cuda)
    cudnn = torch.backends.cudnn
    recipe = {
        "profile": cfg.profile,
        "config": cfg.to_dict(),
        "lr_schedule": LR_SCHEDULE,
        "precision": "mixed fp16 (autocast + GradScaler)" if amp else "fp32",
        "memory_format": "channels_last" if memory_format(cfg, device) == torch.channels_last else "contiguous",
        "thesis_numerics": not amp,  # fp32 + the thesis' schedule (channels_last keeps fp32 numbers)
        "device": device.type,
        "device_name": torch.cuda.get_device_name(device) if cuda else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": cudnn.version() if cudnn.is_available() else None,
        "python": platform.python_version(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_benchmark": bool(cudnn.benchmark),
        "cudnn_deterministic": bool(cudnn.deterministic),
        "threads": torch.get_num_threads(),
    }
    if cfg.amp and not cuda:
        recipe["note"] = "amp asked for, but mixed precision is CUDA only: trained in fp32"
    return recipe


def epoch_seed(seed: int, epoch: int, stream: int) -> int:
    """A seed for one random stream (0 shuffle, 1 augmentation, 2 path dropout) of one epoch."""
    return (seed * 1_000_003 + epoch * 7919 + stream * 104_729) % (2**63 - 1)


# --- files of a run ------------------------------------------------------------------------------


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Temp file, fsync, rename; a failure leaves no temp file, a full disk is `DiskFull` (core.nospace)."""
    from core.nospace import write_atomically

    write_atomically(path, lambda fh: fh.write(data))


def _torch_bytes(obj: Any) -> bytes:
    """`torch.save` into memory first: a full disk is then a plain ENOSPC on write, not torch's
    "unexpected pos" (issue 12)."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=True)
    return buf.getvalue()


def atomic_torch_save(obj: Any, path: Path) -> None:
    """`torch.save` to a temp file in the same folder, fsync, rename: a kill leaves old or new."""
    atomic_write_bytes(path, _torch_bytes(obj))


def save_checkpoint(obj: Any, path: Path) -> None:
    """Keep the last two checkpoints: the current one becomes `checkpoint.prev.pt` (a hard link,
    so `path` is never missing) only once the new one is completely written."""
    data = _torch_bytes(obj)
    prev = path.with_name(PREVIOUS_CHECKPOINT)
    if path.exists():
        link = prev.with_name(f".{prev.name}.{os.getpid()}.tmp")
        try:
            link.unlink(missing_ok=True)
            os.link(path, link)
            os.replace(link, prev)
        except OSError:  # no hard links here: a copy of the bytes
            link.unlink(missing_ok=True)
            atomic_write_bytes(prev, path.read_bytes())
    atomic_write_bytes(path, data)


def load_latest_checkpoint(run_dir: Path) -> tuple[dict, Path, str | None] | None:
    """(checkpoint, its path, a warning or None) from `checkpoint.pt`, or from `checkpoint.prev.pt`
    when the newest is torn or corrupt; None when the run has none. Both unreadable: InputError."""
    current, prev = Path(run_dir) / CHECKPOINT, Path(run_dir) / PREVIOUS_CHECKPOINT
    if not current.exists() and not prev.exists():
        return None
    try:
        if current.exists():
            return load_checkpoint(current), current, None
        problem = f"{current} is missing"
    except InputError as exc:
        if not prev.exists():
            raise
        problem = str(exc)
    ckpt = load_checkpoint(prev)
    return ckpt, prev, f"{problem}; resuming from the one before, {prev} (epoch {ckpt.get('epoch')})"


def read_jsonl(path: Path) -> list[dict]:
    """The complete lines of a JSON-lines file (a torn last line from a kill is skipped)."""
    rows: list[dict] = []
    try:
        text = path.read_text()
    except FileNotFoundError:
        return rows
    for line in text.splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def append_jsonl(path: Path, row: dict) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps(row) + "\n")
        fh.flush()


def rewrite_metrics(path: Path, keep_through_epoch: int) -> None:
    """Drop rows after the checkpointed epoch (written just before a kill), keep the rest."""
    rows = [r for r in read_jsonl(path) if int(r.get("epoch", 0)) <= keep_through_epoch]
    atomic_write_bytes(path, "".join(json.dumps(r) + "\n" for r in rows).encode())


def load_checkpoint(path: Path) -> dict:
    """The full checkpoint, or an InputError naming the file when it cannot be read."""
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises anything from RuntimeError to UnpicklingError/EOFError
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"checkpoint {path} is unreadable (corrupt or truncated): {detail[:160]}") from None
    if not isinstance(ckpt, dict) or ckpt.get("version") != CHECKPOINT_VERSION or "model" not in ckpt:
        raise InputError(f"checkpoint {path} is not a klmtui training checkpoint")
    return ckpt


# --- the loop ------------------------------------------------------------------------------------


class Cancelled(Exception):
    """SIGTERM arrived (klmtui cancel): stop, keep the last checkpoint."""


def _device():
    import torch

    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def _rng_state() -> dict:
    import numpy as np
    import torch

    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    import numpy as np
    import torch

    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _configure_determinism(cfg: TrainConfig, device) -> None:
    import torch

    if device.type == "cpu" or cfg.deterministic:
        if device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    else:
        torch.backends.cudnn.benchmark = True  # as the thesis' train.py


def evaluate(model, images, labels, cfg: TrainConfig, device) -> tuple[float, float]:
    """(loss, accuracy %) on a whole split, no augmentation."""
    import torch

    from core.augment import normalize

    model.eval()
    total_loss = 0.0
    correct = 0
    with torch.inference_mode(), _autocast(cfg, device):
        for start in range(0, len(labels), cfg.eval_batch_size):
            x = _to_device(normalize(images[start:start + cfg.eval_batch_size].to(device)), cfg, device)
            y = labels[start:start + cfg.eval_batch_size].to(device)
            logits, _ = model(x)
            total_loss += torch.nn.functional.cross_entropy(logits.float(), y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
    n = max(1, len(labels))
    return total_loss / n, 100.0 * correct / n


def _autocast(cfg: TrainConfig, device):
    import contextlib

    import torch

    if device.type == "cuda" and cfg.amp:
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def memory_format(cfg: TrainConfig, device):
    """channels_last on the CPU (oneDNN convolutions, ~1.2x per step measured on this 2-core
    machine; fp32 as ever) and on CUDA only when asked (`channels_last`, profile `fast`)."""
    import torch

    if device.type == "cpu" or cfg.channels_last:
        return torch.channels_last
    return torch.contiguous_format


def _to_device(x, cfg: TrainConfig, device):
    return x.to(device, non_blocking=True).contiguous(memory_format=memory_format(cfg, device))


def train_step(model, optimizer, scaler, x, y, cfg: TrainConfig, device) -> tuple[float, int]:
    """One SGD step of the thesis recipe (auxiliary loss, gradient clipping); (loss, correct)."""
    import torch

    with _autocast(cfg, device):
        logits, logits_aux = model(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        if logits_aux is not None:
            loss = loss + cfg.auxiliary_weight * torch.nn.functional.cross_entropy(logits_aux, y)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    scaler.step(optimizer)
    scaler.update()
    return loss.item(), int((logits.argmax(1) == y).sum().item())


def train(arch: Arch, cfg: TrainConfig, run_dir: Path, report: Reporter | None = None) -> dict:
    """Train `arch` with `cfg`, resuming from `run_dir/checkpoint.pt` if present.

    `report(event)` receives `{"event": "start"|"progress"|"epoch"|"done", ...}` dicts as they
    happen (the local process writes them to files and the store, a Ray task to an actor).
    Returns the final summary (`accuracy`, `best_accuracy`, `epoch`, `checkpoint`, `model`).
    """
    import numpy as np
    import torch

    from core.augment import AugmentConfig, Augmenter
    from core.data import balanced_subset, load_cifar10
    from core.models import build_network

    report = report or (lambda event: None)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    log = _Logger(run_dir / LOG)
    device = _device()
    _configure_determinism(cfg, device)

    train_split, test_split = load_cifar10(cfg.data)
    train_split = balanced_subset(train_split, cfg.train_subset)
    test_split = balanced_subset(test_split, cfg.test_subset)
    train_x, train_y = train_split.tensors()
    test_x, test_y = test_split.tensors()
    if device.type == "cuda":  # the whole uint8 set fits: augmentation runs on the GPU (Augmenter)
        train_x, train_y, test_x, test_y = (t.to(device) for t in (train_x, train_y, test_x, test_y))

    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    random.seed(cfg.seed)
    model = build_network(arch, num_classes=len(train_split.classes), auxiliary=cfg.auxiliary_weight > 0)
    model = model.to(device=device, memory_format=memory_format(cfg, device))
    optimizer = torch.optim.SGD(model.parameters(), cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and cfg.amp)
    augmenter = Augmenter(train_x, AugmentConfig(cutout=cfg.cutout))

    start_epoch, best = 0, None
    ckpt_path = run_dir / CHECKPOINT
    latest = load_latest_checkpoint(run_dir)
    if latest is not None:
        ckpt, used, warning = latest
        if warning:
            log(f"warning: {warning}")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])  # the lr is a function of the epoch (epoch_lr)
        if ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        _set_rng_state(ckpt["rng"])
        start_epoch, best = int(ckpt["epoch"]), ckpt.get("best_accuracy")
        rewrite_metrics(run_dir / METRICS, start_epoch)
        log(f"resumed {arch.id} from {used} after epoch {start_epoch}")
    else:
        log(f"training {arch.id} seed {cfg.seed} on {device.type}: {len(train_y)} train / {len(test_y)} test "
            f"images, {cfg.epochs} epochs, batch {cfg.batch_size}")

    n = len(train_y)
    batches = _batch_count(n, cfg.batch_size)
    recipe = resolved_recipe(cfg, device)
    atomic_write_bytes(run_dir / RECIPE, json.dumps(recipe, indent=2).encode())
    report({"event": "start", "epoch": start_epoch, "epochs": cfg.epochs, "batches": batches, "pid": os.getpid(),
            "host": socket.gethostname(), "device": device.type, "resumed": start_epoch > 0, "recipe": recipe})
    last: dict[str, float | None] = {"test_acc": None}
    for epoch in range(start_epoch, cfg.epochs):
        lr = epoch_lr(cfg, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.drop_path_prob = cfg.drop_path * epoch / cfg.epochs
        torch.manual_seed(epoch_seed(cfg.seed, epoch, 2))  # path dropout draws from the global RNG
        order = torch.randperm(n, generator=torch.Generator().manual_seed(epoch_seed(cfg.seed, epoch, 0)))
        aug_gen = torch.Generator().manual_seed(epoch_seed(cfg.seed, epoch, 1))
        model.train()
        started = last_report = time.perf_counter()
        seen = correct = 0
        loss_sum = 0.0
        for b in range(batches):
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            x = _to_device(augmenter(idx, aug_gen), cfg, device)
            loss, hits = train_step(model, optimizer, scaler, x, train_y[idx.to(train_y.device)], cfg, device)
            k = len(idx)
            seen += k
            loss_sum += loss * k
            correct += hits
            now = time.perf_counter()
            if now - last_report >= PROGRESS_INTERVAL_S or b == batches - 1:
                last_report = now
                rate = seen / max(now - started, 1e-9)
                left = (batches - b - 1) * cfg.batch_size + (cfg.epochs - epoch - 1) * n
                report({"event": "progress", "epoch": epoch + 1, "epochs": cfg.epochs, "batch": b + 1,
                        "batches": batches, "loss": loss_sum / seen, "train_acc": 100.0 * correct / seen,
                        "images_per_s": rate, "eta_s": left / max(rate, 1e-9), "phase": "train",
                        "test_acc": last["test_acc"]})
        train_seconds = time.perf_counter() - started
        test_loss, test_acc = evaluate(model, test_x, test_y, cfg, device)
        best = test_acc if best is None else max(best, test_acc)
        row = {"epoch": epoch + 1, "loss": loss_sum / seen, "train_acc": 100.0 * correct / seen,
               "test_acc": test_acc, "test_loss": test_loss, "lr": lr, "drop_path": model.drop_path_prob,
               "seconds": time.perf_counter() - started, "images_per_s": seen / max(train_seconds, 1e-9),
               "time": _now()}
        atomic_torch_save(_strip_module(model).state_dict(), run_dir / MODEL)
        save_checkpoint({
            "version": CHECKPOINT_VERSION, "arch": arch.id, "epoch": epoch + 1, "epochs": cfg.epochs,
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": {"lr_schedule": LR_SCHEDULE, "last_epoch": epoch + 1, "next_lr": epoch_lr(cfg, epoch + 1)},
            "scaler": scaler.state_dict() if scaler.is_enabled() else None, "rng": _rng_state(),
            "best_accuracy": best, "config": cfg.to_dict(),
        }, ckpt_path)
        append_jsonl(run_dir / METRICS, row)
        last["test_acc"] = test_acc
        log(f"epoch {epoch + 1}/{cfg.epochs} loss {row['loss']:.4f} train {row['train_acc']:.2f}% "
            f"test {test_acc:.2f}% lr {lr:.5f} {row['seconds']:.1f}s {row['images_per_s']:.0f} img/s")
        report(dict(row, event="epoch", epochs=cfg.epochs, best_accuracy=best, checkpoint=str(run_dir / MODEL)))
    final = read_jsonl(run_dir / METRICS)
    accuracy = final[-1]["test_acc"] if final else None
    summary = {"event": "done", "accuracy": accuracy, "best_accuracy": best, "epoch": cfg.epochs,
               "checkpoint": str(run_dir / MODEL), "full_checkpoint": str(ckpt_path)}
    log(f"done: test accuracy {accuracy}% (best {best}%)")
    report(summary)
    return summary


def _batch_count(n: int, batch_size: int) -> int:
    """Batches per epoch; a trailing batch of one image is dropped (BatchNorm needs two)."""
    full, rest = divmod(n, batch_size)
    return full + (1 if rest >= 2 else 0) if n >= 2 else 0


def _strip_module(model):
    return getattr(model, "module", model)


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class _Logger:
    def __init__(self, path: Path):
        self.path = path

    def __call__(self, message: str) -> None:
        with open(self.path, "a") as fh:
            fh.write(f"{_now()} {message}\n")


# --- the local run process -----------------------------------------------------------------------


class StoreReporter:
    """Turns training events into run-folder files and store updates (the local executor)."""

    def __init__(self, store, run_id: str, run_dir: Path):
        self.store, self.run_id, self.run_dir = store, run_id, run_dir

    def __call__(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "progress":
            write_progress(self.run_dir, event)
        elif kind == "start":
            self.store.update("runs", self.run_id, status="running", epoch=event["epoch"], device=event["device"],
                              recipe=event.get("recipe"))
            write_progress(self.run_dir, dict(event, batch=0, phase="starting"))
        elif kind == "epoch":
            self.store.update("runs", self.run_id, epoch=event["epoch"], accuracy=event["test_acc"],
                              best_accuracy=event["best_accuracy"],
                              checkpoint=self.store.relative(event["checkpoint"]))
            write_progress(self.run_dir, dict(event, phase="epoch done", batch=None))


def write_progress(run_dir: Path, event: dict) -> None:
    row = {k: v for k, v in event.items() if k != "event"}
    row["updated"] = time.time()
    atomic_write_bytes(Path(run_dir) / PROGRESS, json.dumps(row).encode())


def run_from_store(store_path: str, run_id: str) -> int:
    """The body of `python -m core.train`: train the run the store describes, record the outcome."""
    from core.store import Store, now_iso

    store = Store(store_path)
    record = store.get("runs", run_id)
    if record is None:
        print(f"core.train: no run {run_id} in {store_path}", file=sys.stderr)
        return 2
    if record.get("status") == "cancelled":
        return 0  # cancelled between the queue and the start
    run_dir = store.resolve(record["run_dir"]) if record.get("run_dir") else store.run_dir(run_id)
    cancelled = {"flag": False}

    def on_sigterm(signum, frame):
        cancelled["flag"] = True
        raise Cancelled()

    signal.signal(signal.SIGTERM, on_sigterm)
    from core.jobs.process import identity

    store.update("runs", run_id, status="running", **identity(os.getpid()), host=socket.gethostname(),
                 started=record.get("started") or now_iso(), error=None)
    for stale in run_dir.glob(".*.tmp"):  # temp files of a writer killed mid-write (one process per run)
        stale.unlink(missing_ok=True)
    status, error = "failed", None
    try:
        arch = parse_arch(record["arch_id"])
        summary = train(arch, TrainConfig.from_dict(record["config"]), run_dir, StoreReporter(store, run_id, run_dir))
        status = "done"
        store.update("runs", run_id, accuracy=summary["accuracy"], best_accuracy=summary["best_accuracy"],
                     epoch=summary["epoch"], checkpoint=store.relative(summary["checkpoint"]))
    except Cancelled:
        status = "cancelled"
    except Exception as exc:
        from core import nospace

        full = nospace.find(exc, run_dir)
        if full is not None:  # torch, the store or a run file: one message naming the full folder
            error = nospace.message(full.folder)
            nospace.leave_marker(run_dir)  # for `refresh`, should this process not outlive the full disk
        elif isinstance(exc, KlmtuiError):
            error = str(exc)
        else:  # a bug or a crash: the store says failed, the log has the traceback
            error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            _Logger(run_dir / LOG)(traceback.format_exc())
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # finishing the record must not be interrupted
    from core import nospace

    def finish() -> None:
        # pid/pid_start stay: whoever waited for this status waits for this process to exit too
        # (core.jobs.wait_exited), and `resume` does not start a second one beside it
        fields_ = dict(status=status, finished=now_iso(), error=error)
        current = store.get("runs", run_id) or {}
        if current.get("status") == "cancelled":
            fields_["status"] = "cancelled"
        store.update("runs", run_id, **fields_)

    if status == "cancelled":
        # SIGTERM: the status stays `running` while this process lives; `klmtui cancel` records
        # `cancelled` once it is gone (core.jobs.cancel), and a SIGTERM from anything else leaves a
        # run that `refresh` finds `interrupted`, resumable. Never `cancelled` beside a live runner.
        try:
            _Logger(run_dir / LOG)("cancelled (SIGTERM)")
        except OSError:
            pass
    else:
        nospace.retry_while_full(finish)  # a full disk: recorded as soon as a store write succeeds again
    nospace.clear_marker(run_dir)
    if error:
        try:
            _Logger(run_dir / LOG)(f"failed: {error}")
        except OSError:
            pass
    try:
        from core.jobs.local import start_queued

        start_queued(store)
    except Exception as exc:  # the next run must not turn this one into a failure
        _Logger(run_dir / LOG)(f"could not start queued runs: {exc}")
    return 0 if status in ("done", "cancelled") else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.train", description=__doc__.splitlines()[0])
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--store", required=True)
    args = parser.parse_args(argv)
    threads = settings.torch_threads()
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    return run_from_store(args.store, args.run_id)


if __name__ == "__main__":
    sys.exit(main())
