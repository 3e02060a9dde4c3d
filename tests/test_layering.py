"""Import boundaries: core never imports the UI, the remote layer, textual or paramiko
(import-linter contracts in pyproject.toml), and sampling/counting never import torch."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.fixtures.paths import REPO


def test_import_linter_contracts_hold():
    exe = Path(sys.executable).with_name("lint-imports")
    command = [str(exe)] if exe.exists() else [shutil.which("lint-imports") or "lint-imports"]
    result = subprocess.run(command + ["--no-cache"], capture_output=True, text=True, cwd=REPO, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr


def test_space_and_counting_import_no_heavy_libraries():
    code = (
        "import json, sys\n"
        "import core.space, core.counting, core.genotypes, core.models\n"
        "heavy = ['torch', 'textual', 'paramiko', 'ray', 'klmtui', 'remote']\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
