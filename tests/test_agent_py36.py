"""The bundle under a real Python 3.6 interpreter (when one is installed), beyond vermin's static check.

A Jetson Nano runs the agent on Python 3.6. Without torch 1.10 here, this runs what needs no torch:
the tegrastats parser over the real fixture lines, the statistics, the tegrastats sampler against
the stand-in, and the agent itself up to its torch import (a clean `error` event, not a crash).
Skipped where no python3.6 exists (vermin in tests/test_py36_compat.py is the CI gate).
"""

import glob
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from remote.local import LocalTransport

FAKE = Path(__file__).with_name("fake_tegrastats.py")


def python36():
    candidates = sorted(glob.glob(str(Path.home() / ".pyenv/versions/3.6*/bin/python3.6"))) + [shutil.which("python3.6")]
    for exe in filter(None, candidates):
        ok = subprocess.run([exe, "-c", "import sys; assert sys.version_info[:2] == (3, 6)"], capture_output=True)
        if ok.returncode == 0:
            return exe
    pytest.skip("no working python3.6 on this machine")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return Path(LocalTransport({"name": "py36", "workdir": str(tmp_path_factory.mktemp("py36"))}).prepare())


SCRIPT = r"""
import json, sys, time
from remote.agent.tegrastats import parse
from core.latency import summarize, Protocol, AdaptiveStop
from remote.agent.power import TegrastatsSampler
from remote.agent.events import Emitter

fixture, fake, host_python = sys.argv[1:4]
powers = []
for raw in open(fixture):
    if raw.startswith("#") or not raw.strip():
        continue
    name, power, line = [p.strip() for p in raw.split("|", 2)]
    powers.append([name, parse(line)["board_power_mw"], None if power == "none" else int(power)])
stats = summarize([0.5, 0.4, 0.6, 0.45, 0.55, 0.52, 0.48])
args = Protocol("thesis", batch=4, runs=3, batches=4, warmup_runs=1, warmup_batches=1).args()
emitted = []
sampler = TegrastatsSampler(host_python + " " + fake + " --fixture " + fixture + " --records tx2_user", 50,
                            lambda event, **kw: emitted.append(event))
sampler.start()
sampler.measuring = True
deadline = time.time() + 20
while sampler.window_count() < 3 and time.time() < deadline:
    time.sleep(0.05)
sampler.measuring = False
sampler.stop()
info, power_w, reason = sampler.result()
print(json.dumps({"version": list(sys.version_info[:2]), "powers": powers, "median": stats["median_s"],
                  "args": args, "power_w": power_w, "reason": reason, "used": info["tegrastats"]["used"]}))
"""


def test_torch_free_parts_run_on_python36(bundle, tegrastats_fixture_path):
    out = subprocess.run([python36(), "-c", SCRIPT, str(tegrastats_fixture_path), str(FAKE), sys.executable],
                         cwd=bundle, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["version"] == [3, 6]
    assert all(parsed == stated for _, parsed, stated in result["powers"])
    assert result["median"] == 0.5
    assert "--warmup-runs" in result["args"]
    assert result["used"] >= 3 and result["power_w"] == 3.14 and result["reason"] is None


def test_agent_on_python36_without_torch_reports_a_clean_error(bundle):
    out = subprocess.run([python36(), "-u", "-m", "remote.agent.main", "--K", "1", "--L", "1", "--M", "1",
                          "--channels", "8"], cwd=bundle, capture_output=True, text=True, timeout=120)
    events = [json.loads(l) for l in out.stdout.splitlines()]
    if out.returncode == 0:
        pytest.skip("this python3.6 has torch installed")
    assert out.returncode == 1 and len(events) == 1
    assert events[0]["event"] == "error" and events[0]["kind"] == "input"
    assert "PyTorch is not importable" in events[0]["error"]


def test_full_benchmark_on_python36_with_torch_110(tmp_path, monkeypatch, tegrastats_fixture_path):
    """With .venv36 (built by scripts/setup.sh --test) or KLMTUI_PY36_TORCH: the JetPack 4.6 stack
    end to end, including a checkpoint saved by this machine's torch and loaded by torch 1.10."""
    import os

    import torch

    from core.network import Network
    from core.store import Store
    from remote.benchjobs import run_benchmark
    from tests.fake_tegrastats import install

    python = os.environ.get("KLMTUI_PY36_TORCH")
    built = Path(__file__).resolve().parents[1] / ".venv36" / "bin" / "python"  # scripts/setup.sh --test
    if not python and built.exists():
        python = str(built)
    if not python:
        pytest.skip("no Python 3.6 + torch 1.10 (scripts/setup.sh --test builds .venv36 where a python3.6 exists; "
                    "or set KLMTUI_PY36_TORCH)")
    monkeypatch.setenv("KLMTUI_HOME", str(tmp_path / "home"))
    bin_dir = install(tmp_path / "bin", fixture=tegrastats_fixture_path, records=["nano_jp461_root"])
    store = Store(tmp_path / "runs.json")
    torch.save(Network(8, 10, 1, 1, 1, "SNAS_mild", auxiliary=True).state_dict(), tmp_path / "model.pt")
    store.insert("devices", {"id": "nano", "name": "nano", "host": "local", "python": python,
                             "tegrastats": str(bin_dir / "tegrastats")})
    store.insert("runs", {"id": "t-1", "arch_id": "1-1-1@8", "status": "done", "checkpoint": str(tmp_path / "model.pt"),
                          "finished": "2026-01-01T00:00:00Z"})
    for timing in ("sync", "thesis"):
        record = run_benchmark(store, "1-1-1@8", "nano", {"batch": 4, "runs": 3, "batches": 4, "warmup_runs": 1,
                                                          "warmup_batches": 1, "threads": 1, "timing": timing})
        assert record["status"] == "done", record["error"]
        assert record["environment"]["python"].startswith("3.6") and record["environment"]["torch"].startswith("1.10")
        assert record["weights"] == "trained" and record["timing"] == timing and record["power_w"] == 1.75
