"""ruff and mypy as configured in pyproject.toml ([tool.ruff], [tool.mypy]): clean over the repository.

ruff runs its bug-finding rules over everything; mypy checks core/ and remote/ (defaults), strictly
for the vocabulary, settings, records and interfaces. Both are in the `test` extra.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.paths import REPO


def _tool(name: str) -> str:
    exe = Path(sys.executable).with_name(name)
    found = str(exe) if exe.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed (it is in the [test] extra)")
    return found


def test_ruff_is_clean():
    result = subprocess.run([_tool("ruff"), "check", "--no-cache", "--output-format", "concise", "."],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean():
    result = subprocess.run([_tool("mypy"), "--no-error-summary"], capture_output=True, text=True, cwd=REPO,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_checks_can_fail(tmp_path):
    """The same configuration flags an undefined name (ruff) and an untyped def in a strict module (mypy)."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    return undefined_name\n")
    ruff = subprocess.run([_tool("ruff"), "check", "--no-cache", "--config", str(REPO / "pyproject.toml"), str(bad)],
                          capture_output=True, text=True, timeout=60)
    assert ruff.returncode == 1 and "F821" in ruff.stdout
    strict = tmp_path / "core" / "schema.py"  # checked under the strict override's module name
    strict.parent.mkdir()
    (strict.parent / "__init__.py").write_text("")
    strict.write_text("def f(x):\n    return x\n")
    mypy = subprocess.run([_tool("mypy"), "--config-file", str(REPO / "pyproject.toml"), "--no-incremental",
                           str(strict)], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert mypy.returncode == 1 and "no-untyped-def" in mypy.stdout, mypy.stdout + mypy.stderr
