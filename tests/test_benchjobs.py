"""Benchmarks as jobs (issue 11): queued records, a queue per device, detached runners, heartbeat,
no orphans, clear device faults, and THE event schema with its one fold.

Real everything: two loopback sshd "Jetsons" (tests/fixtures/sshd.py), the real agent bundle,
detached runner processes, a stand-in tegrastats replaying real lines (tests/fake_tegrastats.py),
a real tmpfs as a full device disk. Tiny on purpose: 1-1-1@8-sized networks, batch 4, few batches.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from core.store import Store
from tests.fake_tegrastats import install
from tests.fixtures.cli import assert_one_line_error
from tests.fixtures.leaks import gone, runners_of
from tests.fixtures.sshd import SSHD, SshdServer
from tests.test_jobs import wait_for

TINY = ["--batch", "4", "--runs", "3", "--batches", "4", "--warmup-runs", "1", "--warmup-batches", "1",
        "--threads", "1", "--compute", "cpu", "--no-power"]  # fmt: skip
TINY_OPTIONS = {"batch": 4, "runs": 3, "batches": 4, "warmup_runs": 1, "warmup_batches": 1, "threads": 1,
                "compute": "cpu"}  # fmt: skip


def alive(pid: int) -> bool:
    """A running process (a zombie waiting for its parent counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def events_of(store: Store, bench_id: str) -> list[dict]:
    path = store.run_dir(bench_id) / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def add_ssh_device(cli, name: str, server: SshdServer, workdir: Path) -> None:
    r = cli("device", "add", name, "--host", "127.0.0.1", "--port", server.port, "--key", server.client_key,
            "--python", sys.executable, "--workdir", workdir)  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = cli("device", "trust", name, "--yes")
    assert r.returncode == 0, r.stderr


@pytest.fixture
def two_jetsons(cli, ssh_env, sshd, tmp_path):
    """Devices `jet1` and `jet2`: two real sshd servers on loopback."""
    cli.env.update(ssh_env)
    cli.env.pop("SSH_AUTH_SOCK", None)
    second = SshdServer(tmp_path / "sshd2").start()
    try:
        add_ssh_device(cli, "jet1", sshd, tmp_path / "jet1")
        add_ssh_device(cli, "jet2", second, tmp_path / "jet2")
        yield tmp_path
    finally:
        second.stop()


@pytest.mark.slow
def test_four_architectures_over_two_devices_in_parallel_one_at_a_time_each(cli, two_jetsons):
    archs = ["1-1-1@8", "1-2-1@8", "2-1-1@8", "1-1-2@8"]
    r = cli("bench", *archs, "--device", "jet1", "--device", "jet2", *TINY, "--json", timeout=400)
    assert r.returncode == 0, r.stderr
    rows = r.json()
    assert sorted(row["arch"] + f"@{row['channels']}" for row in rows) == sorted(archs)
    assert all(row["status"] == "done" and row["latency_s"] > 0 for row in rows)
    records = Store(cli.store).all("benchmarks")
    # the schema is the contract: the real agent's hello/latency/summary carry nothing undeclared
    assert all(b["bad_lines"] == 0 and b["dropped_fields"] == [] for b in records)
    assert len(records) == 4 and {b["device"] for b in records} == {"jet1", "jet2"}  # both devices used
    for b in records:  # ISO 8601 (a contract), and the pool each could take
        assert b["devices"] == ["jet1", "jet2"] and b["started"] < b["finished"]
        for stamp in (b["started"], b["finished"], b["created"]):
            assert stamp.endswith("Z") and time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")
    by_device: dict[str, list[dict]] = {}
    for b in sorted(records, key=lambda b: b["started"]):
        by_device.setdefault(b["device"], []).append(b)
    for device, runs in by_device.items():  # never two at once on one device
        for before, after in zip(runs, runs[1:]):
            assert before["finished"] <= after["started"], (device, before, after)
    one, two = by_device["jet1"], by_device["jet2"]
    assert any(a["started"] < b["finished"] and b["started"] < a["finished"] for a in one for b in two)  # in parallel


def test_submit_validates_everything_first_and_cancels_a_queued_benchmark(cli, tmp_path):
    from remote import benchjobs

    store = Store(cli.store)
    line = assert_one_line_error(cli("bench", "1-1-1@8", "--device", "nowhere", *TINY), 2)
    assert "unknown device 'nowhere'" in line
    assert_one_line_error(cli("bench", "1-1-1@8", "--device", "local", "--heartbeat-timeout", "0", *TINY), 2)
    assert not store.exists() or store.all("benchmarks") == []  # bad input: nothing queued
    [bench_id] = benchjobs.submit(store, ["1-1-1@8"], ["local"], TINY_OPTIONS, start=False)
    record = store.get("benchmarks", bench_id)
    assert record["status"] == "queued" and record["options"]["runs"] == 3 and record["weights"] == "initial"
    r = cli("cancel", bench_id)
    assert r.returncode == 0 and r.stdout.strip() == f"{bench_id}: cancelled", r.stderr
    assert store.get("benchmarks", bench_id)["status"] == "cancelled"


def _runner_with_agent(store, bench_id: str, timeout: float = 120) -> tuple[int, int]:
    """(runner pid, agent pid) once the agent has said hello."""
    def ready():
        record = store.get("benchmarks", bench_id)
        hello = [e for e in events_of(store, bench_id) if e["event"] == "hello"]
        return record.get("pid") and hello and (record["pid"], hello[0]["pid"])

    return wait_for(ready, timeout, "the agent to start")


@pytest.mark.slow
def test_heartbeat_loss_stops_the_agent_and_tegrastats(tmp_path, monkeypatch, tegrastats_fixture_path):
    """The host-side runner is frozen (SIGSTOP): no heartbeat reaches the agent, which stops itself
    (tegrastats included) within its configured timeout; the runner, thawed, records why."""
    from remote import benchjobs

    log = tmp_path / "tegrastats.jsonl"
    bin_dir = install(tmp_path / "bin", fixture=tegrastats_fixture_path, records=["xnx_jp512"], log=log,
                      python=sys.executable)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("KLMTUI_HOME", str(tmp_path / "home"))
    store = Store(tmp_path / "runs.json")
    # A short latency pass, then a power pass kept going (it wants more samples than will come).
    options = dict(TINY_OPTIONS, power_min_samples=100000, heartbeat_timeout=3)
    [bench_id] = benchjobs.submit(store, ["1-1-1@8"], ["local"], options)
    runner, agent = _runner_with_agent(store, bench_id)
    wait_for(lambda: log.exists() and log.read_text().strip(), 120, "tegrastats to run")
    tegrastats = {json.loads(line)["pid"] for line in log.read_text().splitlines()}
    assert all(alive(pid) for pid in tegrastats) and alive(agent)
    os.kill(runner, signal.SIGSTOP)
    try:
        frozen = time.monotonic()
        wait_for(lambda: not alive(agent) and not any(alive(p) for p in tegrastats), 30, "the agent to stop itself")
        stopped_after = time.monotonic() - frozen
    finally:
        os.kill(runner, signal.SIGCONT)
    assert stopped_after >= 2.0  # not before the configured 3 s (a margin for the 1 s watchdog tick)
    record = wait_for(lambda: (r := store.get("benchmarks", bench_id))["status"] != "running" and r, 60, "the record")
    assert record["status"] == "failed" and "no heartbeat from the host" in record["error"], record["error"]
    assert record["dropped_fields"] == [] and record["event_counts"]["power"] > 0  # power events: all declared
    assert benchjobs.runner_gone(store, bench_id, timeout_s=30)  # it exits after its final status


@pytest.mark.slow
def test_kill_9_of_the_host_process_marks_interrupted_and_leaves_no_agent(tmp_path, monkeypatch):
    from remote import benchjobs

    monkeypatch.setenv("KLMTUI_HOME", str(tmp_path / "home"))
    store = Store(tmp_path / "runs.json")
    [bench_id] = benchjobs.submit(store, ["1-1-1@8"], ["local"], dict(TINY_OPTIONS, runs=100000, no_power=True))
    runner, agent = _runner_with_agent(store, bench_id)
    record = wait_for(lambda: (r := store.get("benchmarks", bench_id)).get("agent_pgid") and r, 30, "agent_pgid")
    assert record["status"] == "running" and record["agent_pgid"] == agent and record["device"] == "local"
    os.kill(runner, signal.SIGKILL)
    wait_for(lambda: not alive(runner), 10, "the runner to die")
    assert benchjobs.refresh(store) == [bench_id]
    record = store.get("benchmarks", bench_id)
    assert record["status"] == "interrupted" and "vanished" in record["error"] and record["finished"]
    wait_for(lambda: not alive(agent), 20, "the orphaned agent to stop (its stdin closed)")
    # resume queues it again (attempt 2) on the same device; cancel it while it runs
    again = benchjobs.resume(store, bench_id)
    assert again["attempt"] == 2 and again["status"] in ("queued", "running")
    wait_for(lambda: store.get("benchmarks", bench_id)["status"] == "running", 60, "the second attempt to run")
    second = wait_for(lambda: store.get("benchmarks", bench_id)["pid"], 30, "the second runner's pid")
    cancelled = benchjobs.cancel(store, bench_id, wait_s=90)  # generous: the machine may be loaded
    assert cancelled["status"] == "cancelled" and cancelled["attempt"] == 2
    assert second != runner and gone(second) and runners_of(bench_id) == []  # cancel returned once it had exited


def test_a_full_device_disk_is_one_clear_line(cli, ssh_env, sshd, tmp_path):
    if os.geteuid() != 0 or not Path(SSHD).exists():
        pytest.skip("needs root (to mount a tmpfs) and openssh-server")
    cli.env.update(ssh_env)
    cli.env.pop("SSH_AUTH_SOCK", None)
    disk = tmp_path / "small-disk"
    disk.mkdir()
    import subprocess

    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        add_ssh_device(cli, "jet", sshd, disk)
        r = cli("bench", "1-1-1@8", "--device", "jet", *TINY, "--json")
        assert r.returncode == 1
        [row] = r.json()
        assert row["status"] == "failed"
        assert row["error"].startswith(f"no space left on jet:{disk} (need 0.1") and row["error"].endswith(" MB free)")
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "no space left on jet:" in lines[0]
        assert list(disk.iterdir()) == []  # nothing half-pushed
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


# --------------------------------------------------------------------------- the one schema and fold


def test_validation_skips_garbage_huge_lines_and_absurd_numbers():
    from remote.agent.events import MAX_LINE_CHARS
    from remote.benchevents import validate_line

    ok, why = validate_line('{"event": "latency", "pass": "latency", "run": 0, "batch": 1, "seconds": 0.02, "latency_s": 9}')
    assert why == "" and ok == {"event": "latency", "pass": "latency", "run": 0, "batch": 1, "seconds": 0.02}
    bad = {
        "not json": "not json",
        "a list": "[1, 2]",
        "unknown event": '{"event": "rm -rf"}',
        "zero latency": '{"event": "latency", "pass": "latency", "seconds": 0}',
        "negative latency": '{"event": "latency", "pass": "latency", "seconds": -1}',
        "NaN": '{"event": "latency", "pass": "latency", "seconds": NaN}',
        "a bool as a number": '{"event": "latency", "pass": "latency", "seconds": true}',
        "unknown pass": '{"event": "latency", "pass": "other", "seconds": 0.1}',
        "a board drawing 1 MW": '{"event": "power", "board_power_mw": 1000000000}',
        "missing board power": '{"event": "power", "power_w": 5}',
        "absurd summary power": '{"event": "summary", "latency_s": 0.1, "power_w": 5000}',
        "huge string": '{"event": "error", "error": "' + "x" * 3000 + '"}',
        "deep environment": '{"event": "hello", "protocol": {}, "environment": ' + '{"a": ' * 8 + "1" + "}" * 8 + "}",
        "huge line": '{"event": "hello", "protocol": {}, "x": "' + "y" * MAX_LINE_CHARS + '"}',
    }
    for what, line in bad.items():
        event, why = validate_line(line)
        assert event is None and why, what


def test_the_fold_reads_only_schema_fields_and_shows_progress():
    from klmtui.live import LiveStream
    from remote.benchevents import BenchState

    stream = LiveStream(key="k", arch_id="1-1-1@8", device="jet1,jet2")
    stream.feed({"event": "benchmark", "id": "b-00000001", "arch": "1-1-1@8", "device": "jet2", "attempt": 1})
    stream.feed({"event": "hello", "pid": 7, "protocol": {"protocol": "thesis", "runs": 2, "batches": 5}, "t": 0.0})
    for i in range(4):
        stream.feed({"event": "latency", "pass": "latency", "run": 0, "batch": i, "seconds": 0.5, "warmup": i == 0,
                     "t": 1.0 + i})
    stream.feed({"event": "latency", "pass": "latency", "latency_s": 0.1})  # a name nothing emits: invalid
    stream.feed({"event": "power", "power_w": 5.0})  # ditto
    stream.feed({"event": "power", "board_power_mw": 4500, "in_window": False, "t": 4.5})
    assert stream.device == "jet2" and stream.bench_id == "b-00000001" and stream.status == "running"
    assert stream.latencies == [0.5, 0.5, 0.5] and stream.power_w == [4.5] and stream.bad == 2
    assert stream.progress == "4/20 batches, latency pass, ETA 16s"  # 16 to go at 1 s each
    state = BenchState()
    state.feed({"event": "finished", "status": "failed", "error": "connection lost"})
    assert state.status == "failed" and state.error == "connection lost" and state.progress_text() == "failed"


def test_a_device_printing_garbage_is_counted_and_never_trusted(tmp_path, monkeypatch):
    """A hostile "python" on the device: invalid lines are skipped and counted, an undeclared field
    is dropped (and named in the record), host events from the device are refused."""
    from remote.benchjobs import run_benchmark

    monkeypatch.setenv("KLMTUI_HOME", str(tmp_path / "home"))
    huge = '{"event": "error", "error": "' + "x" * 100000 + '"}'
    lines = [
        '{"event": "hello", "pid": 4242, "protocol": {"protocol": "thesis", "runs": 1, "batches": 2}, "sneaky": 1}',
        '{"event": "latency", "pass": "latency", "run": 0, "batch": 0, "seconds": 0.01}',
        '{"event": "latency", "pass": "latency", "run": 0, "batch": 1, "seconds": -5}',
        '{"event": "latency", "pass": "latency", "run": 0, "batch": 1, "seconds": NaN}',
        '{"event": "power", "board_power_mw": 1e12}',
        "not json at all",
        '{"event": "finished", "status": "done"}',
        '{"event": "summary", "latency_s": 0.01, "power_w": 9999}',
        huge,
        '{"event": "summary", "latency_s": 0.01, "latency_p90_s": 0.011, "images_per_s": 400.0, "weights": "initial"}',
    ]
    (tmp_path / "lines.txt").write_text("\n".join(lines) + "\n")
    script = tmp_path / "evil-python"
    script.write_text(f"#!/bin/sh\ncat {tmp_path / 'lines.txt'}\n")
    script.chmod(0o755)
    store = Store(tmp_path / "runs.json")
    store.insert("devices", {"id": "evil", "name": "evil", "host": "local", "python": str(script)})
    record = run_benchmark(store, "1-1-1@8", "evil", dict(TINY_OPTIONS, no_power=True))
    assert record["status"] == "done" and record["latency_s"] == 0.01 and record["power_w"] is None
    assert record["bad_lines"] == 7 and record["dropped_fields"] == ["hello.sneaky"]
    kept = (store.run_dir(record["id"]) / "events.jsonl").read_text()
    assert "sneaky" not in kept and "NaN" not in kept and "9999" not in kept and len(kept) < 10000
    assert [json.loads(line)["event"] for line in kept.splitlines()].count("finished") == 1  # the host's own


@pytest.mark.slow
def test_heartbeat_loss_over_a_frozen_ssh_link_stops_the_remote_agent(cli, ssh_env, sshd, tmp_path,
                                                                       tegrastats_fixture_path):
    """The link goes silent (every sshd SIGSTOPped: TCP up, nothing forwarded): the agent on the
    device hears no heartbeat and stops itself, tegrastats included, without the host's help."""
    from remote import benchjobs

    cli.env.update(ssh_env)
    log = tmp_path / "tegrastats.jsonl"
    bin_dir = install(tmp_path / "jetson-bin", fixture=tegrastats_fixture_path, records=["xnx_jp512"], log=log,
                      python=sys.executable)
    add_ssh_device(cli, "jet", sshd, tmp_path / "jetson")
    store = Store(cli.store)
    store.update("devices", "jet", tegrastats=str(bin_dir / "tegrastats"))
    [bench_id] = benchjobs.submit(store, ["1-1-1@8"], ["jet"], dict(TINY_OPTIONS, power_min_samples=100000,
                                                                    heartbeat_timeout=4))
    _, agent = _runner_with_agent(store, bench_id)
    wait_for(lambda: log.exists() and log.read_text().strip(), 120, "tegrastats to run on the device")
    tegrastats = {json.loads(line)["pid"] for line in log.read_text().splitlines()}
    sshd.freeze()
    try:
        frozen = time.monotonic()
        wait_for(lambda: not alive(agent) and not any(alive(p) for p in tegrastats), 40, "the agent to stop itself")
        assert time.monotonic() - frozen >= 3.0
    finally:
        sshd.thaw()
    record = wait_for(lambda: (r := store.get("benchmarks", bench_id))["status"] != "running" and r, 120, "the record")
    assert record["status"] == "failed" and "no heartbeat from the host" in record["error"], record


def test_resume_kills_only_a_leftover_agent_of_the_same_benchmark(tmp_path, sshd, ssh_env):
    """kill_group checks the benchmark id on the group leader's command line (a recycled group id
    is left alone), locally and over SSH."""
    import subprocess

    from remote.local import LocalTransport
    from remote.ssh_transport import SshTransport
    from tests.fixtures.sshd import device_record

    transports = [LocalTransport({"name": "box", "workdir": str(tmp_path / "box")}),
                  SshTransport(device_record(sshd, "jet"), home=tmp_path / "home")]
    (tmp_path / "home").mkdir(exist_ok=True)  # klmtui's own known_hosts vouches for the loopback key
    (tmp_path / "home" / "known_hosts").write_text(sshd.known_hosts_line())
    try:
        for transport in transports:
            fake = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "remote.agent.main",
                                     "--job", "b-1234abcd"], start_new_session=True)
            try:  # kill_group reads the leader's command line: wait until the child has exec'd
                wait_for(lambda: b"b-1234abcd" in Path(f"/proc/{fake.pid}/cmdline").read_bytes(), 20, "the exec")
                assert transport.kill_group(fake.pid, "b-00000000") is False  # another benchmark's id
                assert fake.poll() is None
                assert transport.kill_group(fake.pid, "b-1234abcd") is True
                assert fake.wait(timeout=20) is not None
            finally:
                fake.kill()
                fake.wait()
    finally:
        transports[1].close()
