"""The batched augmentation against the thesis' PIL pipeline: same per-image randomness."""

import numpy as np
import pytest
import torch
from PIL import Image

from core.augment import AugmentConfig, augment, normalize, thesis_transform
from core.data import balanced_subset, load_cifar10

N = 3000


def _coordinate_image() -> np.ndarray:
    """A 32x32 RGB image whose pixels name their own position: R = row*8, G = col*8, B = 255."""
    rows, cols = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    return np.stack([rows * 8, cols * 8, np.full_like(rows, 255)], -1).astype(np.uint8)


def _recover_crop(image01: torch.Tensor) -> tuple[int, int, bool]:
    """(row offset, col offset, flipped) from one crop of `_coordinate_image`, in 0..1 floats."""
    pix = (image01 * 255).round().long()
    inside = pix[2] == 255  # padding is black
    r, c = torch.nonzero(inside, as_tuple=True)
    src_rows = pix[0][inside] // 8
    src_cols = pix[1][inside] // 8
    row_off = int((src_rows - r).unique().item()) + 4  # out row r shows source row r + off - 4
    flipped = bool(np.corrcoef(c.numpy(), src_cols.numpy())[0, 1] < 0)
    # unflipped: column c shows source column c + off - 4; flipped after the crop: 31 - c + off - 4
    col_off = int((src_cols + c - 27).unique().item()) if flipped else int((src_cols - c).unique().item()) + 4
    return row_off, col_off, flipped


def _unnormalise(x: torch.Tensor, cfg: AugmentConfig) -> torch.Tensor:
    mean = torch.tensor(cfg.mean).view(-1, 1, 1)
    std = torch.tensor(cfg.std).view(-1, 1, 1)
    return x * std + mean


def _chi2_uniform(counts: np.ndarray) -> float:
    expected = counts.sum() / len(counts)
    return float(((counts - expected) ** 2 / expected).sum())


def test_crop_offsets_and_flips_match_the_pil_pipeline():
    torch.set_num_threads(1)
    cfg = AugmentConfig(cutout=0)
    image = _coordinate_image()
    batch = torch.from_numpy(np.repeat(image[None], N, 0)).permute(0, 3, 1, 2)
    ours = _unnormalise(augment(batch, torch.Generator().manual_seed(1), cfg), cfg)
    torch.manual_seed(1)
    pil = thesis_transform(cfg)
    theirs = torch.stack([_unnormalise(pil(Image.fromarray(image)), cfg) for _ in range(N)])

    stats = {}
    for name, crops in (("ours", ours), ("pil", theirs)):
        found = np.array([_recover_crop(x) for x in crops])
        stats[name] = found
        for axis in (0, 1):
            counts = np.bincount(found[:, axis], minlength=9)
            assert len(counts) == 9, counts  # offsets 0..8 only
            assert _chi2_uniform(counts) < 26.1, (name, axis, counts)  # chi2(8) p=0.001
        assert abs(found[:, 2].mean() - 0.5) < 0.04, (name, found[:, 2].mean())
    # the two pipelines agree with each other, not only each with the theory
    for axis in (0, 1):
        a = np.bincount(stats["ours"][:, axis], minlength=9) / N
        b = np.bincount(stats["pil"][:, axis], minlength=9) / N
        assert np.abs(a - b).max() < 0.03, (axis, a, b)


def test_crop_is_exact_for_a_known_offset():
    """Undo a recovered crop: every pixel comes from where the offsets say, padding is zero."""
    cfg = AugmentConfig(cutout=0)
    image = _coordinate_image()
    batch = torch.from_numpy(np.repeat(image[None], 64, 0)).permute(0, 3, 1, 2)
    out = _unnormalise(augment(batch, torch.Generator().manual_seed(5), cfg), cfg)
    padded = np.pad(image, ((4, 4), (4, 4), (0, 0)))
    for x in out:
        oy, ox, flipped = _recover_crop(x)
        expected = padded[oy:oy + 32, ox:ox + 32]
        if flipped:
            expected = expected[:, ::-1]
        got = (x.permute(1, 2, 0) * 255).round().byte().numpy()
        np.testing.assert_array_equal(got, expected)


@pytest.fixture(scope="module")
def real_images(cifar_dir):
    train, _ = load_cifar10(cifar_dir)
    return balanced_subset(train, 2000)


def test_statistics_on_real_images_match_the_pil_pipeline(real_images):
    torch.set_num_threads(1)
    cfg = AugmentConfig()
    images, _ = real_images.tensors()
    ours = augment(images, torch.Generator().manual_seed(3), cfg)
    torch.manual_seed(3)
    np.random.seed(3)
    pil = thesis_transform(cfg)
    theirs = torch.stack([pil(Image.fromarray(np.asarray(a))) for a in real_images.images])
    assert ours.shape == theirs.shape == (2000, 3, 32, 32)
    for dims in ((0, 2, 3),):
        np.testing.assert_allclose(ours.mean(dims).numpy(), theirs.mean(dims).numpy(), atol=0.03)
        np.testing.assert_allclose(ours.std(dims).numpy(), theirs.std(dims).numpy(), atol=0.03)
    # cutout: the share of fully zeroed pixels (all 3 channels) per image, on average
    zero_ours = (ours == 0).all(1).float().mean().item()
    zero_theirs = (theirs == 0).all(1).float().mean().item()
    # expected square area with clipping: E[len]^2 / 1024, E[len] = (16*16 + 2*sum(8..15)) / 32
    expected = ((16 * 16 + 2 * sum(range(8, 16))) / 32) ** 2 / 1024
    assert abs(zero_ours - expected) < 0.015, (zero_ours, expected)
    assert abs(zero_theirs - expected) < 0.015, (zero_theirs, expected)


def test_same_generator_seed_same_batch_and_normalize_matches_totensor(real_images):
    images, _ = real_images.tensors()
    a = augment(images[:256], torch.Generator().manual_seed(9))
    b = augment(images[:256], torch.Generator().manual_seed(9))
    c = augment(images[:256], torch.Generator().manual_seed(10))
    assert torch.equal(a, b) and not torch.equal(a, c)
    cfg = AugmentConfig()
    from torchvision import transforms

    ref = transforms.Compose([transforms.ToTensor(), transforms.Normalize(cfg.mean, cfg.std)])
    theirs = torch.stack([ref(Image.fromarray(np.asarray(x))) for x in real_images.images[:64]])
    torch.testing.assert_close(normalize(images[:64]), theirs, atol=1e-5, rtol=1e-5)
