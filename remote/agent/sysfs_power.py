"""High-rate power straight from the board's INA3221 (and INA2xx) monitors in sysfs.

Python 3.6 compatible, standard library only. NOT YET RUN ON JETSON HARDWARE: the layouts below
are those jetson-stats (jtop/core/power.py) reads, and the tests run this code on temporary trees
laid out the same way; `root` is a parameter for that reason ("/" on a device).

Layouts:
- JetPack 4 (L4T 32, Nano / TX2 / Xavier): the `ina3221x` iio driver,
  `sys/bus/i2c/drivers/ina3221x/<bus-addr>/iio:device<N>/` with `rail_name_<k>` and
  `in_power<k>_input` (mW; else `in_voltage<k>_input` mV x `in_current<k>_input` mA).
- JetPack 5+ (L4T 34+, Orin, Thor): hwmon, `sys/bus/i2c/drivers/ina3221/<bus-addr>/hwmon/hwmon<N>/`
  (and any `sys/class/hwmon/hwmon<N>/` whose `name` starts with `ina`) with `in<k>_label`,
  `in<k>_input` (bus mV) and `curr<k>_input` (mA), or `power<k>_input` (uW).
Channels labelled `NC` (not connected) and the INA3221's "sum of shunt voltages" channel are
skipped. Board power then follows the same rule as tegrastats (remote.agent.tegrastats).

`SysfsSampler` reads every rail in a thread at `rate_hz` (default 100; files are opened once and
re-read with pread), timestamps each sample with perf_counter (the batch timers' clock) and feeds
the shared PowerWindow. `paused` stops sampling (the agent interleaves blocks with the sampler on
and off to measure its own cost); power events are emitted at most `emit_hz` times a second.
"""

import glob
import os
import threading
import time

from remote.agent.power import PowerWindow
from remote.agent.tegrastats import SKIPPED_RAILS, board_power


class Rail(object):
    """One monitor channel: a name and how to read its power in mW."""

    def __init__(self, name, power=None, volt=None, curr=None, power_scale=1.0):
        self.name = name
        self.paths = dict((k, v) for k, v in (("power", power), ("volt", volt), ("curr", curr)) if v)
        self.power_scale = power_scale  # multiply the power file by this to get mW
        self.fds = {}

    def open(self):
        for key, path in self.paths.items():
            self.fds[key] = os.open(path, os.O_RDONLY)

    def close(self):
        for fd in self.fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = {}

    def read_mw(self):
        if "power" in self.fds:
            return _pread_int(self.fds["power"]) * self.power_scale
        return _pread_int(self.fds["volt"]) * _pread_int(self.fds["curr"]) / 1000.0


def _pread_int(fd):
    return int(os.pread(fd, 64, 0).split()[0])


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except (OSError, IOError):
        return None


def _skip(label):
    return not label or label in SKIPPED_RAILS or "sum of shunt" in label.lower()


def find_rails(root="/"):
    """Every power rail under root's sysfs, by name (iio: JetPack 4; hwmon: JetPack 5+)."""
    rails = {}
    seen = set()
    sysfs = os.path.join(root, "sys")
    for dev in sorted(glob.glob(os.path.join(sysfs, "bus/i2c/drivers/ina3221x/*/iio:device*"))):
        for label_path in sorted(glob.glob(os.path.join(dev, "rail_name_*"))):
            k = label_path.rsplit("_", 1)[1]
            name = _read(label_path)
            if _skip(name) or name in rails:
                continue
            power = os.path.join(dev, "in_power%s_input" % k)
            volt = os.path.join(dev, "in_voltage%s_input" % k)
            curr = os.path.join(dev, "in_current%s_input" % k)
            if os.path.isfile(power):
                rails[name] = Rail(name, power=power)
            elif os.path.isfile(volt) and os.path.isfile(curr):
                rails[name] = Rail(name, volt=volt, curr=curr)
    hwmons = sorted(glob.glob(os.path.join(sysfs, "bus/i2c/drivers/ina3221/*/hwmon/hwmon*")))
    hwmons += sorted(h for h in glob.glob(os.path.join(sysfs, "class/hwmon/hwmon*"))
                     if (_read(os.path.join(h, "name")) or "").startswith("ina"))
    for mon in hwmons:
        real = os.path.realpath(mon)
        if real in seen:
            continue
        seen.add(real)
        for label_path in sorted(glob.glob(os.path.join(mon, "in*_label"))):
            k = os.path.basename(label_path)[2:-len("_label")]
            name = _read(label_path)
            if not k.isdigit() or _skip(name) or name in rails:
                continue
            power = os.path.join(mon, "power%s_input" % k)
            volt = os.path.join(mon, "in%s_input" % k)
            curr = os.path.join(mon, "curr%s_input" % k)
            if os.path.isfile(volt) and os.path.isfile(curr):
                rails[name] = Rail(name, volt=volt, curr=curr)
            elif os.path.isfile(power):
                rails[name] = Rail(name, power=power, power_scale=0.001)  # hwmon power is in uW
    return rails


