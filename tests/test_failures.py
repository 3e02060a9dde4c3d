"""Issue 12: exit codes that tell the truth, a store that cannot be fooled, results that mean what
they say. Every test drives `python -m klmtui` as a subprocess and checks the exact output, the
exit code, and that the store is byte-identical after every refused command."""

import json
import os
import shutil
from pathlib import Path

import pytest

from core.store import Store
from tests.fixtures.cli import assert_one_line_error
from tests.fixtures.disk import fill
from tests.fixtures.leaks import runners_of
from tests.test_jobs import stop_active_runs, wait_for

PER_CLASS = 12  # images per class and split in the small real CIFAR-10 folder


@pytest.fixture(scope="module")
def small_cifar(tmp_path_factory, cifar_dir) -> Path:
    """A real CIFAR-10 ImageFolder with PER_CLASS JPEGs per class and split (copied from the session's
    unpacked shared tarball: reading the whole tarball again took ~8 s)."""
    root = tmp_path_factory.mktemp("small-cifar") / "cifar10-jpeg"
    taken: dict[tuple[str, str], int] = {}
    for split in ("train", "test"):
        for class_dir in sorted(p for p in (cifar_dir / split).iterdir() if p.is_dir()):
            (root / split / class_dir.name).mkdir(parents=True)
            for jpeg in sorted(class_dir.glob("*.jpg"))[:PER_CLASS]:
                shutil.copyfile(jpeg, root / split / class_dir.name / jpeg.name)
                taken[(split, class_dir.name)] = taken.get((split, class_dir.name), 0) + 1
    assert len(taken) == 20 and set(taken.values()) == {PER_CLASS}
    return root


@pytest.fixture
def cli(cli):
    cli.env.update(KLMTUI_TORCH_THREADS="1", KLMTUI_MAX_PARALLEL="2")
    cli.env.pop("KLMTUI_DATA", None)
    yield cli
    from core.store import StoreError

    try:
        stop_active_runs(cli.store)
    except StoreError:  # a test's hostile store file: nothing can run from it
        pass


@pytest.fixture
def study(cli, initialised):
    """The cli fixture on an initialised store."""
    cli.store.write_bytes(initialised)
    return cli


def store_bytes(cli) -> bytes:
    return cli.store.read_bytes() if cli.store.exists() else b""


def refused(cli, *args, code=2, contains=None) -> str:
    """Run a command that must be refused: one line, `code`, the store byte-identical."""
    before = store_bytes(cli)
    r = cli(*args)
    line = assert_one_line_error(r, code)
    assert store_bytes(cli) == before, f"{args} changed the store"
    if contains is not None:
        assert contains in line, line
    return line


# --------------------------------------------------------------------------- 1. exit codes


