"""Issue 9 end to end: board power by rail through `klmtui bench --device local`, `--keep-none` and
`--like-thesis` change what is timed, and nothing waits on sudo.

tegrastats is tests/fake_tegrastats.py replaying real lines (tests/fixtures/tegrastats_families.txt,
sources named there); `sudo` is a stand-in on PATH that, like the real one, fails at once under `-n`
when it would need a password, and otherwise waits (for a password that never comes).
"""

import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from core.store import Store
from remote.agent.tegrastats import parse, select_power
from remote.local import LocalTransport
from tests.fake_tegrastats import install, read_fixture
from tests.fixtures.cli import assert_one_line_error
from tests.fixtures.paths import shared_file

FAMILIES = Path(__file__).resolve().parent / "fixtures" / "tegrastats_families.txt"
SMALL = ["--batch", "4", "--runs", "3", "--batches", "4", "--warmup-runs", "1", "--warmup-batches", "1", "--threads", "1"]
AGENT_SMALL = ["--K", "1", "--L", "1", "--M", "1", "--channels", "8", *SMALL]
FAKE_SUDO = """#!/bin/sh
# A stand-in for sudo on a board where the user needs a password.
for a in "$@"; do
  if [ "$a" = "-n" ]; then echo "sudo: a password is required" >&2; exit 1; fi
done
sleep 600  # would ask for a password on the terminal
"""


def replay(cli, tmp_path, records):
    bin_dir = install(tmp_path / "bin", fixture=FAMILIES, records=records)
    cli.env["PATH"] = f"{bin_dir}{os.pathsep}{cli.env['PATH']}"


@pytest.mark.parametrize("record, rail, want_w, source", [
    ("thor_vin", None, 26.686, "VIN"),                  # Thor: the module input, not VIN + its parts (45.777)
    ("agx_orin_jp72", None, 13.907, "sum"),             # JetPack 7.2 (three values per rail), no input rail
])
def test_local_benchmark_reports_exactly_the_replayed_rail(cli, tmp_path, record, rail, want_w, source):
    replay(cli, tmp_path, [record])
    extra = ["--power-rail", rail] if rail else []
    r = cli("bench", "1-1-1@8", "--device", "local", *SMALL, *extra, "--json")
    assert r.returncode == 0, r.stderr
    [row] = r.json()
    assert row["status"] == "done" and row["power_w"] == pytest.approx(want_w, abs=1e-9)
    assert row["power_rail"] == (rail or "input") and row["power_source"] == "tegrastats"
    assert row["power_pass"] == "separate"
    rails = {name: mw / 1000 for name, mw in __import__("remote.agent.tegrastats", fromlist=["parse"]).parse(
        dict((n, l) for n, _, l in read_fixture(FAMILIES))[record])["rails"].items()}
    assert row["power_rails_w"] == pytest.approx(rails)  # every rail, in W
    stored = Store(cli.store).get("benchmarks", row["id"])
    assert stored["power_stats"]["power_rail_used"] == source
    assert stored["energy_j"] == row["energy_j"] and row["energy_j"] > 0
    assert select_power(parse(dict((n, l) for n, _, l in read_fixture(FAMILIES))[record])["rails"], "gpu")[0] \
        == pytest.approx(row["power_rails_w"][dict(thor_vin="VDD_GPU", agx_orin_jp72="VDD_GPU_SOC")[record]] * 1000)
    assert row["like_thesis"] is False and stored["none_edges"] == 0  # the default is not the thesis' measurement
    assert row["power_overhead_pct"] is not None


def test_a_rail_the_board_lacks_is_power_unavailable_with_the_boards_rails(cli, tmp_path):
    replay(cli, tmp_path, ["thor_vin"])
    r = cli("bench", "1-1-1@8", "--device", "local", *SMALL, "--power-rail", "VDD_IN", "--json")
    assert r.returncode == 0, r.stderr
    [row] = r.json()
    assert row["power_w"] is None
    assert "no rail VDD_IN on this board (rails: VDD_CPU_SOC_MSS, VDD_GPU, VIN, VIN_SYS_5V0)" in row["power_reason"]


@pytest.mark.parametrize("args", [["--power-rail", "VDD IN"], ["--power-rail", "gpu;reboot"], ["--power-rail", ""],
                                  ["--power-source", "magic"], ["--power-pass", "twice"]])
def test_bad_power_options_are_one_line_exit_2(cli, args):
    line = assert_one_line_error(cli("bench", "1-1-1@8", "--device", "local", *args))
    assert "power" in line.lower()
    assert not Store(cli.store).exists() or not Store(cli.store).all("benchmarks")


