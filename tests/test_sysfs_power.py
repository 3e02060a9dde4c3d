"""The INA sysfs power sampler on temporary trees laid out like a Jetson's, and energy per batch.

Layouts as jetson-stats reads them (rbonghi/jetson_stats jtop/core/power.py): JetPack 4's
`ina3221x` iio driver (Nano: 6-0040/iio:device0, rail_name_N + in_powerN_input in mW) and JetPack
5+'s hwmon (Orin Nano: 1-0040/hwmon/hwmon3, inN_label + inN_input mV + currN_input mA; channel 7
is "sum of shunt voltages"; AGX Orin labels unconnected channels NC). Not run on hardware.
"""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from remote.agent.energy import integrate, summarize_energy
from remote.agent.sysfs_power import SysfsSampler, find_rails
from remote.local import LocalTransport

SMALL = ["--K", "1", "--L", "1", "--M", "1", "--channels", "8", "--batch", "8", "--runs", "7", "--batches", "4",
         "--warmup-runs", "1", "--warmup-batches", "1", "--threads", "1"]


def write(path: Path, text) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("%s\n" % text)


def jp4_nano_tree(root: Path, mw=(2003, 0, 320)) -> Path:
    dev = root / "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0"
    for k, (name, value) in enumerate(zip(("POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"), mw)):
        write(dev / f"rail_name_{k}", name)
        write(dev / f"in_power{k}_input", value)
        write(dev / f"in_voltage{k}_input", 5000)
        write(dev / f"in_current{k}_input", value // 5)
    return dev


def jp5_orin_tree(root: Path, mv_ma=((5000, 1000), (5000, 200), (5000, 300))) -> Path:
    mon = root / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"
    write(mon / "name", "ina3221")
    for k, (name, (mv, ma)) in enumerate(zip(("VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"), mv_ma), start=1):
        write(mon / f"in{k}_label", name)
        write(mon / f"in{k}_input", mv)
        write(mon / f"curr{k}_input", ma)
    write(mon / "in7_label", "sum of shunt voltages")
    write(mon / "in7_input", 42)
    write(mon / "curr7_input", 42)
    agx = root / "sys/bus/i2c/drivers/ina3221/1-0041/hwmon/hwmon4"  # an AGX Orin-style NC channel
    write(agx / "name", "ina3221")
    write(agx / "in1_label", "NC")
    write(agx / "in1_input", 1)
    write(agx / "curr1_input", 1)
    return mon


def one_sample(root: Path) -> dict:
    sampler = SysfsSampler(str(root))
    assert sampler.start()
    try:
        return sampler.sample()
    finally:
        sampler.stop()


def test_jetpack4_iio_layout_reads_the_rails_in_mw(tmp_path):
    jp4_nano_tree(tmp_path)
    rails = find_rails(str(tmp_path))
    assert sorted(rails) == ["POM_5V_CPU", "POM_5V_GPU", "POM_5V_IN"]
    rec = one_sample(tmp_path)
    assert rec["rails"] == {"POM_5V_IN": 2003, "POM_5V_GPU": 0, "POM_5V_CPU": 320}
    assert (rec["board_power_mw"], rec["board_power_source"]) == (2003, "POM_5V_IN")


def test_jetpack5_hwmon_layout_is_volts_times_amps_and_skips_nc_and_the_shunt_sum(tmp_path):
    jp5_orin_tree(tmp_path)
    rails = find_rails(str(tmp_path))
    assert sorted(rails) == ["VDD_CPU_GPU_CV", "VDD_IN", "VDD_SOC"]
    rec = one_sample(tmp_path)
    assert rec["rails"] == {"VDD_IN": 5000, "VDD_CPU_GPU_CV": 1000, "VDD_SOC": 1500}


def test_no_monitors_is_unavailable_with_a_reason(tmp_path):
    sampler = SysfsSampler(str(tmp_path))
    assert not sampler.start()
    info, power_w, reason = sampler.result()
    assert power_w is None and "no INA power monitors" in reason


def test_trapezoid_integral_by_hand():
    ts, mw = [0.0, 1.0, 2.0], [1000.0, 3000.0, 1000.0]
    # [0.5, 1.5]: p(0.5) = 2000, p(1) = 3000, p(1.5) = 2000 -> (2500 * 0.5 + 2500 * 0.5) mJ = 2.5 J
    assert integrate(ts, mw, 0.5, 1.5) == pytest.approx(2.5)
    assert integrate(ts, mw, 0.0, 2.0) == pytest.approx(4.0)
    assert integrate(ts, mw, 1.9, 2.1) is None  # not covered on both sides: no guess
    out = summarize_energy(ts, mw, [(0.0, 1.0), (1.0, 2.0), (1.5, 2.5)], batch=4)
    assert out["energy_j"] == pytest.approx(2.0 / 4) and out["energy_batches_uncovered"] == 1


class Writer:
    """Keeps changing one rail's power file in place (the sampler keeps it open and preads it)."""

    def __init__(self, path: Path):
        self.path = path
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        fd = os.open(self.path, os.O_WRONLY)
        try:
            k = 0
            while not self.stop.is_set():
                value = 3000 + (k * 37) % 4000  # a sawtooth between 3 W and 7 W
                os.pwrite(fd, b"%10d\n" % value, 0)
                k += 1
                time.sleep(0.003)
        finally:
            os.close(fd)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return Path(LocalTransport({"name": "sysfs", "workdir": str(tmp_path_factory.mktemp("device"))}).prepare())


def run_agent(bundle, *args, timeout=180):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-u", "-m", "remote.agent.main", *SMALL, *args], cwd=bundle, env=env,
                          capture_output=True, text=True, timeout=timeout)
    return proc, [json.loads(line) for line in proc.stdout.splitlines()]


