"""The agent bundle: exactly the files pushed to a device, with their paths inside the bundle.

This is the one list of device-side code. Everything in it must run on the device's Python 3.6 /
torch 1.10 (tests/test_py36_compat.py runs vermin over `bundle_files()`) and may import only the
standard library, torch and each other (the `device_side` import-linter contract in pyproject.toml,
tests/import_contracts.py, reads `device_modules()`). The agent runs from the bundle root as
`python -u -m remote.agent.main ...`, so the relative paths mirror the repository's packages.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

# The network definition and the protocol/statistics from core, the parser, the agent package.
CORE_FILES = ("core/__init__.py", "core/genotypes.py", "core/ops.py", "core/network.py", "core/latency.py")
REMOTE_FILES = ("remote/__init__.py",)
AGENT_PACKAGE = "remote/agent"
# What the device runs, from the bundle root: `python -u -m remote.agent.main ARGS`.
AGENT_MODULE = "remote.agent.main"


def bundle_files(root: Path | None = None) -> list[tuple[Path, str]]:
    """[(local path, relative path in the bundle)], sorted by relative path."""
    root = Path(root) if root is not None else REPO_ROOT
    relative = list(CORE_FILES) + list(REMOTE_FILES)
    relative += sorted(p.relative_to(root).as_posix() for p in (root / AGENT_PACKAGE).glob("*.py"))
    missing = [r for r in relative if not (root / r).is_file()]
    if missing:
        raise FileNotFoundError(f"agent bundle incomplete, missing: {', '.join(missing)}")
    return sorted(((root / r, r) for r in set(relative)), key=lambda item: item[1])


def device_modules(root: Path | None = None) -> list[str]:
    """The dotted names of the bundle's Python modules (`core.ops`, `remote.agent.main`; a
    package's `__init__.py` is the package itself, e.g. `remote.agent`)."""
    names = []
    for _, relative in bundle_files(root):
        if relative.endswith(".py"):
            parts = relative[: -len(".py")].split("/")
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return sorted(names)
