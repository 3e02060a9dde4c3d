"""A full disk is a failure with a name (issue 12): `no space left on device (FOLDER)`.

torch reports a full disk during `torch.save` as "unexpected pos ..."; a store write as a plain
OSError. Everything that writes run files or the store turns ENOSPC/EDQUOT into `DiskFull`, whose
message names the folder that is full, and removes its temp file. A training run that hits it
says so in its record as soon as a store write succeeds again (it keeps retrying), and leaves an
empty marker file (`.no-space`, which needs no data blocks) so that `refresh` can still say why
the run ended if its process is gone before the disk has room again.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path
from typing import BinaryIO, Callable, TypeVar

from core.errors import OperationFailed

NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
MARKER = ".no-space"
RETRY_EVERY_S = 1.0

T = TypeVar("T")


class DiskFull(OperationFailed):
    """A write failed for lack of space (exit 1): `no space left on device (FOLDER)`."""

    def __init__(self, folder: str | os.PathLike, detail: str = "") -> None:
        self.folder = str(folder)
        super().__init__(f"no space left on device ({self.folder})" + (f": {detail}" if detail else ""))


def message(folder: str | os.PathLike) -> str:
    return f"no space left on device ({folder})"


def is_no_space(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS


def find(exc: BaseException | None, folder: str | os.PathLike = "?") -> DiskFull | None:
    """The DiskFull that `exc` is or was caused by (an ENOSPC OSError anywhere in its chain), or
    None; `folder` is named when the error does not say which file (a failed `write()`)."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, DiskFull):
            return exc
        if is_no_space(exc):
            name = getattr(exc, "filename", None)
            return DiskFull(Path(name).parent if name else folder)
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """`write(file)` into a temp file beside `path`, fsync, rename over `path`.

    A failure removes the temp file (no `.checkpoint.pt.<pid>.tmp` left behind); a full disk is
    `DiskFull` naming the folder."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        if is_no_space(exc):
            raise DiskFull(path.parent) from exc
        raise


def leave_marker(folder: Path) -> None:
    """Best effort: an empty `.no-space` file (a full disk usually still has an inode for it)."""
    try:
        (Path(folder) / MARKER).touch()
    except OSError:
        pass


def clear_marker(folder: Path) -> None:
    try:
        (Path(folder) / MARKER).unlink()
    except OSError:
        pass


def has_marker(folder: Path) -> bool:
    return (Path(folder) / MARKER).exists()


def retry_while_full(action: Callable[[], T], timeout_s: float = 3600.0, every_s: float = RETRY_EVERY_S) -> T:
    """`action()`, retried while it fails with DiskFull, until `timeout_s` (then the DiskFull)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return action()
        except DiskFull:
            if time.monotonic() > deadline:
                raise
            time.sleep(every_s)


__all__ = ["DiskFull", "MARKER", "message", "is_no_space", "find", "write_atomically", "leave_marker",
           "clear_marker", "has_marker", "retry_while_full"]
