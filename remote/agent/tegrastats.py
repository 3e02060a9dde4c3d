"""Parse `tegrastats` lines from every Jetson generation: TX1 (L4T 28) to Thor (JetPack 7.2).

Shipped to the device with the agent, so this file is Python 3.6 compatible and imports only
the standard library.

Board power (docs/architecture.md, agent protocol): the board's input rail where it has one (`POM_5V_IN` on the
Nano, `VDD_IN` on TX2 / Xavier NX / Orin Nano / Orin NX, `VIN` on Thor: the module input, of
which `VDD_GPU`, `VDD_CPU_SOC_MSS` and `VIN_SYS_5V0` are parts), else the sum of all rails with
`NC` skipped (AGX Xavier `GPU 463/463 CPU 311/311 ...`, AGX Orin `VDD_GPU_SOC ... NC 0mW/0mW`).
`select_power(rails, choice)` picks another figure from the same rails: `gpu`, `cpu`, `sum` (the
rails except the input rail) or one rail by name (`--power-rail`).

Rails are `NAME cur/avg` (JetPack 3-6; `mW` suffixed since JetPack 5) or `NAME cur/avg/max`
(JetPack 7.2: `VDD_GPU 4925mW/4925mW/4925mW`); the first value is the current one. Temperatures
are `NAME@30.5C` or, on JetPack 7.2, `NAME@34.8C/34.8C`. Rails and temperatures are matched by
different shapes, so an AGX Xavier's `GPU@30.5C` temperature never becomes a rail and its
`GPU 463/463` rail never becomes a temperature. The oldest format (TX1, L4T 28: `cpu [17%,13%]@408
EMC 1%@408 GR3D 3%@76`, one clock for all cores) is read too. Unknown fields are ignored. Lines
longer than MAX_LINE characters are cut there and flagged torn; every pattern is bounded, so no
input makes parsing slower than linear.
"""

import re

INPUT_RAILS = ("POM_5V_IN", "VDD_IN", "VIN")
SKIPPED_RAILS = ("NC",)
MAX_LINE = 16384  # characters; real lines are under 1,500 (a 14-core Thor's is about 800)
# `--power-rail` keywords (besides a rail's own name). GPU/CPU rails by board, the rail that is the
# GPU (or CPU) alone first, then the shared rail that contains it (Xavier NX / Orin Nano / Orin NX
# power CPU, GPU and CV from one rail, VDD_CPU_GPU_CV; AGX Orin the GPU with the SoC).
POWER_RAIL_CHOICES = ("input", "gpu", "cpu", "sum")
GPU_RAILS = ("POM_5V_GPU", "VDD_SYS_GPU", "VDD_GPU", "GPU", "VDD_GPU_SOC", "VDD_CPU_GPU_CV")
CPU_RAILS = ("POM_5V_CPU", "VDD_SYS_CPU", "VDD_CPU", "CPU", "VDD_CPU_CV", "VDD_CPU_SOC_MSS", "VDD_CPU_GPU_CV")
RAIL_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")

