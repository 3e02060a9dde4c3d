"""The device agent as the device runs it: `python -u -m remote.agent.main` in a copy of the bundle.

Small on purpose (CPU, 1 thread): arch 1-1-1@8, batch 4, 3 runs of 4 batches with 1 warm-up run
and 1 warm-up batch per run; tegrastats is the stand-in replaying real fixture lines.
"""

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from remote.local import LocalTransport
from tests.fake_tegrastats import read_fixture

FAKE = Path(__file__).with_name("fake_tegrastats.py")
SMALL = ["--K", "1", "--L", "1", "--M", "1", "--channels", "8", "--batch", "4", "--runs", "3", "--batches", "4",
         "--warmup-runs", "1", "--warmup-batches", "1", "--threads", "1"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """The pushed bundle, copied the way LocalTransport.prepare() does (proves it is self-contained)."""
    return Path(LocalTransport({"name": "t", "workdir": str(tmp_path_factory.mktemp("device"))}).prepare())


@pytest.fixture(scope="module")
def fixture_records(tegrastats_fixture_path):
    return {name: (power, line) for name, power, line in read_fixture(tegrastats_fixture_path)}


def fake_cmd(fixture, records, log, faults=()):
    cmd = [sys.executable, str(FAKE), "--fixture", str(fixture), "--records", ",".join(records), "--log", str(log)]
    if faults:
        cmd += ["--faults", ",".join(faults)]
    return " ".join(cmd)


def run_agent(bundle, *args, timeout=120):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-u", "-m", "remote.agent.main", *SMALL, *args], cwd=bundle, env=env,
                          capture_output=True, text=True, timeout=timeout)
    events = [json.loads(line) for line in proc.stdout.splitlines()]  # every stdout line is JSON
    return proc, events


def logged(log):
    return [json.loads(l) for l in Path(log).read_text().splitlines()]


def test_events_in_order_and_figures_from_the_samples(bundle, tegrastats_fixture_path, fixture_records, tmp_path):
    log = tmp_path / "teg.jsonl"
    proc, events = run_agent(bundle, "--tegrastats", fake_cmd(tegrastats_fixture_path, ["nano_jp461_root", "nano_cores_off"], log))
    assert proc.returncode == 0, proc.stderr
    kinds = [e["event"] for e in events]
    assert kinds[0] == "hello" and kinds[-1] == "summary" and "error" not in kinds
    hello, summary = events[0], events[-1]
    assert hello["weights"] == "initial" and hello["drop_none"] is True and hello["timing"] == "sync"
    assert hello["environment"]["python"] and hello["environment"]["torch"]

    lat = [e for e in events if e["event"] == "latency" and e["pass"] == "latency"]
    assert [(e["run"], e["batch"]) for e in lat] == [(r, b) for r in range(3) for b in range(4)]
    kept = [e["seconds"] for e in lat if not e["warmup"]]
    assert len(kept) == 2 * 3
    assert [e["warmup"] for e in lat] == [r < 1 or b < 1 for r in range(3) for b in range(4)]
    assert summary["latency_s"] == pytest.approx(statistics.median(kept))
    assert summary["latency"]["n"] == 6
    assert summary["images_per_s"] == pytest.approx(4 / summary["latency_s"])
    # the power pass comes after the latency pass, with tegrastats only then
    first_power = kinds.index("power")
    assert first_power > max(i for i, e in enumerate(events) if e["event"] == "latency" and e["pass"] == "latency")

    window = [e["board_power_mw"] for e in events if e["event"] == "power" and e["in_window"]]
    assert len(window) >= 3 and summary["power"]["tegrastats"]["used"] == len(window)
    assert summary["power_w"] == pytest.approx(sum(window) / len(window) / 1000)
    replayed = logged(log)
    assert {e["board_power_mw"] for e in replayed} <= {fixture_records["nano_jp461_root"][0], fixture_records["nano_cores_off"][0]}
    assert len([e for e in events if e["event"] == "power"]) == len(replayed)  # every replayed line became a sample


def test_power_equals_the_replayed_board_power(bundle, tegrastats_fixture_path, fixture_records, tmp_path):
    log = tmp_path / "teg.jsonl"
    proc, events = run_agent(bundle, "--tegrastats", fake_cmd(tegrastats_fixture_path, ["xnx_jp512"], log))
    summary = events[-1]
    assert summary["event"] == "summary", proc.stderr
    assert summary["power_w"] == fixture_records["xnx_jp512"][0] / 1000
    assert summary["power"]["board_power_source"] == "VDD_IN"
    assert summary["power"]["temps_end_c"]["GPU"] == 45.5


