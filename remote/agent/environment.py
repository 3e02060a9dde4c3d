"""What the device was when it was measured: L4T release, power mode, clocks, temperatures, versions.

Python 3.6 compatible; every probe is best-effort (a missing file or tool gives None, never an
exception), because the same agent runs on a Jetson, a desktop and a CI container.
"""

import glob
import os
import platform
import socket
import subprocess


def collect(torch, device):
    """The environment record for the hello/summary events."""
    env = {
        "hostname": socket.gethostname(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "l4t": first_line("/etc/nv_tegra_release"),
        "board": read_text("/proc/device-tree/model"),
        "nvpmodel": nvpmodel_mode(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda_available": bool(torch.cuda.is_available()),
        "cuda": getattr(torch.version, "cuda", None),
        "cudnn": None,
        "gpu": None,
        "device": str(device),
    }
    if env["cuda_available"]:
        try:
            env["cudnn"] = torch.backends.cudnn.version()
            env["gpu"] = torch.cuda.get_device_name(0)
            env["cudnn_benchmark"] = bool(torch.backends.cudnn.benchmark)
        except Exception as exc:  # a broken driver must not stop the benchmark
            env["gpu"] = "unknown (%s)" % exc
    env.update(snapshot())
    return env


def snapshot():
    """The parts that change during a run: clocks and temperatures (read again at the end)."""
    return {"clocks_mhz": clocks_mhz(), "thermal_c": thermal_zones()}


def cpu_name():
    text = read_text("/proc/cpuinfo") or ""
    for key in ("model name", "Hardware", "Model"):
        for line in text.splitlines():
            if line.startswith(key) and ":" in line:
                return line.split(":", 1)[1].strip()
    return platform.processor() or None


def nvpmodel_mode():
    """`nvpmodel -q` (e.g. "NV Power Mode: MAXN / 0"), or None where there is no nvpmodel."""
    try:
        proc = subprocess.Popen(["nvpmodel", "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                universal_newlines=True)
        out, _ = proc.communicate(timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = [l.strip() for l in out.splitlines() if l.strip()]
    return " | ".join(lines) if lines else None


def clocks_mhz():
    """CPU cores' and devfreq devices' (GPU, EMC where exposed) current clocks in MHz."""
    clocks = {}
    for path in sorted(glob.glob("/sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_cur_freq")):
        value = read_int(path)
        if value is not None:
            clocks[path.split("/")[5]] = value // 1000  # kHz
    for path in sorted(glob.glob("/sys/class/devfreq/*/cur_freq")):
        value = read_int(path)
        if value is not None:
            clocks[path.split("/")[4]] = value // 1000000  # Hz
    return clocks


def thermal_zones():
    temps = {}
    for zone in sorted(glob.glob("/sys/class/thermal/thermal_zone*")):
        name = read_text(os.path.join(zone, "type")) or os.path.basename(zone)
        value = read_int(os.path.join(zone, "temp"))
        if value is not None:
            temps[name] = value / 1000.0
    return temps


def read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").replace("\x00", "").strip() or None
    except (OSError, IOError):
        return None


def first_line(path):
    text = read_text(path)
    return text.splitlines()[0].lstrip("# ").strip() if text else None


def read_int(path):
    text = read_text(path)
    try:
        return int(text.split()[0]) if text else None
    except ValueError:
        return None
