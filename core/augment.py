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
        self._cache: dict = {}  # per-dtype normalisation constants and cutout masks

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

        cfg, n = self.cfg, len(index)
        dtype = dtype or torch.float32
        offsets = torch.randint(0, 2 * cfg.padding + 1, (n, 2), generator=generator)
        flips = torch.rand(n, generator=generator) < 0.5 if cfg.flip else torch.zeros(n, dtype=torch.bool)
        # One uniform draw over the h*w pixels = independent uniform row and column of the centre.
        centres = torch.randint(0, self.h * self.w, (n,), generator=generator)
        source = index.to("cpu", torch.long) + flips.long() * self.n
        source, offsets, centres = (t.to(self.device, non_blocking=True) for t in (source, offsets, centres))
        # Work on the gathered NHWC batch as N rows of H*W*C values, with the per-channel affine and
        # the cutout masks pre-expanded to whole rows: every op then runs over long contiguous
        # rows instead of broadcasting over a last dim of 3 (4-8x faster on the CPU, measured).
        # Viewed back as N,C,H,W the result is channels_last memory, as the network wants it.
        x = self._windows[source, offsets[:, 0], offsets[:, 1]].reshape(n, -1).to(dtype)
        scale, shift = self._affine_rows(dtype)
        x.mul_(scale).add_(shift)
        if cfg.cutout:
            x.mul_(self._cutout_keep(dtype)[centres])  # zero the square, after normalisation
        return x.view(n, self.h, self.w, self.c).permute(0, 3, 1, 2)

    def _affine_rows(self, dtype):
        """Scale and shift of `normalize`, repeated over the H*W pixels of an NHWC row."""
        key = ("affine", dtype)
        if key not in self._cache:
            scale, shift = _affine(self.cfg, self.device, dtype)
            pixels = self.h * self.w
            self._cache[key] = (scale.view(-1).repeat(pixels), shift.view(-1).repeat(pixels))
        return self._cache[key]

    def _cutout_keep(self, dtype):
        """For each of the h*w centres, an NHWC row mask: 0 inside the cutout square (clipped at
        the border like DARTS' `Cutout`: rows y-len/2 .. y+len/2-1), 1 elsewhere (12 MB for 32x32)."""
        import torch

        key = ("cutout", dtype)
        if key not in self._cache:
            half, h, w = self.cfg.cutout // 2, self.h, self.w
            rows = torch.arange(h, device=self.device)
            cols = torch.arange(w, device=self.device)
            cy = rows.view(h, 1, 1, 1)
            cx = cols.view(1, w, 1, 1)
            inside = ((rows.view(h, 1) >= cy - half) & (rows.view(h, 1) < cy + half)
                      & (cols.view(1, w) >= cx - half) & (cols.view(1, w) < cx + half))  # cy,cx,H,W
            keep = (~inside).to(dtype).reshape(h * w, h, w, 1).expand(-1, -1, -1, self.c)
            self._cache[key] = keep.reshape(h * w, -1).contiguous()
        return self._cache[key]


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
