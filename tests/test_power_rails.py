"""Every real tegrastats line (both fixture files) under every `--power-rail`, and the parser's limits.

The expected figures are worked out by hand from the lines (first value of each rail, mW):
`input` is the input rail (POM_5V_IN, VDD_IN, VIN) else the sum of all rails; `gpu` / `cpu` the
board's GPU / CPU rail (on Xavier NX and Orin Nano both are the shared VDD_CPU_GPU_CV); `sum` the
rails except the input rail.
"""

import time
from pathlib import Path

import pytest

from remote.agent.tegrastats import MAX_LINE, check_power_rail, parse, select_power
from tests.fake_tegrastats import read_fixture

FAMILIES = Path(__file__).resolve().parent / "fixtures" / "tegrastats_families.txt"

#        name: (input, gpu, cpu, sum)
EXPECTED = {
    # /work/shared/fixtures/tegrastats.txt
    "nano_jp461_root": (1750, 0, 366, 0 + 366),
    "nano_cores_off": (2003, 0, 320, 0 + 320),
    "tx2_user": (3140, 153, 536, 153 + 536 + 633 + 536 + 557),
    "xnx_jp4": (6140, 2706, 2706, 2706 + 1074),
    "xnx_jp512": (2763, 650, 650, 650 + 650),
    "orin_nano_root": (12479, 4667, 4667, 4667 + 2817),
    "orin_nano_user": (4824, 518, 518, 518 + 1475),
    # tests/fixtures/tegrastats_families.txt
    "tx1_l4t28": (None, None, None, None),
    "agx_orin_r36": (2412 + 1607 + 4707, 2412, 1607, 2412 + 1607 + 4707),
    "agx_orin_jp72": (5139 + 3268 + 5500, 5139, 3268, 5139 + 3268 + 5500),
    "agx_orin_jp72_cores_off": (2265 + 2643 + 4722, 2265, 2643, 2265 + 2643 + 4722),
    "thor_r38": (0 + 4165 + 4126, 0, 4165, 0 + 4165 + 4126),
    "thor_jp72": (4925 + 8710 + 6767, 4925, 8710, 4925 + 8710 + 6767),
    "thor_jp72_moving": (4925 + 7953 + 6667, 4925, 7953, 4925 + 7953 + 6667),
    "thor_vin": (26686, 3561, 7910, 3561 + 7910 + 7620),
}


@pytest.fixture(scope="module")
def all_records(tegrastats_fixture_path):
    records = read_fixture(tegrastats_fixture_path) + read_fixture(FAMILIES)
    assert {name for name, _, _ in records} == set(EXPECTED)
    return records


def test_every_real_line_gives_the_hand_computed_power_under_each_rail_choice(all_records):
    for name, stated, line in all_records:
        rec = parse(line)
        assert rec["torn"] is False, name
        assert rec["board_power_mw"] == stated == EXPECTED[name][0], name
        for choice, want in zip(("input", "gpu", "cpu", "sum"), EXPECTED[name]):
            got, source = select_power(rec["rails"], choice)
            assert got == want, (name, choice, source)
            if want is None:
                assert source  # the reason


def test_thor_vin_is_the_input_rail_not_summed_with_its_parts():
    line = dict((n, l) for n, _, l in read_fixture(FAMILIES))["thor_vin"]
    rec = parse(line)
    assert rec["board_power_source"] == "VIN"
    assert select_power(rec["rails"], "VIN_SYS_5V0") == (7620, "VIN_SYS_5V0")
    assert select_power(rec["rails"], "VDD_IN")[0] is None  # a rail this board does not have
    assert "rails: VDD_CPU_SOC_MSS, VDD_GPU, VIN, VIN_SYS_5V0" in select_power(rec["rails"], "VDD_IN")[1]


def test_jetpack72_three_values_and_two_value_temperatures():
    line = dict((n, l) for n, _, l in read_fixture(FAMILIES))["thor_jp72_moving"]
    rec = parse(line)
    assert rec["rails"]["VDD_CPU_SOC_MSS"] == 7953 and rec["rails_avg_mw"]["VDD_CPU_SOC_MSS"] == 8332
    assert rec["temps_c"]["cpu"] == pytest.approx(34.312)
    assert rec["gpu_freq_mhz"] == 314 and rec["gpu_load_pct"] is None  # Thor prints no GPU load
    assert len(rec["cpus"]) == 14


def test_l4t28_tx1_format_keeps_cpu_and_gpu_load():
    line = dict((n, l) for n, _, l in read_fixture(FAMILIES))["tx1_l4t28"]
    rec = parse(line)
    assert [c["load_pct"] for c in rec["cpus"]] == [17, 11, 65, 0]
    assert {c["freq_mhz"] for c in rec["cpus"]} == {1734}
    assert (rec["gpu_load_pct"], rec["gpu_freq_mhz"]) == (39, 76)
    assert (rec["emc_load_pct"], rec["emc_freq_mhz"]) == (1, 1600)
    assert rec["board_power_mw"] is None and rec["torn"] is False


def test_a_cut_three_value_rail_is_torn():
    line = dict((n, l) for n, _, l in read_fixture(FAMILIES))["agx_orin_jp72"]
    for cut in ("5500mW/5500mW/", "5500mW/5500", "5500mW/5500mW/55"):
        text = line[: line.rindex("5500mW/5500mW/5500mW")] + cut
        rec = parse(text)
        assert rec["torn"] or "VIN_SYS_5V0" not in rec["rails"], cut


def test_pathological_and_overlong_lines_are_linear_and_flagged():
    evil = "RAM 1/2MB " + "CPU [1%@2," * 10000  # ~100 KB, many `CPU [` and no `]`
    started = time.perf_counter()
    rec = parse(evil)
    assert time.perf_counter() - started < 2.0  # was 7.6 s (quadratic); milliseconds now
    assert rec["torn"] is True
    long_line = "RAM 1/2MB VDD_IN 5000mW/5000mW " + "x" * (MAX_LINE + 10) + " VDD_IN 9mW/9mW"
    assert parse(long_line)["torn"] is True


@pytest.mark.parametrize("good", ["input", "gpu", "cpu", "sum", "VDD_IN", "POM_5V_GPU", "VIN"])
def test_power_rail_names_accepted(good):
    assert check_power_rail(good) == good


@pytest.mark.parametrize("bad", ["", "VDD IN", "gpu;rm -rf", "5V", "x" * 100, None])
def test_bad_power_rail_names_are_one_clear_error(bad):
    with pytest.raises(ValueError, match="bad power rail"):
        check_power_rail(bad)