_TIMESTAMP_RE = re.compile(r"^\s*(\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2})\s+")
_SIZE_UNITS_MB = {"kB": 1.0 / 1024, "KB": 1.0 / 1024, "MB": 1.0, "GB": 1024.0}
_RAM_RE = re.compile(r"(?<![\w])RAM (\d{1,12})/(\d{1,12})([kKMG]B)")
_SWAP_RE = re.compile(r"(?<![\w])SWAP (\d{1,12})/(\d{1,12})([kKMG]B)")
# `CPU [..]` (TX2 on), or L4T 28's `cpu [17%,13%]@408`; the body is bounded and holds no bracket,
# so a line of many `CPU [` without `]` costs linear time, not quadratic.
_CPU_RE = re.compile(r"(?<![\w])(?:CPU|cpu) \[([^\[\]]{0,2048})\](?:@(\d{1,7}))?")
_CPU_CORE_RE = re.compile(r"^\s*(\d+)%(?:@(\d+))?\s*$")
_GR3D_RE = re.compile(r"(?<![\w])GR3D(?:_FREQ)? (?:(\d{1,3})%)?(?:@\[?(\d{1,7})(?:,\d{1,7}){0,16}\]?)?")
_EMC_RE = re.compile(r"(?<![\w])EMC(?:_FREQ)? (\d{1,3})?%?(?:@(\d{1,7}))?")
_TEMP_RE = re.compile(r"(?<![\w@%.])([A-Za-z]\w{0,63})@(-?\d{1,6}(?:\.\d{1,6})?)C(?:/-?\d{1,6}(?:\.\d{1,6})?C)?(?![\w])")
# A rail: a name, a space, `current/average[/max]`, each with an optional mW suffix, and nothing
# word-like after it (so `RAM 1923/3964MB` and `IRAM 0/252kB` are not rails).
_RAIL_RE = re.compile(r"(?<![\w@%])([A-Za-z]\w{0,63}) (\d{1,9})(mW)?/(\d{1,9})(mW)?(?:/(\d{1,9})(mW)?)?(?![\w/])")
_HEAD_RE = re.compile(r"^\s*(?:\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2}\s+)?RAM \d+/\d+[kKMG]B")
_TEMP_TOKEN_RE = re.compile(r"^[A-Za-z][\w]*@-?\d+(?:\.\d+)?C(?:/-?\d+(?:\.\d+)?C)?$")
_PAIR_TOKEN_RE = re.compile(r"^\d+(mW)?/\d+(mW)?(?:/\d+(mW)?)?$")
_NAME_TOKEN_RE = re.compile(r"^[A-Za-z][\w]*$")
# L4T 28 (TX1) ends with `GR3D 3%@76` (no rails, no temperatures without root).
_L4T28_TAIL_RE = re.compile(r"(?<![\w])GR3D \d+%@\d+$")


def parse(line):
    """Parse one tegrastats line into a dict (see the module docstring for the power rule).

    Keys: `timestamp` (str or None), `ram_used_mb`, `ram_total_mb`, `swap_used_mb`,
    `swap_total_mb`, `cpus` (list of {"load_pct", "freq_mhz"}, None for an offline core),
    `emc_load_pct`, `emc_freq_mhz`, `gpu_load_pct`, `gpu_freq_mhz`, `temps_c` (name -> degrees),
    `rails` (name -> current mW), `rails_avg_mw` (name -> average mW), `board_power_mw` (int or
    None without rails), `board_power_source` (the input rail's name, "sum", or None), and
    `torn` (True when the line looks cut: it does not start with RAM, ends mid-field, or was
    longer than MAX_LINE).

    Raises ValueError only when the line carries no tegrastats field at all.
    """
    if not isinstance(line, str):
        raise ValueError("not a tegrastats line: expected text, got %s" % type(line).__name__)
    too_long = len(line) > MAX_LINE
    text = line[:MAX_LINE].strip()
    ram = _RAM_RE.search(text)
    cpu = _CPU_RE.search(text)
    gr3d = _GR3D_RE.search(text)
    rails, rails_avg = _rails(text)
    temps = dict((m.group(1), float(m.group(2))) for m in _TEMP_RE.finditer(text))
    if not (ram or cpu or (gr3d and gr3d.group(1)) or rails or temps):
        raise ValueError("not a tegrastats line: %r" % _shorten(text))
    stamp = _TIMESTAMP_RE.match(text)
    swap = _SWAP_RE.search(text)
    emc = _EMC_RE.search(text)
    power, source = board_power(rails)
    return {
        "timestamp": stamp.group(1) if stamp else None,
        "ram_used_mb": _mb(ram, 1),
        "ram_total_mb": _mb(ram, 2),
        "swap_used_mb": _mb(swap, 1),
        "swap_total_mb": _mb(swap, 2),
        "cpus": _cpus(cpu.group(1), cpu.group(2)) if cpu else [],
        "emc_load_pct": int(emc.group(1)) if emc and emc.group(1) else None,
        "emc_freq_mhz": int(emc.group(2)) if emc and emc.group(2) else None,
        "gpu_load_pct": int(gr3d.group(1)) if gr3d and gr3d.group(1) else None,
        "gpu_freq_mhz": int(gr3d.group(2)) if gr3d and gr3d.group(2) else None,
        "temps_c": temps,
        "rails": rails,
        "rails_avg_mw": rails_avg,
        "board_power_mw": power,
        "board_power_source": source,
        "torn": too_long or _looks_torn(text),
    }


