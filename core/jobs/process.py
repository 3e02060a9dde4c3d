"""Detached processes of runs: start, recognise, stop (Linux /proc, POSIX signals)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.errors import OperationFailed

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def python_env(extra: dict | None = None) -> dict:
    """The environment for a run process: this one, with the project importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    # OpenMP threads that sleep instead of spinning between parallel regions: on a shared or
    # busy CPU host, spinning cost up to 30% of a training step (measured on 2 cores).
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env.update(extra or {})
    return env


def spawn_detached(cmd: list[str], log: Path, cwd: Path, env: dict | None = None) -> int:
    """Start `cmd` in its own session (see core.jobs.launch); returns its pid."""
    launcher = [sys.executable, "-m", "core.jobs.launch", str(Path(log).resolve()), "--", *cmd]
    proc = subprocess.run(launcher, cwd=Path(cwd).resolve(), env=python_env(env), capture_output=True, text=True,
                          timeout=60)
    if proc.returncode != 0 or not proc.stdout.strip().isdigit():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise OperationFailed(f"could not start {' '.join(cmd[1:3])}: {last[-200:]}")
    return int(proc.stdout.strip())


def start_time(pid: int | None) -> int | None:
    """When process `pid` started (clock ticks since boot, /proc/PID/stat field 22), or None.

    Recorded beside a pid as `pid_start`: a pid the kernel reused for another process then has a
    different start time, so the recycled pid is not mistaken for the run (issue 12)."""
    if not pid:
        return None
    try:
        fields = Path(f"/proc/{int(pid)}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def identity(pid: int | None) -> dict:
    """The fields a record stores for its process: `pid` and its `pid_start`."""
    return {"pid": pid, "pid_start": start_time(pid)}


def is_alive(pid: int | None, marker: str | None = None, started: int | None = None) -> bool:
    """True if `pid` runs, (when given) its command line contains `marker` (e.g. the run id) and
    (when given) it started at `started` (see `start_time`): a recycled pid or a zombie does not
    count."""
    if not pid:
        return False
    proc = Path(f"/proc/{pid}")
    if proc.is_dir():
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return False
        if started is not None and fields[19:20] != [str(started)]:
            return False
        # an exiting process has an empty command line: with its start time matching, still the one
        return fields[0] not in ("Z", "X") and (marker is None or marker in cmdline
                                                 or (started is not None and not cmdline.strip()))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return sys.platform != "linux"


STOP_GRACE_S = 10.0  # SIGTERM, then this long before SIGKILL of the process group
KILL_WAIT_S = 5.0  # after SIGKILL: how long until the kernel has removed it
GONE, STOPPED, KILLED, ALIVE = "gone", "stopped", "killed", "alive"  # what `stop` did


def wait_gone(pid: int | None, marker: str | None = None, started: int | None = None,
              timeout_s: float = STOP_GRACE_S, poll_s: float = 0.05) -> bool:
    """Wait until process `pid` (the one `marker`/`started` identify, see `is_alive`) is gone;
    True if it is, False if it still runs after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while is_alive(pid, marker, started):
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)
    return True


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # a detached runner leads its own group (core.jobs.launch)
    except ProcessLookupError:
        pass
    except PermissionError:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def stop(pid: int, marker: str | None = None, grace_s: float = STOP_GRACE_S, started: int | None = None, *,
         terminate: bool = True) -> str:
    """End the process `pid` (identified as in `is_alive`: a recycled pid is never signalled) and
    return only once it is gone: SIGTERM its process group (unless `terminate` is False: it is
    ending by itself), wait up to `grace_s`, then SIGKILL the group and wait again.

    Returns GONE (it was not running), STOPPED (it exited within the grace), KILLED (it needed
    SIGKILL) or ALIVE (it survived even that, e.g. stuck in the kernel)."""
    if not is_alive(pid, marker, started):
        return GONE
    if terminate:
        _signal_group(pid, signal.SIGTERM)
    if wait_gone(pid, marker, started, grace_s):
        return STOPPED
    _signal_group(pid, signal.SIGKILL)
    return KILLED if wait_gone(pid, marker, started, KILL_WAIT_S) else ALIVE


def stop_message(what: str, pid: int, grace_s: float = STOP_GRACE_S) -> str:
    """The one line said when `stop` had to SIGKILL."""
    return (f"{what}: its process {pid} still ran {grace_s:.0f} s after it was asked to stop: "
            "killed it (SIGKILL to its process group)")
