"""A local benchmark says when the machine is busy with other work (remote.busy)."""

from __future__ import annotations

import os

from core.store import Store
from remote.busy import local_busy
from tests.fixtures.runs import running_record


def test_a_running_local_training_run_is_a_warning(tmp_path):
    store = Store(tmp_path / "runs.json")
    quiet = local_busy(store)
    assert quiet["training_runs"] == [] and quiet["cpus"] == (os.cpu_count() or 1)
    assert not any("training run" in w for w in quiet["warnings"])
    with running_record(store.path) as run_id:
        busy = local_busy(store)
    assert busy["training_runs"] == [run_id]
    assert any(run_id in w and "contention" in w for w in busy["warnings"])
    if busy["load_1m"] is not None and busy["load_1m"] > 0.5 * busy["cpus"]:
        assert any(w.startswith("this machine is busy: load") for w in busy["warnings"])


def test_the_local_benchmark_records_what_it_found(history):
    bench = Store(history).all("benchmarks")[0]
    assert bench["busy"]["cpus"] >= 1 and isinstance(bench["warnings"], list)  # checked on the real path
