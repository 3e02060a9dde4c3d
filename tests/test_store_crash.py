"""core.store under `kill -9`: a writer killed at random points 50 times; the file always loads.

Each transaction moves the store from one consistent state to the next (a counter and the
number of rows move together), so "old or new state" is checkable: never anything in between.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from core.store import Store

REPO = Path(__file__).resolve().parents[1]

_WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {repo!r})
    from core.store import Store
    store = Store(sys.argv[1])
    first = True
    while True:
        with store.transaction() as tx:
            state = tx.get("devices", "state")
            n = state["n"] + 1
            tx.insert("runs", {{"id": "t-%d" % n, "status": "done", "payload": "x" * 200}})
            tx.update("devices", "state", n=n)
        if first:
            print("ready", flush=True)
            first = False
    """
)


def _consistent_state(path: Path) -> int:
    raw = json.loads(path.read_text())  # always valid JSON
    store = Store(path)  # and always a klmtui store
    n = store.get("devices", "state")["n"]
    assert len(raw["runs"]) == n
    assert {r["id"] for r in store.all("runs")} == {f"t-{i}" for i in range(1, n + 1)}
    return n


def test_sigkill_at_random_points_leaves_old_or_new_state(tmp_path):
    path = tmp_path / "runs.json"
    Store(path).insert("devices", {"id": "state", "n": 0})
    script = tmp_path / "writer.py"
    script.write_text(_WRITER.format(repo=str(REPO)))
    rng = random.Random(1234)
    last = 0
    for _ in range(50):
        proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.08))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL
        n = _consistent_state(path)
        assert n > last  # the writer made progress, and nothing committed was lost
        last = n
    # temp files of killed writers are cleaned up by the next writer, never read
    Store(path).update("devices", "state", n=last)
    assert not list(tmp_path.glob(".runs.json.*.tmp"))
