"""Everything pushed to a Jetson Nano (Python 3.6, torch 1.10) must parse and run on Python 3.6.

`vermin -t=3.6-` over exactly what `remote.bundle.bundle_files()` ships (the one list of
device-side files; its imports are checked by the `device_side` import-linter contract).
Annotations are checked as evaluated (3.6 evaluates them at definition time).
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from remote.bundle import AGENT_MODULE, bundle_files
from tests.fixtures.paths import REPO


def device_files() -> list:
    return sorted(Path(local) for local, relative in bundle_files(REPO) if relative.endswith(".py"))


def _vermin() -> str:
    exe = Path(sys.executable).with_name("vermin")
    found = str(exe) if exe.exists() else shutil.which("vermin")
    if not found:
        pytest.fail("vermin is not installed (it is in the [test] extra)")
    return found


def test_the_bundle_holds_the_agent_and_the_network():
    shipped = {relative for _, relative in bundle_files(REPO)}
    assert AGENT_MODULE.replace(".", "/") + ".py" in shipped
    assert {"core/network.py", "core/genotypes.py", "core/ops.py", "remote/agent/tegrastats.py"} <= shipped


def test_device_files_are_python36_compatible():
    files = device_files()
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