def test_sysfs_benchmark_energy_is_the_hand_integral_of_the_samples(bundle, tmp_path):
    dev = jp4_nano_tree(tmp_path)
    (dev / "in_power0_input").write_text("%10d\n" % 3000)
    writer = Writer(dev / "in_power0_input")
    writer.thread.start()
    try:
        proc, events = run_agent(bundle, "--power-source", "auto", "--sysfs-root", str(tmp_path),
                                 "--sysfs-rate-hz", "200", "--power-events-hz", "200", "--tegrastats", "no-such-tool")
    finally:
        writer.stop.set()
        writer.thread.join()
    assert proc.returncode == 0, proc.stderr
    summary = events[-1]
    assert summary["event"] == "summary"
    assert (summary["power_source"], summary["power_pass"], summary["power_rail"]) == ("sysfs", "same", "input")
    assert set(summary["power_rails_w"]) == {"POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"}
    assert summary["power_rails_w"]["POM_5V_CPU"] == pytest.approx(0.320)
    assert 3.0 <= summary["power_w"] <= 7.0
    assert summary["power_overhead_pct"] is not None and "interleaved" in summary["power_overhead_method"]
    # one pass: no separate power pass, and the sampled blocks are the even runs (2, 4 and 6 here)
    assert not [e for e in events if e["event"] == "latency" and e["pass"] == "power"]

    samples = sorted((e["t_mono"], e["board_power_mw"]) for e in events if e["event"] == "power")
    t = np.array([s[0] for s in samples])
    p = np.array([s[1] for s in samples], dtype=float)
    assert len(set(p)) > 5  # the values really changed over time
    batches = [e for e in events if e["event"] == "latency" and not e["warmup"] and e["run"] % 2 == 0]
    assert len(batches) == 3 * 3
    by_hand = []
    for e in batches:
        t0, t1 = e["t0"], e["t1"]
        assert t1 - t0 == pytest.approx(e["seconds"])
        if t0 < t[0] or t1 > t[-1]:
            continue
        inside = (t > t0) & (t < t1)
        grid = np.concatenate([[t0], t[inside], [t1]])
        watts = np.interp(grid, t, p) / 1000.0
        by_hand.append(float(np.sum((watts[1:] + watts[:-1]) / 2 * np.diff(grid))) / 8)  # J per image
    assert len(by_hand) >= 7 and summary["energy"]["energy_batches"] == len(by_hand)
    assert summary["energy_j"] == pytest.approx(float(np.median(by_hand)), rel=1e-9)
    low, high = summary["energy_j_ci"]
    assert low <= summary["energy_j"] <= high