class SysfsSampler(PowerWindow):
    """Sample every sysfs rail in a thread at rate_hz; the same window/result as TegrastatsSampler."""

    source = "sysfs"

    def __init__(self, root="/", rate_hz=100.0, emit=None, power_rail="input", emit_hz=10.0):
        PowerWindow.__init__(self, power_rail)
        self.root = root
        self.rate_hz = float(rate_hz)
        self.emit = emit
        self.emit_every = max(1, int(round(self.rate_hz / emit_hz))) if emit_hz else 0
        self.paused = False
        self.rails = {}
        self.counts = {"samples": 0, "in_window": 0, "outside_window": 0, "read_errors": 0, "paused_s": 0.0}
        self.achieved_hz = None
        self._stop = threading.Event()
        self._thread = None
        self._started = None

    def start(self):
        self.rails = find_rails(self.root)
        if not self.rails:
            self.unavailable = "no INA power monitors under %s" % os.path.join(self.root, "sys")
            return False
        try:
            for rail in self.rails.values():
                rail.open()
        except OSError as exc:
            self.close()
            self.unavailable = "cannot read the power monitors: %s" % (exc.strerror or exc)
            return False
        self._thread = threading.Thread(target=self._run, name="sysfs-power")
        self._thread.daemon = True
        self._started = time.perf_counter()
        self._thread.start()
        return True

    def sample(self):
        """One reading of every rail: {"rails": name -> mW, ...} (a tegrastats-like record)."""
        rails = {}
        for name, rail in self.rails.items():
            rails[name] = int(round(rail.read_mw()))
        power, source = board_power(rails)
        return {"rails": rails, "board_power_mw": power, "board_power_source": source, "gpu_load_pct": None,
                "temps_c": {}}

    def _run(self):
        period = 1.0 / self.rate_hz
        next_t = time.perf_counter()
        while not self._stop.is_set():
            if self.paused:
                t_pause = time.perf_counter()
                while self.paused and not self._stop.wait(0.002):
                    pass
                self.counts["paused_s"] += time.perf_counter() - t_pause
                next_t = time.perf_counter()
                continue
            t_a = time.perf_counter()
            try:
                record = self.sample()
            except (OSError, ValueError, IndexError):
                self.counts["read_errors"] += 1
                record = None
            t = (t_a + time.perf_counter()) / 2.0
            if record is not None:
                self._take(record, t)
            next_t += period
            delay = next_t - time.perf_counter()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_t = time.perf_counter()  # late (a loaded CPU): do not burst to catch up

    def _take(self, record, t):
        self.counts["samples"] += 1
        self._accept(record, t, emit=bool(self.emit and self.emit_every
                                          and self.counts["samples"] % self.emit_every == 0))

    def window_count(self):
        return self.counts["in_window"]

    def alive(self):
        return self._thread is not None and self._thread.is_alive()

    def close(self):
        for rail in self.rails.values():
            rail.close()

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3)
            elapsed = time.perf_counter() - self._started - self.counts["paused_s"]
            self.achieved_hz = self.counts["samples"] / elapsed if elapsed > 0 else None
        self.close()

    def result(self):
        info = {"sysfs": dict(self.counts, rate_hz=self.rate_hz, achieved_hz=self.achieved_hz,
                              rails=sorted(self.rails), root=self.root),
                "power_source": self.source, "power_rail": self.power_rail}
        if self.unavailable:
            return info, None, self.unavailable
        usual = self.usual()
        if usual is None:
            return info, None, "no sysfs power samples during the measured window"
        figures, power_w, reason = self.figures(usual)
        info.update(figures)
        return info, power_w, reason