@pytest.mark.slow
def test_train_that_fails_exits_1_json_too(cli, small_cifar, tmp_path):
    broken = tmp_path / "broken-cifar"
    shutil.copytree(small_cifar, broken)
    (broken / "train" / "cat" / "9999.jpg").write_bytes(b"not a jpeg")  # real decode failure in the run
    tiny = ["--epochs", "1", "--train-subset", "20", "--test-subset", "10", "--batch-size", "10"]
    cli.env["KLMTUI_DATA"] = str(broken)  # 9. the folder comes from the environment...
    r = cli("train", "1-1-1@8", *tiny, "--json", timeout=300)
    line = assert_one_line_error(r, 1)
    (row,) = json.loads(r.stdout)  # --json still prints the summary
    assert row["status"] == "failed"
    assert runners_of(row["id"]) == []  # it returned once the failed run's process had exited
    assert line.startswith(f"klmtui: run {row['id']} failed: cannot read image "), line
    assert "9999.jpg" in line
    assert Store(cli.store).get("runs", row["id"])["config"]["data"] == str(broken.resolve())  # ...and is recorded

    # resume in the foreground, in a shell without $KLMTUI_DATA: the recorded folder, failing again -> 1
    del cli.env["KLMTUI_DATA"]
    r = cli("resume", row["id"], "--json", timeout=300)
    line = assert_one_line_error(r, 1)
    assert line.startswith(f"klmtui: run {row['id']} failed: cannot read image "), line
    assert runners_of(row["id"]) == []

    # resume --data overrides the recorded folder: a bad one is refused, a good one trains -> 0
    line = refused(cli, "resume", row["id"], "--data", tmp_path / "nowhere")
    assert line.startswith(f"klmtui: data folder {tmp_path / 'nowhere'} does not exist"), line
    r = cli("resume", row["id"], "--data", small_cifar, "--json", timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.json()[0]["status"] == "done"
    assert Store(cli.store).get("runs", row["id"])["config"]["data"] == str(small_cifar.resolve())

    # a detached submission exits 0 once queued
    r = cli("train", "1-1-1@8", *tiny, "--data", broken, "--detach")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith("t-")
    detached = r.stdout.strip()
    from core.jobs import wait_exited

    store = Store(cli.store)  # this test's own runner: it fails by itself, and exits before the test ends
    wait_for(lambda: store.get("runs", detached)["status"] == "failed", 120, "the detached run to fail")
    assert wait_exited(store, [detached]) == [] and runners_of(detached) == []


def test_bench_and_resume_on_a_device_that_is_down_exit_1(cli):
    r = cli("device", "add", "dead", "--host", "127.0.0.1", "--port", "1", "--user", "me")
    assert r.returncode == 0, r.stderr
    r = cli("bench", "1-1-1@8", "--device", "dead", "--json")
    line = assert_one_line_error(r, 1)
    (row,) = r.json()
    assert row["status"] == "failed"
    assert line == (f"klmtui: {row['id']} (1-1-1@8) failed: device dead: connection refused by 127.0.0.1:1 "
                    "(is sshd running?)")
    r = cli("resume", row["id"])
    line = assert_one_line_error(r, 1)
    assert line == (f"klmtui: benchmark {row['id']} failed: device dead: connection refused by 127.0.0.1:1 "
                    "(is sshd running?)")
    assert r.stdout == f"{row['id']}: failed\n"


# --------------------------------------------------------------------------- 2. 0 is a value


@pytest.mark.parametrize("option, message", [
    (["--warmup-runs", "0", "--runs", "0"], "warm-up runs (0) must be fewer than runs (0)"),
    (["--batch", "0"], "batch must be >= 1 (got 0)"),
    (["--runs", "0"], "warm-up runs (20) must be fewer than runs (0)"),
    (["--protocol", "adaptive", "--ci", "0"], "ci_rel must be between 0 and 1 (got 0.0)"),
    (["--protocol", "adaptive", "--min-batches", "0"], "min batches must be >= 1 (got 0)"),
])
def test_zero_is_a_value_for_bench_options(study, option, message):
    line = refused(study, "bench", "1-1-1@8", "--device", "local", *option)
    assert line == f"klmtui: bad benchmark protocol: {message}"


def test_warmup_runs_zero_is_used(cli):
    r = cli("bench", "1-1-1@8", "--device", "local", "--warmup-runs", "0", "--runs", "1", "--batches", "2",
            "--warmup-batches", "0", "--batch", "2", "--no-power", "--json", timeout=300)
    assert r.returncode == 0, r.stderr
    (row,) = r.json()
    assert row["status"] == "done" and row["batch"] == 2
    rec = Store(cli.store).get("benchmarks", row["id"])
    assert rec["options"]["warmup_runs"] == 0 and rec["options"]["warmup_batches"] == 0


# --------------------------------------------------------------------------- 3. liveness


def _sleeper(*marker: str):
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", *marker])


def _forge(cli, table: str, record_id: str, proc, pid_start) -> None:
    """A `running` record owned by `proc` (a real process), as a crashed job would leave it."""
    import socket

    store = Store(cli.store)
    base = {"id": record_id, "arch_id": "1-1-1@8", "arch": "1-1-1", "K": 1, "L": 1, "M": 1, "channels": 8,
            "genotype": "SNAS_mild", "status": "running", "pid": proc.pid, "pid_start": pid_start,
            "host": socket.gethostname(), "executor": "local", "epochs": 1, "epoch": 0, "created": "2026-01-01T00:00:00Z"}
    store.insert(table, base)


def _statuses(cli) -> dict:
    store = Store(cli.store)
    return {r["id"]: r["status"] for t in ("runs", "benchmarks") for r in store.all(t)}


def test_killed_and_pid_reused_jobs_show_interrupted_on_every_read_path(study):
    from core.jobs.process import start_time

    cli = study
    alive, killed, reused = _sleeper("t-0000000a"), _sleeper("b-0000000b"), _sleeper("t-0000000c", "b-0000000d")
    try:
        _forge(cli, "runs", "t-0000000a", alive, start_time(alive.pid))
        _forge(cli, "benchmarks", "b-0000000b", killed, start_time(killed.pid))
        # the pid of a live process whose command line even names the run, but that started later:
        # a reused pid, not the run's process
        _forge(cli, "runs", "t-0000000c", reused, start_time(reused.pid) - 1)
        _forge(cli, "benchmarks", "b-0000000d", reused, start_time(reused.pid) - 1)
        killed.kill()
        killed.wait()
        r = cli("status", "--json")
        assert r.returncode == 0, r.stderr
        (row,) = [x for x in r.json() if x["id"] == "1-1-1@8"]
        assert row["runs"]["by_status"] == {"running": 1, "interrupted": 1}
        assert row["benchmarks"]["by_status"] == {"interrupted": 2}
        assert _statuses(cli) == {"t-0000000a": "running", "b-0000000b": "interrupted",
                                  "t-0000000c": "interrupted", "b-0000000d": "interrupted"}
        err = Store(cli.store).get("runs", "t-0000000c")["error"]
        assert err == "the run's process vanished (killed, crashed or rebooted)"

        # pareto and the runs listing read through the same check
        alive.kill()
        alive.wait()
        r = cli("pareto", "--source", "thesis", "--json")
        assert r.returncode == 0, r.stderr
        assert _statuses(cli)["t-0000000a"] == "interrupted"
    finally:
        for proc in (alive, killed, reused):
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_training_run_killed_minus_9_is_interrupted_in_status(cli, small_cifar):
    import signal

    r = cli("train", "1-1-1@8", "--epochs", "50", "--train-subset", "120", "--test-subset", "20",
            "--batch-size", "10", "--data", small_cifar, "--detach")
    assert r.returncode == 0, r.stderr
    run_id = r.stdout.strip()
    store = Store(cli.store)
    rec = wait_for(lambda: (lambda x: x if x.get("pid") and x.get("pid_start") else None)(store.get("runs", run_id)),
                   60, "the run's pid and start time")
    os.kill(rec["pid"], signal.SIGKILL)
    wait_for(lambda: not Path(f"/proc/{rec['pid']}").exists() or
             Path(f"/proc/{rec['pid']}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z", 30, "the kill")
    r = cli("status", "--json")
    assert r.returncode == 0, r.stderr
    (row,) = [x for x in r.json() if x["id"] == "1-1-1@8"]
    assert row["runs"]["by_status"] == {"interrupted": 1}


# --------------------------------------------------------------------------- 6. limits at submit

LIMITS = [
    (["train", "20000-1-1@8"], "klmtui: K must be <= 64 in 20000-1-1 (got 20000)"),
    (["train", "1-70-1@8"], "klmtui: L must be <= 64 in 1-70-1 (got 70)"),
    (["train", "1-1-1@9999"], "klmtui: initial channels must be <= 512 (got 9999)"),
    (["train", "1-1-1@" + "9" * 5000],
     "klmtui: architecture '1-1-1@" + "9" * 53 + "... (5008 characters) "
     "is out of range: K, L, M must be <= 64, channels <= 512"),
    (["train", "1-1-1@8", "--lr", "nan"], "klmtui: lr must be a finite number (got nan)"),
    (["train", "1-1-1@8", "--lr", "inf"], "klmtui: lr must be a finite number (got inf)"),
    (["train", "1-1-1@8", "--lr", "-0.1"], "klmtui: lr must be > 0, weight decay >= 0, grad clip > 0 and drop path in [0, 1)"),
    (["train", "1-1-1@8", "--lr", "11"], "klmtui: lr must be in (0, 10] (got 11)"),
    (["train", "1-1-1@8", "--batch-size", "1"], "klmtui: batch size must be in 2..4096 (got 1)"),
    (["train", "1-1-1@8", "--train-subset", "1"], "klmtui: train subset must be >= 10, one image per class (got 1)"),
    (["train", "1-1-1@8", "--test-subset", "9"], "klmtui: test subset must be >= 10, one image per class (got 9)"),
    (["train", "1-1-1@8", "--train-subset", "9" * 30], "klmtui: train subset must be in 10..1000000 (got a 30-digit number)"),
    (["train", "1-1-1@8", "--seed", "-1"], "klmtui: seed must be in 0..2147483647 (got -1)"),
    (["train", "1-1-1@8", "--seed", "4294967296"], "klmtui: seed must be in 0..2147483647 (got 4294967296)"),
    (["train", "1-1-1@8", "--seeds", "0"], "klmtui: --seeds must be in 1..100 (got 0)"),
    (["train", "1-1-1@8", "--seeds", "101"], "klmtui: --seeds must be in 1..100 (got 101)"),
    (["bench", "1-1-1@8", "--device", "local", "--batch", "99999"], "klmtui: batch must be in 1..4096 (got 99999)"),
    (["bench", "1-1-1@8", "--device", "local", "--threads", "9" * 20],
     "klmtui: threads must be in 0..1024 (got a 20-digit number)"),
    (["bench", "1-1-1@8", "--device", "local", "--protocol", "adaptive", "--ci", "nan"],
     "klmtui: bad benchmark protocol: ci_rel must be between 0 and 1 (got nan)"),
    (["bench", "70-1-1@8", "--device", "local"], "klmtui: K must be <= 64 in 70-1-1 (got 70)"),
]


@pytest.mark.parametrize("args, message", LIMITS, ids=[" ".join(a)[:40] for a, _ in LIMITS])
def test_limits_at_submit_one_line_exit_2_store_untouched(study, args, message):
    assert refused(study, *args) == message


# --------------------------------------------------------------------------- 5. the store


def test_symlinked_store_writes_its_target(cli, tmp_path):
    elsewhere = tmp_path / "data" / "study.json"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(b"")
    cli.store.symlink_to(elsewhere)
    r = cli("init")
    assert r.returncode == 0, r.stderr
    csv_file = tmp_path / "mine.csv"
    csv_file.write_text("K,L,M,channels,accuracy,params_m,latency_s,power_w\n6,6,6,36,97,2.7,1.8,4.7\n")
    r = cli("import-results", csv_file, "--source", "mine")
    assert r.returncode == 0, r.stderr
    assert cli.store.is_symlink() and cli.store.resolve() == elsewhere.resolve()
    target = Store(elsewhere)  # the target got both writes, and the source's file sits beside it
    assert len(target.all("results")) == 54 and [r["id"] for r in target.all("sources")] == ["mine"]
    assert [p.name for p in (elsewhere.parent / "study.sources").iterdir()] == [target.get("sources", "mine")["file"]]
    from core.study import source_rows

    assert [r["arch_id"] for r in source_rows(target, "mine")] == ["6-6-6@36"]
    assert (elsewhere.parent / "study.json.lock").exists()  # the target is what is locked
    assert not list(tmp_path.glob(".runs.json.*.tmp")) and not list(elsewhere.parent.glob(".study.json.*.tmp"))


def _meta_line(initialised: bytes) -> str:
    return json.dumps(json.loads(initialised)["_meta"])


def _hostile(initialised: bytes) -> dict[str, str]:
    meta = _meta_line(initialised)
    run = '"id": "t-1", "arch_id": "1-1-1@8", "status": "done"'
    files = {
        "deep": '{"_meta": %s, "runs": {"1": {%s, "x": %s%s}}}' % (meta, run, "[" * 5000, "]" * 5000),
        "deep-but-parses": '{"_meta": %s, "runs": {"1": {%s, "x": %s%s}}}' % (meta, run, "[" * 500, "]" * 500),
        "nan": '{"_meta": %s, "runs": {"1": {%s, "accuracy": NaN}}}' % (meta, run),
        "overflow": '{"_meta": %s, "runs": {"1": {%s, "accuracy": 1e999}}}' % (meta, run),
        "int-5000-digits": '{"_meta": %s, "runs": {"1": {%s, "epoch": %s}}}' % (meta, run, "9" * 5000),
        "int-50-digits": '{"_meta": %s, "runs": {"1": {%s, "epoch": %s}}}' % (meta, run, "9" * 50),
        "wrong-shape": '{"_meta": %s, "runs": {"1": {%s, "config": [1, 2]}}}' % (meta, run),
        "table-a-list": '{"_meta": %s, "runs": []}' % meta,
        "missing-key": '{"_meta": %s, "runs": {"1": {"id": "t-1", "status": "done"}}}' % meta,
        "bad-status": '{"_meta": %s, "runs": {"1": {"id": "t-1", "arch_id": "1-1-1@8", "status": "weird"}}}' % meta,
        "accuracy-101": ('{"_meta": %s, "results": {"1": {"id": "x:1", "source": "x", "arch_id": "1-1-1@8", "K": 1, '
                         '"L": 1, "M": 1, "channels": 8, "accuracy": 101}}}' % meta),
        "K-as-text": ('{"_meta": %s, "results": {"1": {"id": "x:1", "source": "x", "arch_id": "1-1-1@8", "K": "1", '
                      '"L": 1, "M": 1, "channels": 8}}}' % meta),
    }
    return files


HOSTILE_MESSAGES = {
    "deep": "is nested too deeply to be a klmtui store",
    "deep-but-parses": "has a bad record 't-1' in table 'runs': x is nested deeper than 32 levels",
    "nan": "holds a number klmtui refuses (NaN is not a JSON number)",
    "overflow": "has a bad record 't-1' in table 'runs': accuracy inf is not a finite number",
    "int-5000-digits": "holds a number klmtui refuses (Exceeds the limit (4300 digits) for integer string conversion)",
    "int-50-digits": "has a bad record 't-1' in table 'runs': epoch 9999999999999999999999999999999999999999... "
                     "(50 characters) is out of range 0..100000",
    "wrong-shape": "has a bad record 't-1' in table 'runs': config [1, 2] is not an object",
    "table-a-list": "is JSON but not a TinyDB/klmtui store",
    "missing-key": "has a runs record 't-1' without arch_id; the file is left untouched; fix or remove it",
    "bad-status": "has a bad record 't-1' in table 'runs': status 'weird' is not one of pending, queued, running, "
                  "done, failed, cancelled, interrupted",
    "accuracy-101": "has a bad record 'x:1' in table 'results': accuracy 101 is out of range [0, 100]",
    "K-as-text": "has a bad record 'x:1' in table 'results': K '1' is not a whole number",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_MESSAGES))
def test_hostile_store_file_is_one_line_exit_2_untouched(cli, initialised, tmp_path, kind):
    cli.store.write_text(_hostile(initialised)[kind])
    csv_file = tmp_path / "ok.csv"
    csv_file.write_text("K,L,M,channels,accuracy,params_m,latency_s,power_w\n6,6,6,36,97,2.7,1.8,4.7\n")
    for args in (["status", "--json"], ["pareto"], ["import-results", csv_file, "--source", "ok"]):
        line = refused(cli, *args)
        assert line.startswith(f"klmtui: {cli.store} {HOSTILE_MESSAGES[kind]}"), (args, line)


def test_non_finite_and_out_of_range_values_are_refused_on_write(tmp_path):
    from core.store import StoreError

    store = Store(tmp_path / "runs.json")
    store.insert("runs", {"id": "t-1", "arch_id": "1-1-1@8", "status": "running"})
    before = store.path.read_bytes()
    for fields, message in [
        ({"accuracy": float("nan")}, "accuracy nan is not a finite number"),
        ({"accuracy": 101.0}, "accuracy 101.0 is out of range [0, 100]"),
        ({"latency_s": -1}, "latency_s -1 is out of range (0, 1e+06]"),
        ({"note": float("inf")}, "note inf is not a finite number"),
        ({"config": {"lr": float("nan")}}, "config holds a NaN or infinite number"),
        ({"status": "weird"}, "status 'weird' is not one of pending, queued, running, done, failed, cancelled, "
                              "interrupted"),
        ({"epoch": 10**40}, "epoch 1" + "0" * 39 + "... (41 characters) is out of range 0..100000"),
    ]:
        with pytest.raises(StoreError) as err:
            store.update("runs", "t-1", **fields)
        assert str(err.value) == f"refused to write runs record 't-1': {message}"
        assert store.path.read_bytes() == before
    with pytest.raises(StoreError):
        store.insert("results", {"id": "x:1", "source": "x", "power_w": float("-inf")})
    assert store.path.read_bytes() == before


def test_one_view_is_one_version_of_the_file_under_concurrent_writes(tmp_path):
    """Readers of several tables (the TUI's snapshot) never mix two versions of the file."""
    import subprocess
    import sys

    from klmtui.services import Services

    path = tmp_path / "runs.json"
    store = Store(path)
    with store.transaction() as tx:
        tx.insert("runs", {"id": "t-1", "arch_id": "1-1-1@8", "status": "running", "epoch": 0})
        tx.insert("benchmarks", {"id": "b-1", "arch_id": "1-1-1@8", "status": "running", "batch": 1})
    writer = subprocess.Popen([sys.executable, "-c", (
        "import sys; from core.store import Store\n"
        "s = Store(sys.argv[1])\n"
        "for i in range(1, 400):\n"
        "    with s.transaction() as tx:\n"
        "        tx.update('runs', 't-1', epoch=i); tx.update('benchmarks', 'b-1', batch=i)\n"), str(path)],
        cwd=Path(__file__).resolve().parents[1])
    services = Services(path)
    seen = set()
    try:
        while writer.poll() is None:
            snap = services.snapshot()
            assert snap.error is None, snap.error
            (run,), (bench,) = snap.table("runs"), snap.table("benchmarks")
            assert run["epoch"] == bench["batch"] or (run["epoch"], bench["batch"]) == (0, 1), (run, bench)
            seen.add(run["epoch"])
    finally:
        writer.wait(60)
    assert writer.returncode == 0
    assert len(seen) > 3  # the reader really saw several versions


# --------------------------------------------------------------------------- 7. reference sources, values

HEADER = "K,L,M,channels,accuracy,params_m,latency_s,power_w"


@pytest.mark.parametrize("body, message", [
    ("6,6,6,36,101,2.7,1.8,4.7", "line 2: accuracy 101 is out of range (must be in [0, 100])"),
    ("6,6,6,36,-0.5,2.7,1.8,4.7", "line 2: accuracy -0.5 is out of range (must be in [0, 100])"),
    ("6,6,6,36,97,2.7,-1,4.7", "line 2: latency_s -1 is out of range (must be > 0)"),
    ("6,6,6,36,97,2.7,1.8,0", "line 2: power_w 0 is out of range (must be > 0)"),
    ("6,6,6,36,97,0,1.8,4.7", "line 2: params_m 0 is out of range (must be > 0)"),
    ("6,6,6,36,nan,2.7,1.8,4.7", "line 2: accuracy 'nan' is not a finite number"),
    ("6,6,6,36,97,2.7,1e999,4.7", "line 2: latency_s '1e999' is not a finite number"),
    ("6,6,%s,36,97,2.7,1.8,4.7" % ("9" * 40), "line 2: M '%s' is not a whole number (at most 7 digits)" % ("9" * 40)),
    ("70,6,6,36,97,2.7,1.8,4.7", "line 2: K must be <= 64 in 70-6-6 (got 70)"),
])
def test_import_values_validated(study, tmp_path, body, message):
    line, csv_file = _refused_csv(study, tmp_path, f"{HEADER}\n{body}\n")
    assert line == f"klmtui: {csv_file}: 1 bad row(s), nothing imported: {message}"


def _refused_csv(study, tmp_path, text: str) -> tuple[str, Path]:
    csv_file = tmp_path / "bad.csv"
    csv_file.write_text(text)
    return refused(study, "import-results", csv_file, "--source", "mine"), csv_file


def test_csv_fields_are_bounded(study, tmp_path):
    line, csv_file = _refused_csv(study, tmp_path, f"{HEADER},note\n6,6,6,36,97,2.7,1.8,4.7,{'x' * 5000}\n")
    assert line == f"klmtui: {csv_file}: 1 bad row(s), nothing imported: line 2: note has 5000 characters (at most 4096)"
    line, csv_file = _refused_csv(study, tmp_path, f"{HEADER},note\n6,6,6,36,97,2.7,1.8,4.7,{'x' * 200_000}\n")
    assert line == f"klmtui: {csv_file}: after line 1: field larger than field limit (131072); nothing imported"


def test_reference_sources_are_read_only(study, tmp_path):
    csv_file = tmp_path / "mine.csv"
    csv_file.write_text(f"{HEADER}\n6,6,6,36,99,2.7,1.8,4.7\n")
    line = refused(study, "import-results", csv_file, "--source", "thesis")
    assert line == ("klmtui: source 'thesis' is a reference source and read-only: import your figures under "
                    "another name (e.g. --source thesis-mine)")
    line = refused(study, "import-results", csv_file, "--source", "thesis", "--replace")
    assert "read-only" in line
    # a source whose rows are marked reference is read-only too
    Store(study.store).upsert("results", {**Store(study.store).get("results", "thesis:6-6-6@36"), "id": "snas:6-6-6@36",
                                          "source": "snas", "reference": True})
    assert "source 'snas' is a reference source" in refused(study, "import-results", csv_file, "--source", "snas")
    r = study("import-results", csv_file, "--source", "thesis-mine")
    assert r.returncode == 0, r.stderr


def test_failed_benchmark_makes_no_measured_device_source(study):
    assert study("device", "add", "dead", "--host", "127.0.0.1", "--port", "1", "--user", "me").returncode == 0
    assert study("bench", "1-1-1@8", "--device", "dead").returncode == 1
    line = refused(study, "pareto", "--source", "measured:dead")
    assert line.startswith("klmtui: source 'measured:dead' has no results in ")
    assert line.endswith("; sources: thesis, measured")


# --------------------------------------------------------------------------- 8. honest aggregation


def _done_run(run_id: str, seed: int, epochs: int, accuracy: float, **config) -> dict:
    cfg = {"profile": "paper", "epochs": epochs, "batch_size": 10, "lr": 0.025, "train_subset": 120,
           "test_subset": 20, "data": "/data/cifar", "seed": seed, **config}
    return {"id": run_id, "arch_id": "1-1-1@8", "arch": "1-1-1", "K": 1, "L": 1, "M": 1, "channels": 8,
            "genotype": "SNAS_mild", "seed": seed, "status": "done", "epochs": epochs, "epoch": epochs,
            "accuracy": accuracy, "profile": "paper", "config": cfg, "finished": f"2026-01-0{run_id[-1]}T00:00:00Z"}


def test_accuracy_is_over_one_recipe_and_distinct_seeds(study):
    store = Store(study.store)
    with store.transaction() as tx:
        tx.insert("runs", _done_run("t-00000001", 0, 1, 10.0))  # 1 epoch
        tx.insert("runs", _done_run("t-00000002", 0, 2, 20.0))  # 2 epochs
        tx.insert("runs", _done_run("t-00000003", 0, 3, 30.0))  # 3 epochs, seed 0
        tx.insert("runs", _done_run("t-00000004", 1, 3, 32.0))  # 3 epochs, seed 1
        tx.insert("runs", _done_run("t-00000005", 1, 3, 34.0))  # seed 1 again: counts once (the latest)
        tx.insert("runs", _done_run("t-00000006", 2, 3, 99.0, lr=0.05))  # another lr: another recipe
    r = study("status", "--json")
    assert r.returncode == 0, r.stderr
    (row,) = [x for x in r.json() if x["id"] == "1-1-1@8"]
    assert row["accuracy"] == 32.0 and row["accuracy_seeds"] == 2  # mean of 30 and 34, not of all six
    assert row["accuracy_std"] == pytest.approx(2.8284271247)
    assert row["accuracy_text"] == "32.00+-2.83 (custom x2)"  # a 3-epoch subset run is not `paper`
    assert row["best_accuracy"] == 99.0
    assert row["results"]["measured"]["accuracy"] == 32.0
    r = study("status")
    assert "32.00+-2.83 (custom x2)" in r.stdout
    r = study("pareto", "--source", "measured", "--json", "--objective", "accuracy:max", "--objective", "params_m:min")
    assert r.returncode == 0, r.stderr
    assert [x["accuracy"] for x in r.json()] == [32.0]


@pytest.mark.slow
def test_training_again_takes_the_next_unused_seed_and_an_honest_label(cli, small_cifar):
    tiny = ["--epochs", "1", "--train-subset", "20", "--test-subset", "10", "--batch-size", "10", "--data", small_cifar]
    first = cli("train", "1-1-1@8", *tiny, "--json", timeout=300)
    assert first.returncode == 0, first.stderr
    second = cli("train", "1-1-1@8", *tiny, "--json", timeout=300)
    assert second.returncode == 0, second.stderr
    assert [first.json()[0]["seed"], second.json()[0]["seed"]] == [0, 1]  # not seed 0 twice
    store = Store(cli.store)
    records = [store.get("runs", x.json()[0]["id"]) for x in (first, second)]
    assert {r["profile"] for r in records} == {"custom"}  # `paper` settings on a 20-image subset are not paper
    # 9. the resolved data folder is recorded whatever its origin
    assert {r["config"]["data"] for r in records} == {str(small_cifar.resolve())}
    r = cli("status", "--json")
    (row,) = [x for x in r.json() if x["id"] == "1-1-1@8"]
    assert row["accuracy_seeds"] == 2 and row["accuracy_text"].endswith("(custom x2)")
    # an explicit seed is taken as given
    third = cli("train", "1-1-1@8", *tiny, "--seed", "0", "--detach")
    assert third.returncode == 0, third.stderr
    assert store.get("runs", third.stdout.strip())["seed"] == 0


# --------------------------------------------------------------------------- 4. a full disk (tests/fixtures/disk.py)


@pytest.mark.slow
def test_full_disk_fails_the_run_with_no_space_and_keeps_the_last_two_checkpoints(cli, small_cifar, small_disk):
    import signal

    from core.train import load_checkpoint

    cli.store = small_disk / "runs.json"
    r = cli("train", "1-1-1@8", "--epochs", "500", "--train-subset", "40", "--test-subset", "10",
            "--batch-size", "10", "--data", small_cifar, "--detach")
    assert r.returncode == 0, r.stderr
    run_id = r.stdout.strip()
    run_dir = small_disk / "runs" / run_id
    store = Store(cli.store)
    wait_for(lambda: (store.get("runs", run_id).get("epoch") or 0) >= 2, 300, "two epochs")
    assert (run_dir / "checkpoint.prev.pt").exists()

    # the disk fills: the run cannot even write its record; it says so once a write succeeds again
    filler = fill(small_disk)
    wait_for(lambda: (run_dir / ".no-space").exists(), 120, "the run to meet the full disk")
    assert store.get("runs", run_id)["status"] == "running"  # nothing could be written yet
    assert not list(small_disk.rglob("*.tmp")), list(small_disk.rglob("*.tmp"))  # no partial temp files
    filler.unlink()
    rec = wait_for(lambda: (lambda x: x if x["status"] != "running" else None)(store.get("runs", run_id)),
                   60, "the run to record its failure")
    assert rec["status"] == "failed"
    assert rec["error"] in (f"no space left on device ({run_dir})", f"no space left on device ({small_disk})"), rec
    assert not (run_dir / ".no-space").exists()
    epoch = load_checkpoint(run_dir / "checkpoint.pt")["epoch"]
    prev = load_checkpoint(run_dir / "checkpoint.prev.pt")["epoch"]
    assert prev in (epoch - 1, epoch)  # epoch: the disk filled between keeping the old one and writing the new

    # a torn newest checkpoint: resume continues from the one before, with a warning
    torn = (run_dir / "checkpoint.pt").read_bytes()
    (run_dir / "checkpoint.pt").write_bytes(torn[: len(torn) // 2])
    r = cli("resume", run_id, "--detach")
    assert r.returncode == 0, r.stderr
    assert r.stderr.startswith(f"klmtui: warning: checkpoint {run_dir / 'checkpoint.pt'} is unreadable"), r.stderr
    assert r.stderr.rstrip().endswith(f"resuming from the one before, {run_dir / 'checkpoint.prev.pt'} (epoch {prev})")
    wait_for(lambda: f"resumed 1-1-1@8 from {run_dir / 'checkpoint.prev.pt'} after epoch {prev}"
             in (run_dir / "log.txt").read_text(), 120, "the resumed run")

    # full again, and the process dies before the disk has room: `refresh` (here: status) says why
    rec = wait_for(lambda: (lambda x: x if x.get("pid") and x["status"] == "running" else None)(store.get("runs", run_id)),
                   60, "the resumed run's pid")
    filler = fill(small_disk)
    wait_for(lambda: (run_dir / ".no-space").exists(), 120, "the run to meet the full disk again")
    os.kill(rec["pid"], signal.SIGKILL)
    wait_for(lambda: not Path(f"/proc/{rec['pid']}").exists() or
             Path(f"/proc/{rec['pid']}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z", 30, "the kill")
    filler.unlink()
    r = cli("status", "--json")
    assert r.returncode == 0, r.stderr
    rec = store.get("runs", run_id)
    assert (rec["status"], rec["error"]) == ("failed", f"no space left on device ({run_dir})")


# --------------------------------------------------------------------------- 10. scale (speed is in bench/store_scale.py)


def test_fast_front_is_the_pairwise_front():
    """The non-dominated filter that does not compare every pair gives exactly the pairwise answer (ties too)."""
    import random

    from core.pareto import DEFAULT_OBJECTIVES, dominates, pareto_front

    rnd = random.Random(1)
    for _ in range(40):
        rows = [{"arch_id": str(i), "accuracy": rnd.choice([rnd.uniform(90, 98), 95.0]),
                 "params_m": rnd.choice([1.0, 2.0, rnd.uniform(0, 3)]), "latency_s": rnd.randint(1, 5),
                 "power_w": rnd.randint(1, 3)} for i in range(rnd.randint(0, 200))]
        points = [[r[o.name] for o in DEFAULT_OBJECTIVES] for r in rows]
        pairwise = [not any(j != i and dominates(points[j], points[i], DEFAULT_OBJECTIVES) for j in range(len(rows)))
                    for i in range(len(rows))]
        assert [r["on_front"] for r in pareto_front(rows).rows] == pairwise


def test_counting_with_repeated_cells_matches_cell_by_cell():
    from core.arch import Arch
    from core.counting import count_macs, count_params
    from core.models import build_network

    arch = Arch(5, 3, 7, 8)  # blocks long enough for the repeated-cell shortcut
    model = build_network(arch, num_classes=10, auxiliary=False)
    assert count_params(arch) == sum(p.numel() for p in model.parameters())
    assert count_macs(Arch(64, 1, 1, 8)) > count_macs(Arch(63, 1, 1, 8))
