"""`klmtui bench ... --device local`: the whole benchmark path (store, transport, agent, events) on this machine.

The agent runs from a copy of the bundle in a subprocess (LocalTransport); `tegrastats` is the
stand-in (tests/fake_tegrastats.py) on PATH, replaying real fixture lines.
"""

import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.store import Store
from remote import benchjobs
from remote.benchjobs import resume_benchmark, run_benchmark
from tests.fake_tegrastats import install, read_fixture
from tests.fixtures.cli import assert_one_line_error

SMALL = ["--batch", "4", "--runs", "3", "--batches", "4", "--warmup-runs", "1", "--warmup-batches", "1", "--threads", "1"]
SMALL_OPTIONS = {"batch": 4, "runs": 3, "batches": 4, "warmup_runs": 1, "warmup_batches": 1, "threads": 1}


def events_of(store_path: Path, bench_id: str) -> list:
    path = store_path.parent / "runs" / bench_id / "events.jsonl"
    text = path.read_text() if path.exists() else ""
    return [json.loads(line) for line in text.splitlines() if line.endswith("}")]


def with_fake_tegrastats(cli, tmp_path, records):
    log = tmp_path / "teg.jsonl"
    bin_dir = install(tmp_path / "bin", records=records, log=log)
    cli.env["PATH"] = f"{bin_dir}{os.pathsep}{cli.env['PATH']}"
    return log


def test_bench_streams_events_and_stores_the_replayed_power(cli, tmp_path, tegrastats_fixture_path):
    power = {name: p for name, p, _ in read_fixture(tegrastats_fixture_path)}
    log = with_fake_tegrastats(cli, tmp_path, ["nano_cores_off"])
    r = cli("bench", "1-1-1@8", "--device", "local", *SMALL, "--json")
    assert r.returncode == 0, r.stderr
    [row] = r.json()
    assert {"arch", "channels", "device", "latency_s", "latency_p90_s", "power_w", "energy_j", "status", "id"} <= set(row)
    assert (row["arch"], row["channels"], row["device"], row["status"]) == ("1-1-1", 8, "local", "done")
    assert row["power_w"] == power["nano_cores_off"] / 1000  # every replayed line says 2003 mW
    assert json.loads(log.read_text().splitlines()[0])["board_power_mw"] == power["nano_cores_off"]

    record = Store(cli.store).get("benchmarks", row["id"])
    assert record["status"] == "done" and record["weights"] == "initial" and record["run_id"] is None
    assert record["latency_s"] == row["latency_s"] and record["pid"] and record["environment"]["python"]
    assert record["protocol"] == "thesis" and record["timing"] == "sync" and record["batch"] == 4

    events = events_of(cli.store, row["id"])
    kinds = [e["event"] for e in events]
    assert kinds[:3] == ["benchmark", "stage", "stage"] and kinds[-2:] == ["summary", "finished"]
    assert kinds.index("hello") < kinds.index("latency") < kinds.index("power") < kinds.index("summary")
    kept = [e["seconds"] for e in events if e["event"] == "latency" and e["pass"] == "latency" and not e["warmup"]]
    assert len(kept) == 6 and record["latency_s"] == pytest.approx(statistics.median(kept))
    in_window = [e["board_power_mw"] for e in events if e["event"] == "power" and e["in_window"]]
    assert in_window and set(in_window) == {power["nano_cores_off"]}
    # energy per image: power integrated over each power-pass batch (constant 2003 mW here), / batch;
    # batches before the first or after the last sample are not covered, so not counted
    stamps = [e["t_mono"] for e in events if e["event"] == "power"]
    covered = [e["t1"] - e["t0"] for e in events if e["event"] == "latency" and e["pass"] == "power"
               and not e["warmup"] and not e.get("extra") and stamps[0] <= e["t0"] and e["t1"] <= stamps[-1]]
    assert covered and row["energy_j"] == pytest.approx(row["power_w"] * statistics.median(covered) / 4)


def test_without_tegrastats_latency_is_measured_and_power_unavailable(cli):
    r = cli("bench", "1-1-1@8", "--device", "local", *SMALL)
    assert r.returncode == 0, r.stderr
    assert "done" in r.stdout and "power unavailable" in r.stderr
    [record] = Store(cli.store).all("benchmarks")
    assert record["status"] == "done" and record["latency_s"] > 0
    assert record["power_w"] is None and record["energy_j"] is None
    assert "tegrastats" in record["power_reason"]