def board_power(rails):
    """(mW, source) by the board-power rule: the input rail if present, else the sum of rails."""
    for name in INPUT_RAILS:
        if name in rails:
            return rails[name], name
    if not rails:
        return None, None
    return sum(rails.values()), "sum"


def select_power(rails, choice="input"):
    """(mW, source) of `choice` over `rails` (name -> mW); (None, reason) when the board lacks it.

    `input`: board_power(); `gpu` / `cpu`: the first of GPU_RAILS / CPU_RAILS the board has;
    `sum`: every rail except the input rail (its parts; never the input plus its parts, which
    counts the same power twice); anything else: the rail of that name.
    """
    if not rails:
        return None, "no power rails"
    if choice in (None, "input"):
        return board_power(rails)
    if choice == "sum":
        parts = [v for name, v in rails.items() if name not in INPUT_RAILS]
        return (sum(parts), "sum") if parts else (None, "no rails besides the input rail")
    if choice in ("gpu", "cpu"):
        for name in GPU_RAILS if choice == "gpu" else CPU_RAILS:
            if name in rails:
                return rails[name], name
        return None, "no %s rail on this board (rails: %s)" % (choice.upper(), ", ".join(sorted(rails)))
    if choice in rails:
        return rails[choice], choice
    return None, "no rail %s on this board (rails: %s)" % (choice, ", ".join(sorted(rails)))


def check_power_rail(choice):
    """The `--power-rail` value if it is a keyword or looks like a rail name; ValueError otherwise."""
    if choice in POWER_RAIL_CHOICES or (isinstance(choice, str) and RAIL_NAME_RE.match(choice)):
        return choice
    raise ValueError("bad power rail %r: expected %s or a rail name such as VDD_IN"
                     % (choice, ", ".join(POWER_RAIL_CHOICES)))


def _rails(text):
    current, average = {}, {}
    for m in _RAIL_RE.finditer(text):
        name = m.group(1)
        if name in SKIPPED_RAILS:
            continue
        current[name] = int(m.group(2))
        average[name] = int(m.group(4))
    return current, average


def _mb(match, group):
    if not match:
        return None
    value = int(match.group(group)) * _SIZE_UNITS_MB.get(match.group(3), 1.0)
    return int(round(value))


def _cpus(body, shared_freq=None):
    """Per-core load and clock; L4T 28 gives one clock for all cores after the bracket."""
    cores = []
    for part in body.split(","):
        m = _CPU_CORE_RE.match(part)
        if m:
            freq = m.group(2) or shared_freq
            cores.append({"load_pct": int(m.group(1)), "freq_mhz": int(freq) if freq else None})
        else:  # "off" (offline core) or anything unknown
            cores.append(None)
    return cores


def _looks_torn(text):
    """A line cut by a short read: no RAM head, or not ending in a whole rail field or temperature.

    Every tegrastats generation ends its line with rails (`VDD_IN 2763mW/2846mW`, JetPack 7.2's
    `VIN_SYS_5V0 6767mW/6767mW/6767mW`) or, without power monitors, with temperatures
    (`thermal@41C`), or on L4T 28 (TX1) with `GR3D 3%@76`; a cut leaves something else at the end.
    """
    if not _HEAD_RE.match(text):
        return True
    tokens = text.split()
    last = tokens[-1]
    if _TEMP_TOKEN_RE.match(last):
        return False
    if _L4T28_TAIL_RE.search(text):
        return False
    pair = _PAIR_TOKEN_RE.match(last)
    if not pair:
        return True  # "... POM_5V_CPU 36", "... 366/", "... VDD_SOC 650mW/71"
    units = [bool(pair.group(i)) for i in (1, 2, 3)][:last.count("/") + 1]
    if len(set(units)) != 1:
        return True  # "650mW/71": some values with the unit, some without
    return len(tokens) < 2 or not _NAME_TOKEN_RE.match(tokens[-2])


def _shorten(text, limit=80):
    return text if len(text) <= limit else text[:limit] + "..."