def test_garbage_and_torn_lines_are_skipped_and_counted(bundle, tegrastats_fixture_path, fixture_records, tmp_path):
    log = tmp_path / "teg.jsonl"
    cmd = fake_cmd(tegrastats_fixture_path, ["tx2_user"], log, faults=("garbage", "torn"))
    proc, events = run_agent(bundle, "--tegrastats", cmd)
    summary = events[-1]
    assert summary["event"] == "summary", proc.stderr
    counts = summary["power"]["tegrastats"]
    replayed = logged(log)
    real = sum(1 for e in replayed if e["kind"] == "real")
    assert counts["lines"] == len(replayed)
    assert counts["skipped_garbage"] == sum(1 for e in replayed if e["kind"] == "garbage")
    assert counts["skipped"] == len(replayed) - real
    assert counts["used"] + counts["outside_window"] == real
    assert summary["power_w"] == fixture_records["tx2_user"][0] / 1000  # torn halves never pollute the mean


def test_no_tegrastats_still_measures_latency(bundle, tmp_path):
    proc, events = run_agent(bundle, "--tegrastats", str(tmp_path / "no-such-tegrastats"))
    summary = events[-1]
    assert proc.returncode == 0 and summary["event"] == "summary", proc.stderr
    assert summary["latency_s"] > 0
    assert summary["power_w"] is None and "not available" in summary["power_reason"]
    assert not [e for e in events if e["event"] == "power"]


def test_tegrastats_that_dies_gives_a_reason(bundle):
    proc, events = run_agent(bundle, "--tegrastats", "sh -c 'echo denied >&2; exit 3'", "--power-max-extra-s", "5")
    summary = events[-1]
    assert summary["power_w"] is None
    assert "status 3" in summary["power_reason"] and "denied" in summary["power_reason"]


def test_trained_weights_load_and_corrupt_ones_fail_clearly(bundle, tmp_path):
    import torch

    from core.network import Network

    net = Network(8, 10, 1, 1, 1, "SNAS_mild", auxiliary=True)  # as trained: with the auxiliary head
    good = tmp_path / "good.pt"
    torch.save(net.state_dict(), good)
    proc, events = run_agent(bundle, "--weights", str(good), "--no-power")
    assert proc.returncode == 0, proc.stderr
    assert events[0]["weights"] == "trained" and events[-1]["weights"] == "trained"

    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x80\x02 not a checkpoint at all")
    proc, events = run_agent(bundle, "--weights", str(corrupt), "--no-power")
    assert proc.returncode == 1
    assert events[-1]["event"] == "error" and "cannot read weights" in events[-1]["error"]

    wrong = tmp_path / "wrong.pt"
    torch.save(Network(12, 10, 1, 1, 1, "SNAS_mild", auxiliary=False).state_dict(), wrong)
    proc, events = run_agent(bundle, "--weights", str(wrong), "--no-power")
    assert proc.returncode == 1 and "do not fit 1-1-1@8" in events[-1]["error"]


def test_bad_arguments_are_an_error_event(bundle):
    proc, events = run_agent(bundle, "--warmup-runs", "3")
    assert proc.returncode == 1
    assert events == [e for e in events if e["event"] == "error"] and "warm-up runs" in events[-1]["error"]
    proc, events = run_agent(bundle, "--genotype", "NOPE", "--no-power")
    assert proc.returncode == 1 and "NOPE" in events[-1]["error"]
    proc, events = run_agent(bundle, "--timing", "thesis", "--images", "/no/such/folder", "--no-power")
    assert proc.returncode == 1 and events[-1]["kind"] == "input" and "/no/such/folder" in events[-1]["error"]


def test_thesis_timing_and_adaptive_protocol(bundle):
    proc, events = run_agent(bundle, "--timing", "thesis", "--protocol", "adaptive", "--warmup-batches", "2",
                             "--min-batches", "6", "--max-batches", "200", "--ci-rel", "0.5", "--min-seconds", "0",
                             "--no-power")
    summary = events[-1]
    assert summary["event"] == "summary", proc.stderr
    assert summary["timing"] == "thesis" and summary["images"] == "synthetic"
    # converges in a few batches; the ceiling leaves room for a drift on a busy machine (a load change
    # mid-run restarts the clock: it failed once at 40 in a CI run beside other work)
    assert summary["adaptive"]["converged"] and 6 <= summary["adaptive"]["batches"] <= 200, summary["adaptive"]
    assert summary["latency"]["ci_rel"] <= 0.5

    proc, events = run_agent(bundle, "--protocol", "adaptive", "--warmup-batches", "1", "--min-batches", "6",
                             "--max-batches", "12", "--ci-rel", "1e-9", "--no-power")
    summary = events[-1]
    assert {k: summary["adaptive"][k] for k in ("batches", "reason", "converged", "timed")} == {
        "batches": 12, "reason": "ceiling", "converged": False, "timed": 12}
    assert (summary["batches_timed"], summary["stop_reason"]) == (12, "ceiling") and summary["seconds_timed"] > 0


