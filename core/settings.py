"""klmtui's settings: its home folder, every environment variable it reads, and their defaults.

This is the only module that reads klmtui's environment variables (`os.environ` elsewhere is only
copied for child processes). Each accessor reads the variable when called, so a test (or a TUI
that spawns a process with another environment) sees the value in force now; a malformed value is
an `InputError` naming the variable (exit 2), never a silent default.

| variable | meaning | default |
|---|---|---|
| `KLMTUI_HOME` | klmtui's own folder: `known_hosts`, `keys.json`, local device work folders | `~/.config/klmtui` |
| `KLMTUI_STORE` | the store file when `--store` is not given | `runs.json` |
| `KLMTUI_DATA` | the CIFAR-10 folder when `--data` is not given | `~/.cache/klmtui/cifar10` (downloaded) |
| `KLMTUI_TORCH_THREADS` | torch CPU threads in a training process | torch's own choice |
| `KLMTUI_MAX_PARALLEL` | local training runs at once | number of visible GPUs, at least 1 |
| `KLMTUI_SSH_TIMEOUT` | SSH connect/banner/auth timeout, seconds | 10 |
| `RAY_ADDRESS` | the Ray cluster when `--address` is not given | none |
| `CUDA_VISIBLE_DEVICES` | which GPUs count for `KLMTUI_MAX_PARALLEL`'s default | all |

`KLMTUI_TORCH` is read by `scripts/setup.sh` only (which torch to install).
`Settings.current()` gathers them all at one moment (e.g. for `klmtui --version`-style reports).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

from core.errors import InputError

HOME_ENV = "KLMTUI_HOME"
STORE_ENV = "KLMTUI_STORE"
DATA_ENV = "KLMTUI_DATA"
TORCH_THREADS_ENV = "KLMTUI_TORCH_THREADS"
MAX_PARALLEL_ENV = "KLMTUI_MAX_PARALLEL"
SSH_TIMEOUT_ENV = "KLMTUI_SSH_TIMEOUT"
RAY_ADDRESS_ENV = "RAY_ADDRESS"
CUDA_VISIBLE_ENV = "CUDA_VISIBLE_DEVICES"
ENV_VARS = (HOME_ENV, STORE_ENV, DATA_ENV, TORCH_THREADS_ENV, MAX_PARALLEL_ENV, SSH_TIMEOUT_ENV,
            RAY_ADDRESS_ENV, CUDA_VISIBLE_ENV)

DEFAULT_STORE = "runs.json"
DEFAULT_SSH_TIMEOUT_S = 10.0
KNOWN_HOSTS = "known_hosts"
KEYS_FILE = "keys.json"


def _env(name: str, environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The variable's value, or None when unset or empty."""
    value = (os.environ if environ is None else environ).get(name)
    return value if value else None


def _positive_int(name: str, raw: Optional[str]) -> Optional[int]:
    if raw is None:
        return None
    if not raw.strip().isdigit() or int(raw) < 1:
        raise InputError(f"{name} must be a positive whole number, not {raw!r}")
    return int(raw)


def home(environ: Optional[Mapping[str, str]] = None) -> Path:
    """klmtui's own folder: $KLMTUI_HOME, else ~/.config/klmtui."""
    raw = _env(HOME_ENV, environ)
    return Path(raw).expanduser() if raw else Path.home() / ".config" / "klmtui"


def known_hosts(home_dir: Optional[Path] = None) -> Path:
    """klmtui's own known_hosts file (never ~/.ssh/known_hosts)."""
    return Path(home_dir or home()) / KNOWN_HOSTS


def keys_file(environ: Optional[Mapping[str, str]] = None) -> Path:
    """The TUI's key remapping file: $KLMTUI_HOME/keys.json."""
    return home(environ) / KEYS_FILE


def store_path(value: Optional[str] = None, environ: Optional[Mapping[str, str]] = None) -> Path:
    """The store: `--store`, else $KLMTUI_STORE, else ./runs.json."""
    return Path(value or _env(STORE_ENV, environ) or DEFAULT_STORE)


def data_dir(environ: Optional[Mapping[str, str]] = None) -> Optional[Path]:
    """$KLMTUI_DATA (a CIFAR-10 folder), or None."""
    raw = _env(DATA_ENV, environ)
    return Path(raw).expanduser() if raw else None


def default_data_dir() -> Path:
    """Where CIFAR-10 is downloaded when neither `--data` nor $KLMTUI_DATA names a folder."""
    return Path.home() / ".cache" / "klmtui" / "cifar10"


def torch_threads(environ: Optional[Mapping[str, str]] = None) -> Optional[int]:
    """$KLMTUI_TORCH_THREADS, or None (torch decides)."""
    return _positive_int(TORCH_THREADS_ENV, _env(TORCH_THREADS_ENV, environ))


def max_parallel(environ: Optional[Mapping[str, str]] = None) -> Optional[int]:
    """$KLMTUI_MAX_PARALLEL, or None (the caller's default: one run per visible GPU)."""
    return _positive_int(MAX_PARALLEL_ENV, _env(MAX_PARALLEL_ENV, environ))


def cuda_visible_devices(environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """$CUDA_VISIBLE_DEVICES as set (an empty string means no GPU), or None when unset."""
    return (os.environ if environ is None else environ).get(CUDA_VISIBLE_ENV)


def ray_address(environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """$RAY_ADDRESS, or None."""
    return _env(RAY_ADDRESS_ENV, environ)


def ssh_timeout(value: Optional[float] = None, environ: Optional[Mapping[str, str]] = None) -> float:
    """The SSH connect/banner/auth timeout: the argument, else $KLMTUI_SSH_TIMEOUT, else 10 s."""
    if value is not None:
        return float(value)
    raw = _env(SSH_TIMEOUT_ENV, environ)
    if raw is None:
        return DEFAULT_SSH_TIMEOUT_S
    try:
        seconds = float(raw)
    except ValueError:
        raise InputError(f"{SSH_TIMEOUT_ENV} must be a number of seconds, not {raw!r}") from None
    if not seconds > 0:
        raise InputError(f"{SSH_TIMEOUT_ENV} must be positive, not {raw!r}")
    return seconds


@dataclass(frozen=True)
class Settings:
    """All settings, read at one moment."""

    home: Path
    store: Path
    data: Optional[Path]
    torch_threads: Optional[int]
    max_parallel: Optional[int]
    ssh_timeout: float
    ray_address: Optional[str]

    @classmethod
    def current(cls, environ: Optional[Mapping[str, str]] = None) -> "Settings":
        return cls(home=home(environ), store=store_path(None, environ), data=data_dir(environ),
                   torch_threads=torch_threads(environ), max_parallel=max_parallel(environ),
                   ssh_timeout=ssh_timeout(None, environ), ray_address=ray_address(environ))