def fake_sudo(tmp_path):
    bin_dir = tmp_path / "sudo-bin"
    bin_dir.mkdir()
    (bin_dir / "sudo").write_text(FAKE_SUDO)
    (bin_dir / "sudo").chmod(0o755)
    return bin_dir


def test_lock_clocks_never_waits_for_a_password(cli, tmp_path):
    cli.env["PATH"] = f"{fake_sudo(tmp_path)}{os.pathsep}{cli.env['PATH']}"
    started = time.monotonic()
    r = cli("bench", "1-1-1@8", "--device", "local", *SMALL, "--lock-clocks", timeout=120)
    assert time.monotonic() - started < 100
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    # one line for the failure (a "machine is busy" warning may precede it on a loaded machine)
    failure = [l for l in r.stderr.splitlines() if l.startswith("klmtui:")]
    assert len(failure) == 1 and "sudo -n jetson_clocks" in failure[0] and "password is required" in failure[0]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return Path(LocalTransport({"name": "m", "workdir": str(tmp_path_factory.mktemp("device"))}).prepare())


def run_agent(bundle, *args, env=None, timeout=180):
    env = dict(env or os.environ)
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([sys.executable, "-u", "-m", "remote.agent.main", *AGENT_SMALL, *args], cwd=bundle,
                          env=env, capture_output=True, text=True, timeout=timeout)
    return proc, [json.loads(line) for line in proc.stdout.splitlines()]


def test_sudo_tegrastats_fails_at_once_instead_of_hanging(bundle, tmp_path):
    env = dict(os.environ, PATH=f"{fake_sudo(tmp_path)}{os.pathsep}{os.environ['PATH']}")
    started = time.monotonic()
    proc, events = run_agent(bundle, "--tegrastats", "sudo tegrastats", "--power-max-extra-s", "60", env=env)
    assert time.monotonic() - started < 50  # not the 60 s of waiting for samples, nor sudo's 600 s
    summary = events[-1]
    assert proc.returncode == 0 and summary["event"] == "summary", proc.stderr
    assert summary["power_w"] is None and "password is required" in summary["power_reason"]
    assert summary["power"]["command"].startswith("sudo -n tegrastats")


def count_none_runs(model, torch):
    from core.ops import Zero

    calls = []
    for m in model.modules():
        if isinstance(m, Zero):
            m.register_forward_hook(lambda *a: calls.append(1))
    with torch.no_grad():
        model(torch.zeros(1, 3, 32, 32))
    return len(calls)


def test_keep_none_builds_and_runs_the_120_none_edges_of_the_default_id():
    import torch

    from remote.agent.main import build_model, build_parser

    args = build_parser().parse_args(["--K", "6", "--L", "6", "--M", "6", "--channels", "36", "--keep-none"])
    model = build_model(torch, args, torch.device("cpu"))
    assert args.genotype_used == "SNAS_mild_edge_all"  # 6-6-6@36 is the compact SNAS_mild: its edge_all form
    assert count_none_runs(model, torch) == 120  # 18 normal x 6 + 2 reduction x 6, all computed
    args = build_parser().parse_args(["--K", "6", "--L", "6", "--M", "6", "--channels", "36"])
    assert count_none_runs(build_model(torch, args, torch.device("cpu")), torch) == 0


@pytest.mark.parametrize("genotype", ["SNAS_mild", "DARTS_V2"])
def test_keep_none_moves_trained_weights_to_the_edge_all_keys(tmp_path, genotype):
    """Weights of the compact form load into the edge_all form and give the very same outputs."""
    import torch

    from core.network import Network
    from remote.agent.main import build_model, build_parser

    torch.manual_seed(3)
    compact = Network(8, 10, 1, 1, 1, genotype, auxiliary=False).eval()
    for p in compact.parameters():
        p.data.normal_()
    path = tmp_path / "w.pt"
    torch.save(compact.state_dict(), path)
    args = build_parser().parse_args(["--K", "1", "--L", "1", "--M", "1", "--channels", "8", "--genotype", genotype,
                                      "--keep-none", "--weights", str(path)])
    full = build_model(torch, args, torch.device("cpu"))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(full(x)[0], compact(x)[0], atol=1e-5)
    assert count_none_runs(full, torch) == 3 * 6 + 2 * 6


def test_a_genotype_without_an_edge_all_form_is_refused_in_one_line():
    from core.genotypes import Genotype, edge_all_form

    twice = Genotype(normal=[("sep_conv_3x3", 0), ("skip_connect", 0)] * 4, normal_concat=[2, 3, 4, 5],
                     reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1)] * 4, reduce_concat=[2, 3, 4, 5])
    with pytest.raises(ValueError, match="reads state 0 twice"):
        edge_all_form(twice)


