"""CIFAR-10 as two uint8 tensors in memory, decoded once and cached.

The thesis fed the network through PIL transforms in DataLoader workers, which re-decode and
re-augment every image in Python every epoch. Here a split is decoded once into an `(N, 32, 32, 3)`
uint8 array (cached as `.npy` files, so later runs memory-map it instead of touching JPEGs), and the
augmentation happens batched on tensors (`core.augment`).

Where the data comes from (`resolve_data_dir`): `--data DIR`, else `$KLMTUI_DATA`, else torchvision's
download into `~/.cache/klmtui/cifar10`. A folder is either
- an ImageFolder layout `DIR/{train,test}/<class>/*.{jpg,png}` (how the shared JPEG copy unpacks), or
- torchvision's CIFAR-10 (`DIR/cifar-10-batches-py/` or that folder itself).
Anything else is one `InputError` naming what was looked for.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import settings
from core.errors import InputError, OperationFailed

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch

CACHE_VERSION = 1
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp")
TORCHVISION_FOLDER = "cifar-10-batches-py"
SUBSET_SEED = 20190601  # fixed: a subset is the same whatever the training seed


@dataclass
class Split:
    """One split of a labelled image set: `images` uint8 (N, H, W, 3) numpy, `labels` int64 (N,)."""

    images: "np.ndarray"
    labels: "np.ndarray"
    classes: list[str]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def tensors(self) -> tuple["torch.Tensor", "torch.Tensor"]:
        """`(images, labels)` as torch tensors: images uint8 N,3,H,W (a channels_last view, no copy)."""
        import numpy as np
        import torch

        images = torch.from_numpy(np.array(self.images, copy=True)).permute(0, 3, 1, 2)  # in RAM, writable
        return images, torch.from_numpy(np.asarray(self.labels, dtype=np.int64))


def default_data_dir() -> Path:
    return settings.default_data_dir()


def resolve_data_dir(data: str | os.PathLike | None) -> tuple[Path, bool]:
    """`(folder, may_download)`: `--data`, else `$KLMTUI_DATA`, else the download cache."""
    if data:
        return Path(data).expanduser(), False
    env = settings.data_dir()
    if env is not None:
        return env, False
    return default_data_dir(), True


def load_cifar10(data: str | os.PathLike | None = None, *, cache_dir: Path | None = None) -> tuple[Split, Split]:
    """`(train, test)` splits from the folder `resolve_data_dir(data)` names.

    Raises `InputError` when the folder is missing or holds no recognisable dataset, and
    `OperationFailed` when the download (default folder only) fails.
    """
    root, may_download = resolve_data_dir(data)
    if _is_image_folder(root):
        return (
            _load_image_folder_split(root, "train", cache_dir),
            _load_image_folder_split(root, "test", cache_dir),
        )
    tv_root = _torchvision_root(root)
    if tv_root is not None:
        return _load_torchvision(tv_root, download=False)
    if check_dataset(data) == "download":
        return _load_torchvision(root, download=True)
    raise AssertionError("unreachable: check_dataset raises for anything else")


def check_dataset(data: str | os.PathLike | None = None) -> str:
    """Fail fast (InputError) on a folder that holds no dataset, without decoding anything.

    Returns what will be used: "image-folder", "torchvision" or "download".
    """
    root, may_download = resolve_data_dir(data)
    if _is_image_folder(root):
        return "image-folder"
    if _torchvision_root(root) is not None:
        return "torchvision"
    if may_download:
        return "download"
    if not root.exists():
        raise InputError(f"data folder {root} does not exist (expected {root}/train/<class>/*.jpg "
                         f"and {root}/test/<class>/*.jpg, or torchvision's {TORCHVISION_FOLDER})")
    raise InputError(f"no dataset in {root}: looked for {root}/train/<class>/ and {root}/test/<class>/ "
                     f"image folders and for torchvision's {root}/{TORCHVISION_FOLDER}")


def prepare_dataset(data: str | os.PathLike | None = None) -> str:
    """`check_dataset`, and when the default folder is empty, download CIFAR-10 now (in the
    submitting process, so a failed download is one clear error rather than a failed run)."""
    kind = check_dataset(data)
    if kind == "download":
        _load_torchvision(resolve_data_dir(data)[0], download=True)
    return kind


def balanced_subset(split: Split, n: int | None) -> Split:
    """The same `n` images every time, as equal a share of each class as possible.

    Deterministic (a fixed seed, independent of the training seed) so runs with different seeds
    see the same subset; within each class the picks are a random sample, not the first files.
    """
    import numpy as np

    if n is None or n >= len(split):
        return split
    if n < 1:
        raise InputError(f"subset size must be >= 1 (got {n})")
    rng = np.random.default_rng(SUBSET_SEED)
    labels = np.asarray(split.labels)
    classes = np.unique(labels)
    per_class = {int(c): rng.permutation(np.flatnonzero(labels == c)) for c in classes}
    quota = {int(c): n // len(classes) for c in classes}
    for c in list(quota)[: n % len(classes)]:
        quota[c] += 1
    # A class with fewer images than its quota hands the rest to the others, in order.
    short = sum(max(0, quota[c] - len(per_class[c])) for c in quota)
    for c in quota:
        quota[c] = min(quota[c], len(per_class[c]))
    for c in quota:
        extra = min(short, len(per_class[c]) - quota[c])
        quota[c] += extra
        short -= extra
    chosen = np.sort(np.concatenate([per_class[c][: quota[c]] for c in quota]))
    return Split(split.images[chosen], labels[chosen], split.classes)


# --- ImageFolder ---------------------------------------------------------------------------------


def _is_image_folder(root: Path) -> bool:
    return (root / "train").is_dir() and (root / "test").is_dir()


def _list_image_folder(split_dir: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    classes = sorted(p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise InputError(f"no class folders in {split_dir} (expected {split_dir}/<class>/*.jpg)")
    files: list[tuple[Path, int]] = []
    for index, name in enumerate(classes):
        files += [(p, index) for p in sorted((split_dir / name).iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise InputError(f"no images in {split_dir}/<class>/ (looked for {', '.join(IMAGE_SUFFIXES)})")
    return classes, files


def _fingerprint(files: list[tuple[Path, int]]) -> str:
    """Cheap identity of a folder's content: names, sizes, mtimes and labels."""
    h = hashlib.sha256()
    for path, label in files:
        st = path.stat()
        h.update(f"{path.parent.name}/{path.name}:{st.st_size}:{st.st_mtime_ns}:{label}\n".encode())
    return h.hexdigest()[:20]