@pytest.mark.parametrize("args, needle", [
    (["1-1@8", "--device", "local"], "1-1@8"),
    (["1-1-1@8", "--device", "jetson9"], "jetson9"),
    (["1-1-1@8", "--device", "local", "--runs", "2", "--warmup-runs", "2"], "warm-up runs"),
    (["1-1-1@8", "--device", "local", "--protocol", "fast"], "fast"),
    (["1-1-1@8/NO_SUCH;rm -rf ~", "--device", "local"], "NO_SUCH"),
    (["1-1-1@8", "--device", "local", "--threads", "-2"], "threads"),
])
def test_bad_input_is_one_line_and_runs_nothing(cli, args, needle):
    line = assert_one_line_error(cli("bench", *args), 2)
    assert needle in line
    assert not cli.store.exists()


def test_agent_arguments_are_separate_words():
    """Nothing is joined into a shell string here: the SSH transport quotes each word, local runs use no shell."""
    from core.arch import Arch
    from core.latency import Protocol
    from remote.bench import agent_args

    hostile = "tegrastats; touch /tmp/pwned"
    args = agent_args(Arch(1, 2, 3, 8, "SNAS_mild"), Protocol("thesis", batch=4), {"images": "/d ir/$(x)", "keep_none": True},
                      "checkpoints/b-1.pt", hostile)
    assert args[args.index("--tegrastats") + 1] == hostile
    assert args[args.index("--images") + 1] == "/d ir/$(x)" and "--keep-none" in args
    assert args[:8] == ["--K", "1", "--L", "2", "--M", "3", "--channels", "8"]


def _done_run(store: Store, run_id: str, checkpoint: str, finished: str) -> None:
    store.insert("runs", {"id": run_id, "arch_id": "1-1-1@8", "arch": "1-1-1", "K": 1, "L": 1, "M": 1, "channels": 8,
                          "genotype": "SNAS_mild", "status": "done", "checkpoint": checkpoint,
                          "created": finished, "finished": finished})


