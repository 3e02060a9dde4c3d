"""Is this machine busy with something else? Checked before a benchmark on the `local` device.

A local benchmark timed while a local training run (or anything else heavy) runs measures the
contention, not the network: 0.75 s/batch instead of 0.024 s was seen. `local_busy(store)`
looks at what can be seen cheaply — the 1-minute load average against the CPU count, the
training runs of the store that run on this host, GPU utilisation when `nvidia-smi` exists —
and returns the facts plus one warning line per problem. The benchmark records them
(`busy`, `warnings`) and the CLI and the TUI show the warnings beside the figures.
(A Jetson's own load is in the device environment the agent reports; not checked here.)
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from typing import Any, Optional

LOAD_SHARE = 0.5  # warn above this load per CPU (before the benchmark itself starts)
GPU_BUSY_PCT = 10.0


def gpu_utilisation(timeout_s: float = 3.0) -> Optional[list[float]]:
    """Per-GPU utilisation in % from `nvidia-smi`, or None where there is none (or it fails)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=timeout_s, check=True).stdout
        return [float(line) for line in out.split() if line.strip()]
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def local_training_runs(store) -> list[str]:
    """Ids of the store's training runs running on this host (local executor)."""
    here = socket.gethostname()
    return [r["id"] for r in store.find("runs", status="running")
            if r.get("executor", "local") == "local" and r.get("host") in (None, here)]


def local_busy(store=None) -> dict[str, Any]:
    """{"load_1m", "cpus", "training_runs", "gpu_util_pct", "warnings": [one line each]}."""
    cpus = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    runs = local_training_runs(store) if store is not None else []
    gpus = gpu_utilisation()
    warnings = []
    if runs:
        warnings.append(f"{len(runs)} local training run(s) running ({', '.join(runs[:3])}): "
                        "the latency measured here includes their contention")
    if load is not None and load > LOAD_SHARE * cpus:
        warnings.append(f"this machine is busy: load {load:.2f} on {cpus} CPU(s) before the benchmark started")
    if gpus and max(gpus) > GPU_BUSY_PCT:
        warnings.append(f"GPU already {max(gpus):.0f}% utilised by another process")
    return {"load_1m": load, "cpus": cpus, "training_runs": runs, "gpu_util_pct": gpus, "warnings": warnings}
