"""`--device local`: the same agent, run in a subprocess on this machine (remote.transport.Transport).

`prepare()` copies the bundle (remote.bundle) into a work folder, as SSH would push it, so a
local benchmark also proves that the bundle is self-contained. The agent runs with the device's
`python` (default: this interpreter) in its own session/process group; `cancel()` TERMs the group
(the agent stops tegrastats in its `finally`), then KILLs whatever is left.
"""

from __future__ import annotations

import collections
import hashlib
import io
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path, PurePosixPath
from typing import Iterator, Optional, Sequence, cast

from core import settings
from core.errors import InputError
from core.schema import LOCAL_DEVICE, local_device_record
from remote.bundle import AGENT_MODULE
from remote.transport import ProgressCallback

CANCEL_GRACE_S = 5.0


def default_home() -> Path:
    return settings.home()


def inside(workdir: Path, relative: str) -> Path:
    """`workdir/relative`, refusing absolute paths and `..` (remote paths stay in the work folder)."""
    rel = PurePosixPath(relative)
    if not relative or rel.is_absolute() or ".." in rel.parts:
        raise InputError(f"path {relative!r} must stay inside the device's work folder")
    return workdir.joinpath(*rel.parts)


def _copy_atomically(source: Path, target: Path) -> None:
    """Copy to a temp name unique to this process and thread, then rename: two benchmarks
    preparing the same device at once never see (or leave) a half-written file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.part")
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class LocalTransport:
    """A Transport whose "device" is this machine."""

    def __init__(self, device: Optional[dict] = None, *, home: Optional[Path] = None):
        self.device = dict(device or local_device_record())
        self.name = self.device.get("name") or self.device.get("id") or LOCAL_DEVICE
        workdir = self.device.get("workdir")
        self.workdir = Path(workdir).expanduser() if workdir else Path(home or default_home()) / "devices" / self.name
        self.agent_dir = self.workdir / "agent"

    def prepare(self, progress: Optional[ProgressCallback] = None) -> str:
        """Copy the bundle into `<workdir>/agent/`, skipping files whose checksum already matches."""
        from remote.bundle import bundle_files

        files = bundle_files()
        total = sum(p.stat().st_size for p, _ in files)
        done = 0
        for local, relative in files:
            target = inside(self.agent_dir, relative)
            if not (target.is_file() and _digest(target) == _digest(local)):
                _copy_atomically(local, target)
            done += local.stat().st_size
            if progress is not None:
                progress(done, total, relative)
        return str(self.agent_dir)

    def put_file(self, local: Path, remote_relative: str, progress: Optional[ProgressCallback] = None) -> str:
        target = inside(self.workdir, remote_relative)
        _copy_atomically(Path(local), target)
        if progress is not None:
            size = target.stat().st_size
            progress(size, size, remote_relative)
        return str(target)

    def start_agent(self, args: Sequence[str]) -> "LocalAgentProcess":
        python = str(self.device.get("python") or sys.executable)
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)  # the bundle folder alone, as on a device
        env["PYTHONUNBUFFERED"] = "1"
        try:
            proc = subprocess.Popen(
                [python, "-u", "-m", AGENT_MODULE, *[str(a) for a in args]],
                cwd=self.agent_dir, env=env, stdin=subprocess.PIPE,  # the host's heartbeat
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
            )
        except OSError as exc:
            raise InputError(f"cannot start the agent with python {python!r}: {exc.strerror or exc}") from exc
        return LocalAgentProcess(proc)

    def disk_free(self) -> tuple[str, Optional[int]]:
        """(the work folder, free bytes on its file system) for the check before a push."""
        probe = self.workdir
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        try:
            return str(self.workdir), shutil.disk_usage(probe).free
        except OSError:
            return str(self.workdir), None

    def pending_bytes(self, files: Sequence[tuple[Path, str]]) -> int:
        """Bytes a push of (local, path relative to the work folder) pairs would write."""
        need = 0
        for local, relative in files:
            target = inside(self.workdir, relative)
            if not (target.is_file() and _digest(target) == _digest(Path(local))):
                need += Path(local).stat().st_size
        return need

    def kill_group(self, pgid: int, tag: str) -> bool:
        """Kill a leftover agent's process group if its leader still carries `tag` (the benchmark id)."""
        try:
            cmdline = Path(f"/proc/{int(pgid)}/cmdline").read_bytes()
        except OSError:
            return False
        if tag.encode() not in cmdline or AGENT_MODULE.encode() not in cmdline:
            return False
        _killpg(int(pgid), signal.SIGTERM)
        time.sleep(CANCEL_GRACE_S / 5)
        _killpg(int(pgid), signal.SIGKILL)
        return True

    def close(self) -> None:
        pass


class LocalAgentProcess:
    """remote.transport.AgentProcess for a local subprocess."""

    link_lost = False  # a local pipe cannot drop

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None  # started with pipes
        self._stdin, self._stdout, self._stderr_pipe = proc.stdin, cast(io.BufferedReader, proc.stdout), proc.stderr
        self._stderr: collections.deque[str] = collections.deque(maxlen=200)
        self._lock = threading.Lock()
        self._cancelled = False
        self._err_thread = threading.Thread(target=self._read_stderr, name="agent-stderr", daemon=True)
        self._err_thread.start()

    def _read_stderr(self) -> None:
        for raw in iter(lambda: self._stderr_pipe.readline(8192), b""):  # bounded pieces of any line
            self._stderr.append(raw.decode("utf-8", "replace"))

    @property
    def pgid(self) -> int:
        return self.proc.pid  # a session (and group) of its own

    def heartbeat(self) -> None:
        """One line on the agent's stdin: the host is alive (the agent's --heartbeat-timeout)."""
        try:
            self._stdin.write(b"\n")
            self._stdin.flush()
        except (OSError, ValueError):
            pass  # the agent has gone

    def lines(self) -> Iterator[str]:
        from remote.linereader import read_lines

        for raw in read_lines(self._stdout.read1, "local"):  # bounded: LineTooLong past the cap
            yield raw.decode("utf-8", "replace").rstrip("\r")

    def cancel(self) -> None:
        with self._lock:
            if self._cancelled:
                return
            self._cancelled = True
        if self.proc.poll() is not None:
            return
        _killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=CANCEL_GRACE_S)
        except subprocess.TimeoutExpired:
            pass
        _killpg(self.proc.pid, signal.SIGKILL)  # whatever is left of the group

    def wait(self, timeout: Optional[float] = None) -> Optional[int]:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self._err_thread.join(timeout=2)
        return code

    def stderr_tail(self, max_chars: int = 2000) -> str:
        return "".join(self._stderr)[-max_chars:]


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
