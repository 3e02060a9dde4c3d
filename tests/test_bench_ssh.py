"""Benchmarks over SSH end to end: a real loopback sshd as the "Jetson", the real agent bundle, and a
stand-in tegrastats replaying real lines (tests/fake_tegrastats.py).

Small on purpose: arch 1-1-1@8 on CPU with one thread, batch 4, 3 runs of 4 batches.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path

import pytest

from core.store import Store
from remote.bundle import bundle_files
from tests.fake_tegrastats import install, read_fixture
from tests.fixtures.cli import assert_one_line_error

RECORD = "xnx_jp512"  # Xavier NX, JetPack 5.1.2: VDD_IN is the board power
SMALL = ["--batch", "4", "--runs", "3", "--batches", "4", "--warmup-runs", "1", "--warmup-batches", "1",
         "--threads", "1", "--compute", "cpu"]  # fmt: skip
SMALL_OPTIONS = {"batch": 4, "runs": 3, "batches": 4, "warmup_runs": 1, "warmup_batches": 1, "threads": 1, "compute": "cpu"}


@pytest.fixture
def jetson(cli, ssh_env, sshd, tmp_path, tegrastats_fixture_path):
    """Device `jet` (added and trusted through the CLI) whose tegrastats replays RECORD."""
    cli.env.update(ssh_env)
    cli.env.pop("SSH_AUTH_SOCK", None)
    bin_dir = install(tmp_path / "jetson-bin", fixture=tegrastats_fixture_path, records=[RECORD],
                      log=tmp_path / "tegrastats.jsonl", python=sys.executable)  # fmt: skip
    r = cli("device", "add", "jet", "--host", "127.0.0.1", "--port", sshd.port, "--key", sshd.client_key,
            "--python", sys.executable, "--tegrastats", f"{bin_dir / 'tegrastats'}",
            "--workdir", tmp_path / "jetson")  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = cli("device", "trust", "jet", "--yes")
    assert r.returncode == 0 and sshd.fingerprint in r.stdout, r.stderr
    return tmp_path / "jetson"


def board_power_w(fixture: Path, name: str) -> float:
    return {n: p for n, p, _ in read_fixture(fixture)}[name] / 1000


def agent_running(agent_dir: Path) -> bool:
    """Is `python -m remote.agent.main` running in the device's agent folder right now?"""
    for entry in os.listdir("/proc"):
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            if b"remote.agent.main" in cmdline and os.readlink(f"/proc/{entry}/cwd") == str(agent_dir):
                return True
        except OSError:
            continue
    return False


