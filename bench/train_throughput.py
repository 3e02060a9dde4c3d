"""Training input pipeline and training step: klmtui's against the thesis' (DARTS-style) loop.

    .venv/bin/python bench/train_throughput.py --data DIR [--arch 1-1-1@16] [--images 20000]
        [--steps 30] [--batch-size 96] [--threads 2]

Measured side by side in one run, printed as ratios:
1. data pipeline, images/s: `core.augment.Augmenter` batches from the decoded uint8 tensor, against
   the thesis' PIL pipeline (RandomCrop(32, 4), RandomHorizontalFlip, ToTensor, Normalize, Cutout
   16) through a DataLoader with 2 workers over the same in-memory images (as torchvision's
   CIFAR10 serves them: `Image.fromarray` per item). Target: >= 10x.
2. full training step, images/s (augmentation + forward + backward + clip + SGD step, same
   architecture, same batch): `core.train`'s loop against the thesis-style loop fed by that
   DataLoader. Target: >= 1.0x on the CPU.
`--data` is an ImageFolder CIFAR-10 (e.g. the unpacked shared JPEG copy) or torchvision's folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as core.jobs runs training processes; both loops alike

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class ArrayDataset:
    """What torchvision's CIFAR10 does per item: uint8 array -> PIL image -> transform."""

    def __init__(self, images, labels, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def thesis_loader(split, batch_size: int, workers: int = 2):
    import torch

    from core.augment import thesis_transform

    ds = ArrayDataset(split.images, split.labels, thesis_transform())
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers,
                                       pin_memory=False, drop_last=True, persistent_workers=False)


def pipeline_ours(images, batch_size: int, n: int) -> float:
    import torch

    from core.augment import Augmenter

    gen = torch.Generator().manual_seed(0)
    order = torch.randperm(len(images), generator=gen)
    augmenter = Augmenter(images)  # pads and mirrors the set once, as core.train does per run
    augmenter(order[:batch_size], gen)  # warm-up
    start = time.perf_counter()
    done = 0
    while done < n:
        for b in range(0, len(order) - batch_size + 1, batch_size):
            augmenter(order[b:b + batch_size], gen)
            done += batch_size
            if done >= n:
                break
    return done / (time.perf_counter() - start)


def pipeline_thesis(split, batch_size: int, n: int) -> float:
    loader = thesis_loader(split, batch_size)
    done = 0
    it = iter(loader)
    next(it)  # workers started, first batch ready
    start = time.perf_counter()
    while done < n:
        try:
            x, _ = next(it)
        except StopIteration:
            it = iter(loader)
            continue
        done += x.shape[0]
    return done / (time.perf_counter() - start)


def _model(arch_text: str, cfg):
    import torch

    from core.arch import parse_arch
    from core.models import build_network

    torch.manual_seed(0)
    model = build_network(parse_arch(arch_text))
    model.drop_path_prob = cfg.drop_path * 0.5
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    return model, optimizer, scaler


def steps_ours(arch_text: str, images, labels, cfg, steps: int) -> float:
    import torch

    from core.augment import AugmentConfig, Augmenter
    from core.train import memory_format, train_step

    device = torch.device("cpu")
    model, optimizer, scaler = _model(arch_text, cfg)
    fmt = memory_format(cfg, device)  # as core.train runs it
    model = model.to(memory_format=fmt)
    gen = torch.Generator().manual_seed(1)
    order = torch.randperm(len(labels), generator=gen)
    augmenter = Augmenter(images, AugmentConfig(cutout=cfg.cutout))

    def step(i):
        idx = order[(i * cfg.batch_size) % (len(order) - cfg.batch_size):][:cfg.batch_size]
        x = augmenter(idx, gen).contiguous(memory_format=fmt)
        train_step(model, optimizer, scaler, x, labels[idx], cfg, device)

    for i in range(3):
        step(i)
    start = time.perf_counter()
    for i in range(steps):
        step(i)
    return steps * cfg.batch_size / (time.perf_counter() - start)


def steps_thesis(arch_text: str, split, cfg, steps: int) -> float:
    """The DARTS `train()` loop: DataLoader batches, model(input), aux loss, clip, step."""
    from torch import nn

    model, optimizer, _ = _model(arch_text, cfg)
    criterion = nn.CrossEntropyLoss()
    loader = thesis_loader(split, cfg.batch_size)
    it = iter(loader)

    def step():
        nonlocal it
        try:
            inputs, target = next(it)
        except StopIteration:
            it = iter(loader)
            inputs, target = next(it)
        optimizer.zero_grad()
        logits, logits_aux = model(inputs)
        loss = criterion(logits, target)
        if logits_aux is not None:
            loss += cfg.auxiliary_weight * criterion(logits_aux, target)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        loss.item()

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * cfg.batch_size / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="CIFAR-10 folder (ImageFolder or torchvision)")
    parser.add_argument("--arch", default="1-1-1@16")
    parser.add_argument("--images", type=int, default=20000, help="images per data-pipeline measurement")
    parser.add_argument("--steps", type=int, default=30, help="training steps per loop measurement")
    parser.add_argument("--batch-size", type=int, default=96)
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the training process")
    args = parser.parse_args(argv)

    import torch

    from core.data import balanced_subset, load_cifar10
    from core.train import make_config

    torch.set_num_threads(args.threads)
    cfg = make_config("paper", batch_size=args.batch_size)
    train_split, _ = load_cifar10(args.data)
    split = balanced_subset(train_split, min(len(train_split), max(args.images, 10 * args.batch_size)))
    split.images = split.images.copy()
    images, labels = split.tensors()
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch_size}, {len(labels)} images, "
          f"arch {args.arch}", flush=True)

    ours = pipeline_ours(images, args.batch_size, args.images)
    theirs = pipeline_thesis(split, args.batch_size, args.images)
    print(f"data pipeline   ours {ours:10,.0f} img/s   thesis PIL+DataLoader(2 workers) {theirs:9,.0f} img/s   "
          f"ratio {ours / theirs:6.1f}x  (target >= 10x)", flush=True)

    ours_step = steps_ours(args.arch, images, labels, cfg, args.steps)
    theirs_step = steps_thesis(args.arch, split, cfg, args.steps)
    print(f"training step   ours {ours_step:10,.1f} img/s   thesis-style loop              {theirs_step:9,.1f} img/s   "
          f"ratio {ours_step / theirs_step:6.2f}x  (target >= 1.0x)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
