"""Everything pushed to a Jetson Nano (Python 3.6, torch 1.10) must parse and run on Python 3.6.

`vermin -t=3.6-` over the brief's list of device files plus whatever `remote.bundle.bundle_files()`
ships. Remote files that do not exist yet are skipped; the core network files must exist.
Annotations are checked as evaluated (3.6 evaluates them at definition time).
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.paths import REPO

CORE_DEVICE_FILES = ("core/__init__.py", "core/genotypes.py", "core/ops.py", "core/network.py")
REMOTE_DEVICE_FILES = ("remote/__init__.py", "remote/agent/tegrastats.py", "remote/agent/__init__.py",
                       "remote/agent/main.py")


def device_files() -> list:
    files = {REPO / f for f in CORE_DEVICE_FILES + REMOTE_DEVICE_FILES}
    files |= set((REPO / "remote" / "agent").glob("*.py"))  # helpers the agent imports
    try:
        from remote.bundle import bundle_files
    except ImportError:
        pass
    else:
        files |= {Path(local) for local, _ in bundle_files(REPO) if str(local).endswith(".py")}
    return sorted(f for f in files if f.is_file())


def _vermin() -> str:
    exe = Path(sys.executable).with_name("vermin")
    found = str(exe) if exe.exists() else shutil.which("vermin")
    if not found:
        pytest.fail("vermin is not installed (it is in the [test] extra)")
    return found


def test_core_device_files_exist():
    assert [f for f in CORE_DEVICE_FILES if not (REPO / f).is_file()] == []


def test_device_files_are_python36_compatible():
    files = device_files()
    assert all((REPO / f) in files for f in CORE_DEVICE_FILES)
    result = subprocess.run(
        [_vermin(), "-t=3.6-", "--no-tips", "--violations", "--eval-annotations", "--no-parse-comments"]
        + [str(f) for f in files],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_vermin_catches_36_incompatibilities(tmp_path):
    """The check above can fail: a dataclass and an f-string `=` are flagged."""
    bad = tmp_path / "bad.py"
    bad.write_text("from dataclasses import dataclass\nx = 1\nprint(f'{x=}')\n")
    result = subprocess.run([_vermin(), "-t=3.6-", "--no-tips", "--violations", str(bad)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
