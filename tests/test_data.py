"""CIFAR-10 loading: the shared JPEG copy, the decode cache, subsets, and clear errors."""

import numpy as np
import pytest

from core.data import balanced_subset, load_cifar10
from core.errors import InputError


def test_image_folder_loads_and_caches(cifar_dir):
    train, test = load_cifar10(cifar_dir)  # decoded once per session, cached beside the data
    assert train.images.shape == (50000, 32, 32, 3) and train.images.dtype == np.uint8
    assert test.images.shape == (10000, 32, 32, 3)
    assert train.classes[:3] == ["airplane", "automobile", "bird"] and len(train.classes) == 10
    assert np.bincount(train.labels).tolist() == [5000] * 10
    # channel means of the JPEG copy (README: 0.4913/0.4821/0.4465)
    means = train.images.reshape(-1, 3).mean(0) / 255
    np.testing.assert_allclose(means, [0.4913, 0.4821, 0.4465], atol=2e-3)
    cached = sorted(p.name for p in (cifar_dir / ".klmtui-cache").iterdir())
    assert any(n.startswith("train-") and n.endswith("-images.npy") for n in cached), cached
    again, _ = load_cifar10(cifar_dir)
    assert isinstance(again.images, np.memmap)  # served from the cache, not re-decoded
    fresh = load_cifar10(cifar_dir, cache_dir=cifar_dir.parent / "nocache")[1]  # test split decoded anew
    np.testing.assert_array_equal(np.asarray(fresh.images), np.asarray(test.images))
    images, labels = train.tensors()
    assert tuple(images.shape) == (50000, 3, 32, 32) and labels.dtype.is_floating_point is False


def test_balanced_subset_is_deterministic_and_balanced(cifar_dir):
    _, test = load_cifar10(cifar_dir)
    a = balanced_subset(test, 1005)
    b = balanced_subset(test, 1005)
    assert len(a) == 1005
    assert sorted(np.bincount(a.labels).tolist()) == [100] * 5 + [101] * 5
    np.testing.assert_array_equal(a.images, b.images)
    assert balanced_subset(test, None) is test
    with pytest.raises(InputError):
        balanced_subset(test, 0)


def test_missing_or_malformed_folders_are_one_clear_error(tmp_path, monkeypatch):
    missing = tmp_path / "nope"
    with pytest.raises(InputError, match="nope.*does not exist"):
        load_cifar10(missing)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="train/<class>"):
        load_cifar10(tmp_path / "empty")
    # ImageFolder with a broken image
    for split in ("train", "test"):
        (tmp_path / "bad" / split / "cat").mkdir(parents=True)
        (tmp_path / "bad" / split / "cat" / "0000.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(InputError, match="cannot read image .*0000.jpg"):
        load_cifar10(tmp_path / "bad", cache_dir=tmp_path / "c")
    # torchvision's folder, but not the real archive
    (tmp_path / "tv" / "cifar-10-batches-py").mkdir(parents=True)
    with pytest.raises(InputError, match="incomplete or corrupt"):
        load_cifar10(tmp_path / "tv")
    # $KLMTUI_DATA is used when --data is not given
    monkeypatch.setenv("KLMTUI_DATA", str(missing))
    with pytest.raises(InputError, match="nope"):
        load_cifar10(None)
