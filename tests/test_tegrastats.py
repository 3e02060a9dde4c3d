"""The tegrastats parser against real lines from Nano, TX2, Xavier NX and Orin boards."""

import pytest

from remote.agent.tegrastats import parse
from tests.fake_tegrastats import read_fixture


@pytest.fixture(scope="module")
def records(tegrastats_fixture_path):
    found = read_fixture(tegrastats_fixture_path)
    assert len(found) >= 5
    return found


def test_every_fixture_line_parses_to_its_stated_board_power(records):
    for name, power, line in records:
        rec = parse(line)
        assert rec["board_power_mw"] == power, name
        assert rec["torn"] is False, name
        assert rec["ram_total_mb"] and rec["ram_used_mb"] <= rec["ram_total_mb"], name
        assert rec["temps_c"], name
        assert all(isinstance(v, int) for v in rec["rails"].values()), name


def test_fields_of_a_nano_line(records):
    rec = parse(dict((n, l) for n, _, l in records)["nano_cores_off"])
    assert (rec["ram_used_mb"], rec["ram_total_mb"]) == (1409, 3964)
    assert rec["rails"] == {"POM_5V_IN": 2003, "POM_5V_GPU": 0, "POM_5V_CPU": 320}
    assert rec["board_power_source"] == "POM_5V_IN"
    assert rec["temps_c"]["GPU"] == 30.5 and rec["temps_c"]["thermal"] == 31.25
    assert rec["cpus"][2] is None and rec["cpus"][3] is None  # cores "off"
    assert rec["cpus"][1] == {"load_pct": 67, "freq_mhz": 518}
    assert (rec["gpu_load_pct"], rec["gpu_freq_mhz"]) == (0, 76)


def test_jetpack5_mw_suffix_timestamp_and_bracketed_gpu_clock(records):
    rec = parse(dict((n, l) for n, _, l in records)["orin_nano_root"])
    assert rec["timestamp"] == "11-15-2024 08:38:09"
    assert (rec["gpu_load_pct"], rec["gpu_freq_mhz"]) == (63, 621)
    assert rec["rails"]["VDD_CPU_GPU_CV"] == 4667
    assert rec["temps_c"]["tj"] == pytest.approx(53.968)


def test_agx_xavier_rails_and_temperatures_share_names_but_stay_apart():
    line = ("RAM 2466/15817MB (lfb 3138x4MB) SWAP 0/7908MB (cached 0MB) CPU [2%@1190,1%@1190,0%@1190,"
            "0%@1190,off,off,off,off] EMC_FREQ 0%@2133 GR3D_FREQ 0%@1377 APE 150 MTS fg 0% bg 0% "
            "AO@30.5C GPU@30.5C Tdiode@33.5C PMIC@100C AUX@30C CPU@31.5C thermal@30.7C Tboard@31C "
            "GPU 463/463 CPU 311/311 SOC 1244/1244 CV 0/0 VDDRQ 155/155 SYS5V 2018/2018")
    rec = parse(line)
    assert rec["temps_c"]["GPU"] == 30.5 and rec["temps_c"]["CPU"] == 31.5
    assert rec["rails"] == {"GPU": 463, "CPU": 311, "SOC": 1244, "CV": 0, "VDDRQ": 155, "SYS5V": 2018}
    assert rec["board_power_mw"] == 463 + 311 + 1244 + 0 + 155 + 2018  # no input rail: the sum
    assert rec["board_power_source"] == "sum"


def test_agx_orin_sums_rails_and_skips_nc():
    line = ("12-11-2024 10:02:03 RAM 4470/30697MB (lfb 6035x4MB) SWAP 0/15348MB (cached 0MB) "
            "CPU [0%@729,0%@729,1%@729,0%@729,off,off,off,off,off,off,off,off] EMC_FREQ 0%@2133 "
            "GR3D_FREQ 0%@[0,0] VIC_FREQ 729 APE 174 CV0@-256C CPU@45.031C SOC2@42.312C "
            "SOC0@42.593C CV1@-256C GPU@40.906C tj@45.031C SOC1@40.843C CV2@-256C "
            "VDD_GPU_SOC 3180mW/3180mW VDD_CPU_CV 398mW/398mW VIN_SYS_5V0 2717mW/2717mW "
            "NC 0mW/0mW VDDQ_VDD2_1V8AO 503mW/503mW NC 0mW/0mW")
    rec = parse(line)
    assert "NC" not in rec["rails"]
    assert rec["board_power_mw"] == 3180 + 398 + 2717 + 503
    assert rec["temps_c"]["CV0"] == -256.0
    assert rec["gpu_load_pct"] == 0 and rec["gpu_freq_mhz"] == 0


def test_line_without_rails_has_no_board_power():
    rec = parse("RAM 1923/3964MB (lfb 2x2MB) CPU [5%@1224,off] GR3D_FREQ 0%@76 CPU@40C GPU@40C")
    assert rec["board_power_mw"] is None and rec["rails"] == {}
    assert rec["torn"] is False


def test_unknown_fields_never_raise():
    rec = parse("RAM 100/200MB FUTURE_THING 7%@[1,2,3] NEW_ENGINE off WEIRD ??? ZZZ 1/2/3 "
                "X@Y foo@bar.baz VDD_IN 5000mW/4000mW")
    assert rec["board_power_mw"] == 5000
    assert rec["torn"] is False


@pytest.mark.parametrize("garbage", ["", "   ", "hello world", "\x00\x01\x02", "Traceback (most recent call last):",
                                     "12 34 56"])
def test_non_tegrastats_text_is_a_clear_value_error(garbage):
    with pytest.raises(ValueError, match="not a tegrastats line"):
        parse(garbage)


def test_torn_lines_never_pass_as_a_whole_sample(records):
    """A cut line is flagged torn, or carries no power, or lacks some of the board's rails (the
    agent keeps only samples with the board's usual rail set), or still has the right power."""
    for name, power, line in records:
        full_rails = set(parse(line)["rails"])
        for cut in (len(line) // 3, len(line) // 2, len(line) - 3):
            head, tail = line[:cut], line[cut:]
            for part in (head, tail):
                try:
                    rec = parse(part)
                except ValueError:
                    continue
                whole = not rec["torn"] and rec["board_power_mw"] is not None and set(rec["rails"]) == full_rails
                assert not whole or rec["board_power_mw"] == power, (name, part)


def test_mangled_lines_either_parse_or_raise_value_error(records):
    """Random cuts, inserted tokens and bytes: a dict or a ValueError, never anything else."""
    import random

    rng = random.Random(5)
    noise = ["FOO", "BAR 1/2", "X@", "@C", "1/", "/2mW", "[", "]", "%@", "GR3D_FREQ", "RAM", "RAM 1/", "\x00", "é",
             "VDD_IN", "VDD_IN 12mW/", "NC 0mW/0mW", "CPU [", "CPU [off", "@[1,2"]
    lines = [line for _, _, line in records]
    for _ in range(3000):
        tokens = rng.choice(lines).split()
        for _ in range(rng.randint(0, 4)):
            tokens.insert(rng.randint(0, len(tokens)), rng.choice(noise))
        text = " ".join(tokens)
        a, b = sorted(rng.randint(0, len(text)) for _ in range(2))
        text = text[a:b] if rng.random() < 0.5 else text
        try:
            rec = parse(text)
        except ValueError:
            continue
        assert isinstance(rec["rails"], dict) and isinstance(rec["temps_c"], dict)
        assert rec["board_power_mw"] is None or isinstance(rec["board_power_mw"], int)