@pytest.fixture(scope="module")
def cifar_test_images(tmp_path_factory):
    """The first 40 real CIFAR-10 test JPEGs, streamed from the shared tarball (they come first in it)."""
    import tarfile

    from tests.fixtures.paths import shared_file

    dest = tmp_path_factory.mktemp("cifar-test")
    with tarfile.open(shared_file("data/cifar10-jpeg.tar.gz"), "r|gz") as tar:
        taken = 0
        for member in tar:
            if member.isfile() and "/test/" in member.name and member.name.endswith(".jpg"):
                (dest / f"{taken:03d}.jpg").write_bytes(tar.extractfile(member).read())
                taken += 1
                if taken == 40:
                    break
    assert taken == 40
    return dest


def test_thesis_timing_with_real_cifar_images(bundle, cifar_test_images):
    proc, events = run_agent(bundle, "--timing", "thesis", "--images", str(cifar_test_images), "--no-power")
    summary = events[-1]
    assert summary["event"] == "summary", proc.stderr
    assert summary["images"].startswith("files:") and "(40 images)" in summary["images"] and summary["latency_s"] > 0


def start_endless_power_pass(bundle, fixture, log):
    """An agent in a power pass that waits for more samples than will ever come, stopped at its
    first power sample; returns (process, the stand-in tegrastats' pid)."""
    cmd = fake_cmd(fixture, ["nano_jp461_root"], log)
    proc = subprocess.Popen([sys.executable, "-u", "-m", "remote.agent.main", *SMALL, "--tegrastats", cmd,
                             "--power-min-samples", "1000000"], cwd=bundle, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    for line in proc.stdout:
        if json.loads(line)["event"] == "power":
            break
    return proc, logged(log)[0]["pid"]


def assert_gone(pid, why):
    deadline = time.time() + 10
    while time.time() < deadline and _alive(pid):
        time.sleep(0.1)
    assert not _alive(pid), why


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0): look at its state
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_sigterm_stops_the_agent_and_tegrastats(bundle, tegrastats_fixture_path, tmp_path):
    proc, fake_pid = start_endless_power_pass(bundle, tegrastats_fixture_path, tmp_path / "teg.jsonl")
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        rest = [json.loads(l) for l in proc.stdout]
        assert proc.wait(timeout=30) == 130
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert rest[-1]["event"] == "error" and rest[-1]["kind"] == "cancelled"
    assert_gone(fake_pid, "tegrastats left running after SIGTERM")


def test_agent_exits_and_stops_tegrastats_when_the_host_stops_reading(bundle, tegrastats_fixture_path, tmp_path):
    """The host died (or the link dropped): the agent's next write fails, it exits, tegrastats stops."""
    proc, fake_pid = start_endless_power_pass(bundle, tegrastats_fixture_path, tmp_path / "teg.jsonl")
    try:
        proc.stdout.close()  # the reader goes away
        assert proc.wait(timeout=30) == 141
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert_gone(fake_pid, "tegrastats left running after the host went away")


def test_sampler_keeps_only_the_boards_usual_rails(fixture_records):
    """A TX2 line cut just before VDD_IN looks whole but would sum the other rails: never counted."""
    from remote.agent.power import TegrastatsSampler
    from remote.agent.tegrastats import parse

    power, line = fixture_records["tx2_user"]
    cut = line[: line.index(" VDD_IN")]
    assert not parse(cut)["torn"] and parse(cut)["board_power_mw"] != power  # the trap
    sampler = TegrastatsSampler("tegrastats")
    sampler._take(line)  # before the window
    sampler.measuring = True
    for text in (line, cut, line, "garbage", line[:40], line):
        sampler._take(text)
    info, power_w, reason = sampler.result()
    assert reason is None and power_w == power / 1000
    assert info["tegrastats"] == {"lines": 7, "skipped_garbage": 1, "skipped_torn": 1, "skipped_no_power": 0,
                                  "outside_window": 1, "used": 3, "skipped_inconsistent": 1, "skipped": 3}
