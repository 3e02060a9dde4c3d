"""The Textual app (placeholder until the TUI issue lands)."""

from pathlib import Path


def run_app(store_path: Path) -> None:
    print("TUI not built yet")