def test_add_trust_check_push_and_bench_over_ssh(cli, jetson, sshd, tegrastats_fixture_path):
    [report] = cli("device", "check", "jet", "--json").json()
    assert report["tegrastats"] is True and report["torch"] and report["python"]

    r = cli("bench", "1-1-1@8", "--device", "jet", *SMALL, "--json", timeout=300)
    assert r.returncode == 0, r.stderr
    [row] = r.json()
    assert row["status"] == "done" and row["device"] == "jet"
    assert row["arch"] == "1-1-1" and row["channels"] == 8
    assert row["latency_s"] > 0 and row["latency_p90_s"] >= row["latency_s"]
    assert row["power_w"] == board_power_w(tegrastats_fixture_path, RECORD)  # the replayed board power

    store = Store(cli.store)
    [record] = store.find("benchmarks", device="jet")
    assert record["status"] == "done" and record["weights"] == "initial" and record["protocol"] == "thesis"
    events = [json.loads(l) for l in (store.run_dir(record["id"]) / "events.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "benchmark" and kinds[-1] == "finished" and "summary" in kinds and "error" not in kinds
    assert kinds.index("hello") < kinds.index("latency") < kinds.index("power") < kinds.index("summary")
    timed = [(e["run"], e["batch"]) for e in events if e["event"] == "latency" and e["pass"] == "latency"]
    assert timed == [(run, batch) for run in range(3) for batch in range(4)]  # in order, none lost
    # energy per image: the (constant) replayed power integrated over each covered power-pass batch
    stamps = [e["t_mono"] for e in events if e["event"] == "power"]
    covered = [e["t1"] - e["t0"] for e in events if e["event"] == "latency" and e["pass"] == "power"
               and not e["warmup"] and not e.get("extra") and stamps[0] <= e["t0"] and e["t1"] <= stamps[-1]]
    assert covered and row["energy_j"] == pytest.approx(row["power_w"] * statistics.median(covered) / 4)

    # The agent bundle is on the device; a second push skips every unchanged file.
    agent = jetson / "agent"
    bundle = {rel: local.read_bytes() for local, rel in bundle_files()}
    assert {rel: (agent / rel).read_bytes() for rel in bundle} == bundle  # exactly the bundle was pushed
    inodes = {rel: (agent / rel).stat().st_ino for rel in bundle}
    from remote.benchjobs import run_benchmark

    seen: list[dict] = []

    def on_event(event: dict) -> None:
        if event["event"] == "latency" and not [e for e in seen if e["event"] == "latency"]:
            event = dict(event, agent_was_running=agent_running(agent))
        seen.append(event)

    again = run_benchmark(store, "1-1-1@8", "jet", SMALL_OPTIONS, on_event=on_event)
    assert again["status"] == "done"
    unchanged = [rel for local, rel in bundle_files() if local.read_bytes() == bundle[rel]]  # (others may edit)
    assert unchanged and all((agent / rel).stat().st_ino == inodes[rel] for rel in unchanged)  # not re-uploaded
    first_latency = next(e for e in seen if e["event"] == "latency")
    assert first_latency["agent_was_running"]  # events arrive live, while the agent still runs
    timed = [(e["run"], e["batch"]) for e in seen if e["event"] == "latency" and e["pass"] == "latency"]
    assert timed == [(run, batch) for run in range(3) for batch in range(4)]  # handed over in order
    assert seen[0]["event"] == "benchmark" and seen[-1] == {"event": "finished", "status": "done", "error": None}
    assert len(store.find("benchmarks", device="jet", status="done")) == 2


@pytest.mark.slow
def test_sshd_killed_mid_benchmark_fails_clearly_keeps_samples_and_reruns(cli, jetson, sshd, tegrastats_fixture_path):
    from remote.benchjobs import resume_benchmark, run_benchmark

    store = Store(cli.store)
    latencies = []

    def on_event(event: dict) -> None:
        if event["event"] == "latency":
            latencies.append(event)
            if len(latencies) == 5:
                sshd.kill()  # the link drops in the middle of the latency pass

    long_run = dict(SMALL_OPTIONS, runs=30, batches=10)
    record = run_benchmark(store, "1-1-1@8", "jet", long_run, on_event=on_event)
    assert record["status"] == "failed"
    assert "connection lost" in record["error"] and "jet" in record["error"]
    kept = [json.loads(l) for l in (store.run_dir(record["id"]) / "events.jsonl").read_text().splitlines()]
    assert len([e for e in kept if e["event"] == "latency"]) >= 5  # partial samples are kept
    assert record["latency_s"] is None

    sshd.start()  # the device is back
    rerun = resume_benchmark(store, record["id"])  # same benchmark, same (long) protocol, link intact
    assert rerun["status"] == "done", rerun["error"]
    assert rerun["power_w"] == board_power_w(tegrastats_fixture_path, RECORD)
    events = [json.loads(l) for l in (store.run_dir(record["id"]) / "events.jsonl").read_text().splitlines()]
    assert [e["attempt"] for e in events if e["event"] == "benchmark"] == [1, 2]  # first attempt's samples kept

def test_bench_refuses_an_unknown_host_key_and_runs_nothing(cli, ssh_env, sshd, tmp_path):
    cli.env.update(ssh_env)
    cli.env.pop("SSH_AUTH_SOCK", None)
    cli("device", "add", "jet", "--host", "127.0.0.1", "--port", sshd.port, "--key", sshd.client_key,
        "--python", sys.executable, "--workdir", tmp_path / "jetson")  # fmt: skip
    r = cli("bench", "1-1-1@8", "--device", "jet", *SMALL, "--json")
    assert r.returncode == 1
    [row] = r.json()
    assert row["status"] == "failed" and sshd.fingerprint in row["error"] and "klmtui device trust jet" in row["error"]
    assert not (tmp_path / "jetson").exists()  # nothing was pushed or run
    assert "Accepted publickey" not in sshd.log.read_text()


def test_bench_with_a_wrong_key_fails_with_an_auth_error(cli, ssh_env, sshd, tmp_path):
    cli.env.update(ssh_env)
    cli.env.pop("SSH_AUTH_SOCK", None)
    cli("device", "add", "jet", "--host", "127.0.0.1", "--port", sshd.port, "--key", sshd.other_key,
        "--python", sys.executable, "--workdir", tmp_path / "jetson")  # fmt: skip
    assert cli("device", "trust", "jet", "--yes").returncode == 0
    r = cli("bench", "1-1-1@8", "--device", "jet", *SMALL, "--json")
    assert r.returncode == 1
    [row] = r.json()
    assert row["status"] == "failed" and "authentication failed" in row["error"]
    assert not (tmp_path / "jetson").exists()


def test_bad_architecture_never_reaches_the_device(cli, jetson):
    line = assert_one_line_error(cli("bench", "1-1-1@8; touch pwned", "--device", "jet", *SMALL), 2)
    assert "1-1-1@8; touch pwned" in line or "K-L-M@C" in line
    assert not jetson.exists()
    assert Store(cli.store).all("benchmarks") == []


def test_cancel_from_another_thread_kills_the_remote_agent(cli, jetson):
    """The TUI's way: a threading.Event set while the benchmark streams; the remote group dies."""
    import threading

    from remote.benchjobs import run_benchmark

    cancel = threading.Event()
    agent_dir = jetson / "agent"
    seen: list[dict] = []

    def on_event(event: dict) -> None:
        seen.append(event)
        if event["event"] == "latency" and event["batch"] == 3 and not cancel.is_set():
            assert agent_running(agent_dir)
            threading.Timer(0.1, cancel.set).start()  # from another thread, as a UI would

    record = run_benchmark(Store(cli.store), "1-1-1@8", "jet", dict(SMALL_OPTIONS, runs=500, batches=10),
                           on_event=on_event, cancel=cancel)  # fmt: skip
    assert record["status"] == "cancelled"
    assert seen[-1]["event"] == "finished" and seen[-1]["status"] == "cancelled"
    assert not agent_running(agent_dir)  # killed on the device, not left behind
