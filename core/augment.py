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


def augment(images: "torch.Tensor", generator: "torch.Generator", cfg: AugmentConfig = AugmentConfig(),
            dtype=None) -> "torch.Tensor":
    """Random crop (zero padding), horizontal flip, normalise, cutout: uint8 N,3,H,W in, float out.

    Works in NHWC (channels_last) memory, the layout the decoded cache has: the crop is a strided
    window view of the padded batch (and of its mirror image, for flipped samples) indexed once
    per image, so each output row is a contiguous copy. The result is N,3,H,W in channels_last.
    """
    import torch

    n, c, h, w = images.shape
    device = images.device
    pad = cfg.padding
    offsets = torch.randint(0, 2 * pad + 1, (n, 2), generator=generator)
    flips = torch.rand(n, generator=generator) < 0.5 if cfg.flip else torch.zeros(n, dtype=torch.bool)
    centres = torch.stack([torch.randint(0, h, (n,), generator=generator),
                           torch.randint(0, w, (n,), generator=generator)], 1)
    offsets, flips, centres = (t.to(device, non_blocking=True) for t in (offsets, flips, centres))

    nhwc = images.permute(0, 2, 3, 1)
    padded = torch.nn.functional.pad(nhwc, (0, 0, pad, pad, pad, pad)) if pad else nhwc.contiguous()
    # Mirroring the padded image and cropping at x-offset o equals cropping at o and mirroring
    # the crop at offset 2*pad-o; both offsets are uniform, so the distribution is unchanged.
    both = torch.cat([padded, padded.flip(2)]) if cfg.flip else padded
    s_n, s_h, s_w, s_c = both.stride()
    windows = both.as_strided((both.shape[0], 2 * pad + 1, 2 * pad + 1, h, w, c), (s_n, s_h, s_w, s_h, s_w, s_c))
    source = torch.arange(n, device=device) + flips.long() * n
    cropped = windows[source, offsets[:, 0], offsets[:, 1]]  # N,H,W,C

    out = normalize(cropped.permute(0, 3, 1, 2), cfg, dtype)
    if cfg.cutout:
        half = cfg.cutout // 2
        r = torch.arange(h, device=device)
        q = torch.arange(w, device=device)
        in_rows = (r >= centres[:, 0, None] - half) & (r < centres[:, 0, None] + half)  # N,H
        in_cols = (q >= centres[:, 1, None] - half) & (q < centres[:, 1, None] + half)  # N,W
        out.masked_fill_((in_rows[:, :, None] & in_cols[:, None, :])[:, None], 0)
    return out


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
