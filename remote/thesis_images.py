"""`--like-thesis` on the host: real CIFAR-10 test images packed into one tar to push to the device.

The thesis' loop read the CIFAR-10 test set through a DataLoader. When the user gives no
`--images DIR` on the device, the host takes `count` test images from its own CIFAR-10 copy (an
ImageFolder layout, `<data>/test/<class>/*.jpg`: `--data`-style `$KLMTUI_DATA`), interleaved
across the classes (the JPEG copy lost the official order; interleaving keeps every batch mixed
as the official order does), and writes them into one uncompressed tar that the transport
uploads like a checkpoint; the agent unpacks it (`--images-tar`, remote.agent.thesis_loop).
"""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Optional

TEST_SET = 10000  # the CIFAR-10 test set


def test_image_dir(data: Optional[str] = None) -> Optional[Path]:
    """The host's CIFAR-10 test folder (ImageFolder layout), or None."""
    from core.data import resolve_data_dir

    root, _ = resolve_data_dir(data)
    for candidate in (root, root / "cifar10-jpeg"):
        if (candidate / "test").is_dir():
            return candidate / "test"
    return None


def pack_test_images(out: Path, count: int, data: Optional[str] = None) -> tuple[Optional[Path], str]:
    """(tar path, description) of `count` interleaved test images; (None, why) without a copy."""
    folder = test_image_dir(data)
    if folder is None:
        return None, "no CIFAR-10 ImageFolder copy on the host (set KLMTUI_DATA, or give --images DIR on the device)"
    classes = sorted(p for p in folder.iterdir() if p.is_dir())
    per_class = [sorted(f for f in c.iterdir() if f.suffix.lower() in (".jpg", ".jpeg", ".png")) for c in classes]
    picked: list[Path] = []
    for i in range(max((len(files) for files in per_class), default=0)):
        picked += [files[i] for files in per_class if i < len(files)]
        if len(picked) >= count:
            break
    picked = picked[:count]
    if not picked:
        return None, f"no images under {folder}/<class>/"
    with tarfile.open(out, "w") as tar:
        for k, path in enumerate(picked):
            # numbered in order so the device's sorted listing keeps the interleaving
            tar.add(path, arcname=f"test/{path.parent.name}/{k:05d}{path.suffix.lower()}")
    return out, f"{len(picked)} CIFAR-10 test images from {folder}"
