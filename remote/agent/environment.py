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


# --------------------------------------------------------------------------- clocks (issue 9)

SUDO_TIMEOUT_S = 30.0


def clock_state():
    """nvpmodel mode, whether jetson_clocks looks active, and the current clocks (MHz).

    `jetson_clocks_active` is read without root: True when every CPU's and every devfreq
    device's (GPU, EMC where exposed) minimum clock equals its maximum (what jetson_clocks sets),
    False when one does not, None where the board exposes none of them.
    """
    pinned = []
    for pattern, lo, hi in (("/sys/devices/system/cpu/cpu[0-9]*/cpufreq", "scaling_min_freq", "scaling_max_freq"),
                            ("/sys/class/devfreq/*", "min_freq", "max_freq")):
        for folder in sorted(glob.glob(pattern)):
            a, b = read_int(os.path.join(folder, lo)), read_int(os.path.join(folder, hi))
            if a is not None and b is not None:
                pinned.append(a == b)
    return {"nvpmodel": nvpmodel_mode(), "jetson_clocks_active": all(pinned) if pinned else None,
            "clocks_mhz": clocks_mhz()}


def run_sudo(argv, timeout=SUDO_TIMEOUT_S):
    """Run `sudo -n ARGV` with no terminal input: (ok, one line). Never waits for a password."""
    try:
        proc = subprocess.Popen(["sudo", "-n"] + list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, universal_newlines=True, start_new_session=True)
        out, err = proc.communicate(timeout=timeout)
    except OSError as exc:
        return False, "sudo not available (%s)" % (exc.strerror or exc)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return False, "sudo -n %s did not finish within %.0f s" % (" ".join(argv), timeout)
    lines = [l.strip() for l in (err or out or "").splitlines() if l.strip()]
    if proc.returncode != 0:
        return False, "sudo -n %s failed (status %s): %s" % (" ".join(argv), proc.returncode,
                                                            lines[0] if lines else "no output")
    return True, lines[0] if lines else ""


class ClockLock(object):
    """--lock-clocks: `jetson_clocks --store FILE`, `jetson_clocks`; `release()` restores FILE."""

    def __init__(self, store_file):
        self.store_file = store_file
        self.locked = False

    def acquire(self):
        """None when locked, else the one-line reason (nothing changed then)."""
        ok, msg = run_sudo(["jetson_clocks", "--store", self.store_file])
        if not ok:
            return "--lock-clocks: " + msg
        ok, msg = run_sudo(["jetson_clocks"])
        if not ok:
            return "--lock-clocks: " + msg
        self.locked = True
        return None

    def release(self):
        """Restore the stored clocks; None or the reason it failed."""
        if not self.locked:
            return None
        self.locked = False
        ok, msg = run_sudo(["jetson_clocks", "--restore", self.store_file])
        return None if ok else msg
