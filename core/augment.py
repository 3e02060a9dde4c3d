"""The thesis' CIFAR-10 augmentation, batched on tensors.

DARTS/SNAS train with `RandomCrop(32, padding=4)`, `RandomHorizontalFlip()`, `ToTensor()`,
`Normalize(mean, std)` and `Cutout(16)` (zeroing a 16x16 square, clipped at the border, centred
uniformly in the image, *after* normalisation). In PIL that is Python per image in DataLoader
workers; here one gather does crop + flip for a whole uint8 batch, one fused expression
normalises and cuts out. Per image the randomness is the same: crop offsets uniform in 0..8,
flip with p=0.5, cutout centre uniform over the pixels. All random numbers come from the
`torch.Generator` passed in (on the CPU), so a batch is reproducible from its seed on any device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import torch

# The statistics DARTS and SNAS normalise with (official lossless CIFAR-10 train split).
CIFAR_MEAN = (0.49139968, 0.48215827, 0.44653124)
CIFAR_STD = (0.24703233, 0.24348505, 0.26158768)


@dataclass(frozen=True)
class AugmentConfig:
    padding: int = 4
    flip: bool = True
    cutout: int = 16  # side of the square; 0 disables it
    mean: tuple[float, float, float] = CIFAR_MEAN
    std: tuple[float, float, float] = CIFAR_STD


def normalize(images: "torch.Tensor", cfg: AugmentConfig = AugmentConfig(), dtype=None) -> "torch.Tensor":
    """uint8 (or float in 0..1) N,3,H,W -> normalised float, what `ToTensor()+Normalize()` give."""
    import torch

    dtype = dtype or torch.float32
    scale, shift = _affine(cfg, images.device, dtype)
    x = images.to(dtype)
    if images.dtype == torch.uint8:
        return torch.addcmul(shift, x, scale)
    return torch.addcmul(shift, x, scale * 255.0)


class Augmenter:
    """Augmented batches drawn from one uint8 image set, padded and mirrored once up front.

    The set is kept as NHWC uint8 zero-padded by `padding` pixels, plus its mirror image when
    flipping (2x the padded size: 480 MB for all 50,000 CIFAR training images). A batch is then
    a single gather of 32x32 windows out of a strided view (window origin = crop offset, source
    = the image or its mirror), one normalising pass and one cutout pass: no per-batch padding,
    flipping or concatenation.

    Mirroring the padded image and cropping at x-offset o equals cropping at o' = 2*padding - o
    and mirroring the crop; o and o' are both uniform, so the distribution is the PIL one.
    """

    def __init__(self, images: "torch.Tensor", cfg: AugmentConfig = AugmentConfig()):
        import torch

        self.cfg = cfg
        self.n, self.c, self.h, self.w = images.shape
        pad = cfg.padding
        nhwc = images.permute(0, 2, 3, 1)
        padded = torch.nn.functional.pad(nhwc, (0, 0, pad, pad, pad, pad)) if pad else nhwc.contiguous()
        self._source = torch.cat([padded, padded.flip(2)]) if cfg.flip else padded
        s_n, s_h, s_w, s_c = self._source.stride()
        self._windows = self._source.as_strided(
            (self._source.shape[0], 2 * pad + 1, 2 * pad + 1, self.h, self.w, self.c), (s_n, s_h, s_w, s_h, s_w, s_c))

    @property
    def device(self):
        return self._source.device

    def __call__(self, index: "torch.Tensor", generator: "torch.Generator", dtype=None) -> "torch.Tensor":
        """The augmented, normalised images `index` (N,3,H,W float, channels_last memory)."""
        import torch

        if self.device.type == "cpu" and torch.get_num_threads() > 1:
            # Memory-bound elementwise work on ~300k values per batch: a second OpenMP thread
            # gains little, and on a busy machine spinning threads made it 10x slower (measured).
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                return self._batch(index, generator, dtype)
            finally:
                torch.set_num_threads(threads)
        return self._batch(index, generator, dtype)

    def _batch(self, index, generator, dtype):
        import torch

        cfg, h, w = self.cfg, self.h, self.w
        n = len(index)
        device = self.device
        offsets = torch.randint(0, 2 * cfg.padding + 1, (n, 2), generator=generator)
        flips = torch.rand(n, generator=generator) < 0.5 if cfg.flip else torch.zeros(n, dtype=torch.bool)
        centres = torch.stack([torch.randint(0, h, (n,), generator=generator),
                               torch.randint(0, w, (n,), generator=generator)], 1)
        source = index.to("cpu", torch.long) + flips.long() * self.n
        source, offsets, centres = (t.to(device, non_blocking=True) for t in (source, offsets, centres))
        cropped = self._windows[source, offsets[:, 0], offsets[:, 1]]  # N,H,W,C

        out = normalize(cropped.permute(0, 3, 1, 2), cfg, dtype)
        if cfg.cutout:
            half = cfg.cutout // 2
            r = torch.arange(h, device=device)
            q = torch.arange(w, device=device)
            in_rows = (r >= centres[:, 0, None] - half) & (r < centres[:, 0, None] + half)  # N,H
            in_cols = (q >= centres[:, 1, None] - half) & (q < centres[:, 1, None] + half)  # N,W
            out.masked_fill_((in_rows[:, :, None] & in_cols[:, None, :])[:, None], 0)
        return out


def augment(images: "torch.Tensor", generator: "torch.Generator", cfg: AugmentConfig = AugmentConfig(),
            dtype=None) -> "torch.Tensor":
    """Random crop (zero padding), horizontal flip, normalise, cutout of a whole uint8 N,3,H,W
    batch (one-off use; a training loop keeps an `Augmenter` over its data set)."""
    import torch

    return Augmenter(images, cfg)(torch.arange(images.shape[0]), generator, dtype)


def _affine(cfg: AugmentConfig, device, dtype) -> tuple["torch.Tensor", "torch.Tensor"]:
    """(x/255 - mean)/std as x*scale + shift, per channel, shaped to broadcast over N,3,H,W."""
    import torch

    mean = torch.tensor(cfg.mean, dtype=torch.float64)
    std = torch.tensor(cfg.std, dtype=torch.float64)
    scale = (1.0 / (255.0 * std)).to(device=device, dtype=dtype).view(1, -1, 1, 1)
    shift = (-mean / std).to(device=device, dtype=dtype).view(1, -1, 1, 1)
    return scale, shift


class DartsCutout:
    """The DARTS/SNAS `Cutout(length)` transform (on a normalised C,H,W tensor), kept verbatim in
    behaviour as the reference for `augment` (tests and bench/train_throughput.py compare to it)."""

    def __init__(self, length: int):
        self.length = length

    def __call__(self, img):
        import numpy as np
        import torch

        h, w = img.size(1), img.size(2)
        mask = np.ones((h, w), np.float32)
        y = np.random.randint(h)
        x = np.random.randint(w)
        y1, y2 = np.clip(y - self.length // 2, 0, h), np.clip(y + self.length // 2, 0, h)
        x1, x2 = np.clip(x - self.length // 2, 0, w), np.clip(x + self.length // 2, 0, w)
        mask[y1:y2, x1:x2] = 0.0
        return img * torch.from_numpy(mask).expand_as(img)


def thesis_transform(cfg: AugmentConfig = AugmentConfig()):
    """The thesis' per-image PIL pipeline (DARTS `_data_transforms_cifar10` with cutout)."""
    from torchvision import transforms

    steps = [transforms.RandomCrop(32, padding=cfg.padding)]
    if cfg.flip:
        steps.append(transforms.RandomHorizontalFlip())
    steps += [transforms.ToTensor(), transforms.Normalize(cfg.mean, cfg.std)]
    if cfg.cutout:
        steps.append(DartsCutout(cfg.cutout))
    return transforms.Compose(steps)