@pytest.fixture(scope="module")
def cifar_test_images(tmp_path_factory):
    """16 real CIFAR-10 test JPEGs (the first of the shared tarball: airplane), ImageFolder layout."""
    tarball = shared_file("data/cifar10-jpeg.tar.gz")
    dest = tmp_path_factory.mktemp("cifar16")
    taken = 0
    with tarfile.open(tarball) as tar:
        for member in tar:
            if member.isfile() and "/test/" in member.name and member.name.endswith(".jpg"):
                tar.extract(member, dest, filter="data")
                taken += 1
                if taken == 16:
                    break
    return dest / "cifar10-jpeg" / "test"


def test_like_thesis_from_the_cli_pushes_real_test_images_and_reports_the_gpu_rail(cli, tmp_path, cifar_test_images):
    replay(cli, tmp_path, ["thor_vin"])
    cli.env["KLMTUI_DATA"] = str(cifar_test_images.parent)  # the host's CIFAR-10 copy (ImageFolder layout)
    # thesis protocol: every run a fresh process (2 runs x 2 passes here), its DataLoader forked
    small = ["--batch", "4", "--runs", "2", "--batches", "4", "--warmup-runs", "1", "--warmup-batches", "1",
             "--threads", "1"]
    r = cli("bench", "1-1-1@8", "--device", "local", *small, "--like-thesis", "--json", timeout=600)
    assert r.returncode == 0, r.stderr
    [row] = r.json()
    assert row["power_rail"] == "gpu" and row["power_w"] == pytest.approx(3.561)  # Thor's VDD_GPU
    like = row["like_thesis"]
    assert like["images"].startswith("files:") and like["images"].endswith("(16 images)")
    assert like["none_edges_computed"] == 30 and like["genotype"] == "SNAS_mild_edge_all"
    assert like["cudnn_benchmark"] is True and like["dataloader"]["workers"] == 2
    assert "forward + loss + top-1/top-5" in like["timed"]
    assert like["fresh_process_per_run"] is True and like["processes"] == 4
    assert like["dataloader"]["start"] == "fork"
    record = Store(cli.store).get("benchmarks", row["id"])
    assert record["drop_none"] is False and record["like_thesis"] == like
    assert record["genotype_used"] == "SNAS_mild_edge_all" and record["none_edges"] == 30
    events = [json.loads(l) for l in (Store(cli.store).run_dir(row["id"]) / "events.jsonl").read_text().splitlines()]
    for name in ("latency", "power"):
        timed = [(e["run"], e["batch"]) for e in events if e["event"] == "latency" and e["pass"] == name
                 and not e.get("extra")]
        assert timed == [(run, batch) for run in range(2) for batch in range(4)], name  # every run, in order


def test_lock_clocks_stores_locks_and_restores_in_that_order(bundle, tmp_path):
    """With passwordless sudo: jetson_clocks --store FILE, jetson_clocks, then --restore FILE."""
    bin_dir = tmp_path / "ok-bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.txt"
    (bin_dir / "sudo").write_text('#!/bin/sh\n[ "$1" = "-n" ] || exit 9\nshift\nexec "$@"\n')
    (bin_dir / "jetson_clocks").write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    for name in ("sudo", "jetson_clocks"):
        (bin_dir / name).chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    proc, events = run_agent(bundle, "--lock-clocks", "--no-power", env=env)
    summary = events[-1]
    assert proc.returncode == 0 and summary["event"] == "summary", proc.stderr
    calls = log.read_text().splitlines()
    assert len(calls) == 3 and calls[0].startswith("--store ") and calls[1] == ""
    assert calls[2] == "--restore " + calls[0].split(" ", 1)[1]
    clocks = summary["clocks"]
    assert clocks["locked"] is True and clocks["restore_error"] is None
    assert {"before_latency", "after_lock", "after_latency", "after_restore"} <= set(clocks)
    assert set(clocks["before_latency"]) == {"nvpmodel", "jetson_clocks_active", "clocks_mhz"}


def test_an_overlong_tegrastats_line_is_read_in_bounded_pieces_and_counted_torn():
    from remote.agent.power import TegrastatsSampler
    from remote.agent.tegrastats import MAX_LINE

    line = dict((n, l) for n, _, l in read_fixture(FAMILIES))["thor_vin"]
    sampler = TegrastatsSampler("tegrastats")

    class Proc:
        stdout = __import__("io").StringIO("RAM 1/2MB " + "CPU [" * (3 * MAX_LINE) + "\n" + line + "\n")

    sampler._proc = Proc()
    sampler.measuring = True
    sampler._read()
    assert sampler.counts["lines"] == 2 and sampler.counts["skipped_torn"] == 1
    info, power_w, reason = sampler.result()
    assert power_w == 26.686 and info["power_rails_w"]["VIN"] == 26.686