def _cache_folder(split_dir: Path, cache_dir: Path | None) -> Path:
    """Beside the data when writable (`DIR/.klmtui-cache`), else under ~/.cache/klmtui/decoded."""
    if cache_dir is not None:
        return cache_dir
    beside = split_dir.parent / ".klmtui-cache"
    if os.access(split_dir.parent, os.W_OK) or beside.is_dir():
        return beside
    key = hashlib.sha256(str(split_dir.parent.resolve()).encode()).hexdigest()[:16]
    return Path.home() / ".cache" / "klmtui" / "decoded" / key


def _load_image_folder_split(root: Path, name: str, cache_dir: Path | None) -> Split:
    import numpy as np

    split_dir = root / name
    classes, files = _list_image_folder(split_dir)
    fingerprint = _fingerprint(files)
    folder = _cache_folder(split_dir, cache_dir)
    images_path = folder / f"{name}-{fingerprint}-images.npy"
    labels_path = folder / f"{name}-{fingerprint}-labels.npy"
    meta_path = folder / f"{name}-{fingerprint}.json"
    if images_path.exists() and labels_path.exists() and meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("version") == CACHE_VERSION:
                return Split(np.load(images_path, mmap_mode="r"), np.load(labels_path), meta["classes"])
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache is rebuilt below
    images = _decode(files)
    labels = np.array([label for _, label in files], dtype=np.int64)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _save_npy_atomic(images_path, images)
        _save_npy_atomic(labels_path, labels)
        _write_atomic(meta_path, json.dumps({"version": CACHE_VERSION, "classes": classes, "source": str(split_dir)}))
    except OSError:
        pass  # an unwritable cache only costs the next run a decode
    return Split(images, labels, classes)


def _decode(files: list[tuple[Path, int]]) -> "np.ndarray":
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    first_shape: tuple[int, ...] = ()
    out: Any = None  # the batch array, once the first image gave its shape
    for i, (path, _) in enumerate(files):
        try:
            with Image.open(path) as im:
                array = np.asarray(im.convert("RGB"))
        except (OSError, UnidentifiedImageError) as exc:
            raise InputError(f"cannot read image {path}: {exc}") from None
        if out is None:
            first_shape = array.shape
            out = np.empty((len(files),) + array.shape, dtype=np.uint8)
        elif array.shape != first_shape:
            raise InputError(f"image {path} is {array.shape[1]}x{array.shape[0]}, the others "
                             f"{first_shape[1]}x{first_shape[0]}: all images must have one size")
        out[i] = array
    return out


def _save_npy_atomic(path: Path, array: "np.ndarray") -> None:
    import numpy as np

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, array)
    os.replace(tmp, path)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# --- torchvision ---------------------------------------------------------------------------------


def _torchvision_root(root: Path) -> Path | None:
    if (root / TORCHVISION_FOLDER).is_dir():
        return root
    if root.name == TORCHVISION_FOLDER and root.is_dir():
        return root.parent
    return None


def _load_torchvision(root: Path, *, download: bool) -> tuple[Split, Split]:
    import numpy as np
    from torchvision.datasets import CIFAR10

    try:
        if download:
            root.mkdir(parents=True, exist_ok=True)
        train = CIFAR10(str(root), train=True, download=download)
        test = CIFAR10(str(root), train=False, download=download)
    except RuntimeError as exc:  # torchvision: "Dataset not found or corrupted"
        raise InputError(f"CIFAR-10 in {root} is incomplete or corrupt ({exc}); pass --data DIR") from None
    except OSError as exc:  # URLError and friends: no network here
        raise OperationFailed(f"could not download CIFAR-10 into {root} ({exc}); "
                              f"pass --data DIR or set KLMTUI_DATA to an existing copy") from None
    return tuple(  # type: ignore[return-value]
        Split(np.asarray(ds.data), np.asarray(ds.targets, dtype=np.int64), list(ds.classes)) for ds in (train, test)
    )