def test_trained_checkpoint_is_used_and_a_corrupt_one_fails_clearly(cli, tmp_path):
    import torch

    from core.network import Network

    store = Store(cli.store)
    good = tmp_path / "runs" / "t-good" / "checkpoint.pt"
    good.parent.mkdir(parents=True)
    net = Network(8, 10, 1, 1, 1, "SNAS_mild", auxiliary=True)
    torch.save({"model": net.state_dict(), "epoch": 3, "config": {"lr": 0.025}}, good)
    _done_run(store, "t-good", "runs/t-good/checkpoint.pt", "2026-01-01T00:00:00Z")
    r = cli("bench", "1-1-1@8", "--device", "local", *SMALL, "--no-power", "--json")
    assert r.returncode == 0, r.stderr
    record = store.get("benchmarks", r.json()[0]["id"])
    assert (record["weights"], record["run_id"]) == ("trained", "t-good")

    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"PK\x03\x04 truncated zip, not a checkpoint")
    _done_run(store, "t-bad", str(bad), "2026-02-01T00:00:00Z")  # the latest done run wins
    r = cli("bench", "1-1-1@8", "--device", "local", *SMALL, "--no-power")
    line = assert_one_line_error(r, 1)
    assert "checkpoint" in line and "not readable" in line
    failed = [b for b in Store(cli.store).all("benchmarks") if b["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["run_id"] == "t-bad" and "not readable" in failed[0]["error"]
    assert events_of(cli.store, failed[0]["id"])[-1] == {"event": "finished", "status": "failed", "error": failed[0]["error"]}
    assert len(Store(cli.store).all("runs")) == 2  # the store is intact


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_cancel_from_another_process_kills_the_agent(cli, tmp_path):
    argv = [sys.executable, "-m", "klmtui", "--store", str(cli.store), "bench", "1-1-1@8", "--device", "local",
            "--batch", "4", "--runs", "100000", "--batches", "4", "--warmup-runs", "1", "--warmup-batches", "1", "--threads", "1", "--no-power"]
    proc = subprocess.Popen(argv, cwd=cli.cwd, env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        store = Store(cli.store)
        agent_pid = bench_id = None
        deadline = time.time() + 60
        while time.time() < deadline and agent_pid is None:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
            rows = store.all("benchmarks") if store.exists() else []
            if rows:
                bench_id = rows[0]["id"]
                hello = [e for e in events_of(cli.store, bench_id) if e["event"] == "hello"]
                agent_pid = hello[0]["pid"] if hello else None
        assert agent_pid and _alive(agent_pid)
        r = cli("cancel", bench_id, timeout=60)  # `klmtui cancel b-...` from another process
        assert r.returncode == 0 and r.stdout.strip() == f"{bench_id}: cancelled", r.stderr
        assert store.get("benchmarks", bench_id)["status"] == "cancelled"
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1 and "cancelled" in err
    assert not _alive(agent_pid)
    assert any(e["event"] == "latency" for e in events_of(cli.store, bench_id))  # samples kept


def test_agent_dying_midstream_fails_with_partial_samples_then_resume_succeeds(tmp_path, monkeypatch):
    monkeypatch.setenv("KLMTUI_HOME", str(tmp_path / "home"))
    store = Store(tmp_path / "runs.json")
    seen = []

    def kill_after_a_few(event):
        seen.append(event)
        if event["event"] == "latency" and sum(e["event"] == "latency" for e in seen) == 3:
            hello = next(e for e in seen if e["event"] == "hello")
            os.kill(hello["pid"], signal.SIGKILL)

    record = run_benchmark(store, "1-1-1@8", "local", dict(SMALL_OPTIONS, no_power=True), on_event=kill_after_a_few)
    assert record["status"] == "failed" and "status -9" in record["error"]
    assert sum(e["event"] == "latency" for e in events_of(store.path, record["id"])) >= 3

    cancel = threading.Event()
    cancel.set()
    assert resume_benchmark(store, record["id"], cancel=cancel)["status"] == "cancelled"
    again = resume_benchmark(store, record["id"])
    assert again["status"] == "done" and again["attempt"] == 3 and again["error"] is None
    assert again["latency_s"] > 0


def test_refresh_marks_vanished_benchmarks_and_cancel_refuses_finished_ones(tmp_path):
    import socket

    from core.errors import InputError

    store = Store(tmp_path / "runs.json")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    base = {"arch_id": "1-1-1@8", "device": "local", "host": socket.gethostname()}
    store.insert("benchmarks", dict(base, id="b-00000001", status="running", pid=dead.pid))
    store.insert("benchmarks", dict(base, id="b-00000002", status="running", pid=os.getpid()))
    store.insert("benchmarks", dict(base, id="b-00000003", status="done", pid=None))
    assert benchjobs.refresh(store) == ["b-00000001"]
    assert store.get("benchmarks", "b-00000001")["status"] == "interrupted"
    assert store.get("benchmarks", "b-00000002")["status"] == "running"
    with pytest.raises(InputError, match="not running"):
        benchjobs.cancel(store, "b-00000003")
    with pytest.raises(InputError, match="no benchmark"):
        benchjobs.cancel(store, "b-99999999")
    with pytest.raises(InputError, match="already done"):
        resume_benchmark(store, "b-00000003")


def test_local_transport_copies_the_bundle_once_and_confines_paths(tmp_path):
    from core.errors import InputError
    from remote.bundle import bundle_files
    from remote.local import LocalTransport

    transport = LocalTransport({"name": "box", "workdir": str(tmp_path / "work")})
    progress = []
    agent_dir = Path(transport.prepare(lambda done, total, name: progress.append((done, total, name))))
    relative = sorted(rel for _, rel in bundle_files())
    assert sorted(str(p.relative_to(agent_dir)) for p in agent_dir.rglob("*.py")) == relative
    assert progress[-1][0] == progress[-1][1] and {"remote/agent/main.py", "core/latency.py"} <= set(relative)
    stamps = {p: p.stat().st_mtime_ns for p in agent_dir.rglob("*.py")}
    transport.prepare()
    assert stamps == {p: p.stat().st_mtime_ns for p in agent_dir.rglob("*.py")}  # checksums matched: no copy
    (tmp_path / "w.pt").write_bytes(b"x")
    assert Path(transport.put_file(tmp_path / "w.pt", "checkpoints/b-1.pt")).read_bytes() == b"x"
    for bad in ("../escape.pt", "/etc/passwd", "a/../../b"):
        with pytest.raises(InputError, match="inside the device's work folder"):
            transport.put_file(tmp_path / "w.pt", bad)


def test_two_benchmarks_at_once_on_the_local_device(tmp_path, monkeypatch):
    """Two callers at once on one device: the queue runs them one after the other (two at once would
    time each other), both finish, nothing in the store is lost."""
    monkeypatch.setenv("KLMTUI_HOME", str(tmp_path / "home"))
    store_path = tmp_path / "runs.json"
    results = {}

    def bench(arch_id):
        results[arch_id] = run_benchmark(Store(store_path), arch_id, "local", dict(SMALL_OPTIONS, no_power=True))

    threads = [threading.Thread(target=bench, args=(a,)) for a in ("1-1-1@8", "1-2-1@8")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert {a: r["status"] for a, r in results.items()} == {"1-1-1@8": "done", "1-2-1@8": "done"}
    stored = {b["arch_id"]: b for b in Store(store_path).all("benchmarks")}
    assert set(stored) == {"1-1-1@8", "1-2-1@8"} and all(b["latency_s"] > 0 for b in stored.values())
    first, second = sorted(stored.values(), key=lambda b: b["started"])
    assert first["finished"] <= second["started"]  # never two at once on the device
    assert not list((tmp_path / "home").rglob("*.part"))
