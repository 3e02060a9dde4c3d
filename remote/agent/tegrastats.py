"""Parse `tegrastats` lines from every Jetson generation (Nano, TX2, Xavier NX, AGX Xavier, Orin).

Shipped to the device with the agent, so this file is Python 3.6 compatible and imports only
the standard library.

Board power (design.md section 6): the board's input rail where it has one (`POM_5V_IN` on the
Nano, `VDD_IN` on TX2 / Xavier NX / Orin Nano), else the sum of all rails with `NC` skipped
(AGX Xavier `GPU 463/463 CPU 311/311 ...`, AGX Orin `VDD_GPU_SOC ... NC 0mW/0mW`).

Rails (`NAME cur/avg`, optionally `mW` suffixed since JetPack 5) and temperatures (`NAME@30.5C`)
are matched by different shapes, so an AGX Xavier's `GPU@30.5C` temperature never becomes a rail
and its `GPU 463/463` rail never becomes a temperature. Unknown fields are ignored.
"""

import re

INPUT_RAILS = ("POM_5V_IN", "VDD_IN")
SKIPPED_RAILS = ("NC",)

_TIMESTAMP_RE = re.compile(r"^\s*(\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2})\s+")
_SIZE_UNITS_MB = {"kB": 1.0 / 1024, "KB": 1.0 / 1024, "MB": 1.0, "GB": 1024.0}
_RAM_RE = re.compile(r"(?<![\w])RAM (\d+)/(\d+)([kKMG]B)")
_SWAP_RE = re.compile(r"(?<![\w])SWAP (\d+)/(\d+)([kKMG]B)")
_CPU_RE = re.compile(r"(?<![\w])CPU \[([^\]]*)\]")
_CPU_CORE_RE = re.compile(r"^\s*(\d+)%(?:@(\d+))?\s*$")
_GR3D_RE = re.compile(r"(?<![\w])GR3D_FREQ (\d+)%(?:@\[?(\d+)(?:,\d+)*\]?)?")
_EMC_RE = re.compile(r"(?<![\w])EMC_FREQ (\d+)%(?:@(\d+))?")
_TEMP_RE = re.compile(r"(?<![\w@%.])([A-Za-z][\w]*)@(-?\d+(?:\.\d+)?)C(?![\w])")
# A rail: a name, a space, `current/average`, each with an optional mW suffix, and nothing
# word-like after it (so `RAM 1923/3964MB` and `IRAM 0/252kB` are not rails).
_RAIL_RE = re.compile(r"(?<![\w@%])([A-Za-z][\w]*) (\d+)(mW)?/(\d+)(mW)?(?![\w])")
_HEAD_RE = re.compile(r"^\s*(?:\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2}\s+)?RAM \d+/\d+[kKMG]B")
_TEMP_TOKEN_RE = re.compile(r"^[A-Za-z][\w]*@-?\d+(?:\.\d+)?C$")
_PAIR_TOKEN_RE = re.compile(r"^\d+(mW)?/\d+(mW)?$")
_NAME_TOKEN_RE = re.compile(r"^[A-Za-z][\w]*$")


def parse(line):
    """Parse one tegrastats line into a dict (see the module docstring for the power rule).

    Keys: `timestamp` (str or None), `ram_used_mb`, `ram_total_mb`, `swap_used_mb`,
    `swap_total_mb`, `cpus` (list of {"load_pct", "freq_mhz"}, None for an offline core),
    `emc_load_pct`, `emc_freq_mhz`, `gpu_load_pct`, `gpu_freq_mhz`, `temps_c` (name -> degrees),
    `rails` (name -> current mW), `rails_avg_mw` (name -> average mW), `board_power_mw` (int or
    None without rails), `board_power_source` (the input rail's name, "sum", or None), and
    `torn` (True when the line looks cut: it does not start with RAM or ends mid-field).

    Raises ValueError only when the line carries no tegrastats field at all.
    """
    if not isinstance(line, str):
        raise ValueError("not a tegrastats line: expected text, got %s" % type(line).__name__)
    text = line.strip()
    ram = _RAM_RE.search(text)
    cpu = _CPU_RE.search(text)
    gr3d = _GR3D_RE.search(text)
    rails, rails_avg = _rails(text)
    temps = dict((m.group(1), float(m.group(2))) for m in _TEMP_RE.finditer(text))
    if not (ram or cpu or gr3d or rails or temps):
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
        "cpus": _cpus(cpu.group(1)) if cpu else [],
        "emc_load_pct": int(emc.group(1)) if emc else None,
        "emc_freq_mhz": int(emc.group(2)) if emc and emc.group(2) else None,
        "gpu_load_pct": int(gr3d.group(1)) if gr3d else None,
        "gpu_freq_mhz": int(gr3d.group(2)) if gr3d and gr3d.group(2) else None,
        "temps_c": temps,
        "rails": rails,
        "rails_avg_mw": rails_avg,
        "board_power_mw": power,
        "board_power_source": source,
        "torn": _looks_torn(text),
    }


def board_power(rails):
    """(mW, source) by the board-power rule: the input rail if present, else the sum of rails."""
    for name in INPUT_RAILS:
        if name in rails:
            return rails[name], name
    if not rails:
        return None, None
    return sum(rails.values()), "sum"


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


def _cpus(body):
    cores = []
    for part in body.split(","):
        m = _CPU_CORE_RE.match(part)
        if m:
            cores.append({"load_pct": int(m.group(1)), "freq_mhz": int(m.group(2)) if m.group(2) else None})
        else:  # "off" (offline core) or anything unknown
            cores.append(None)
    return cores


def _looks_torn(text):
    """A line cut by a short read: no RAM head, or not ending in a whole rail pair or temperature.

    Every tegrastats generation ends its line with rails (`VDD_IN 2763mW/2846mW`) or, without
    power monitors, with temperatures (`thermal@41C`); a cut leaves something else at the end.
    """
    if not _HEAD_RE.match(text):
        return True
    tokens = text.split()
    last = tokens[-1]
    if _TEMP_TOKEN_RE.match(last):
        return False
    pair = _PAIR_TOKEN_RE.match(last)
    if not pair or bool(pair.group(1)) != bool(pair.group(2)):
        return True  # "... POM_5V_CPU 36", "... 366/", "... VDD_SOC 650mW/71"
    return len(tokens) < 2 or not _NAME_TOKEN_RE.match(tokens[-2])


def _shorten(text, limit=80):
    return text if len(text) <= limit else text[:limit] + "..."
