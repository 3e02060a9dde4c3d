"""`SshTransport`: the benchmark's Transport (remote/transport.py) over an SSH session.

Everything lands inside the device's work folder (record field `workdir`, default `~/klmtui`):
the agent bundle in `<workdir>/agent/`, checkpoints wherever `put_file` is told, never outside
(`confined_path` + a realpath check on the device). Uploads go to a temp name and are renamed
into place (posix-rename), so a dropped link never leaves a half-written module; files whose
sha256 already matches are skipped. Every word sent to the remote shell is shell-quoted; the only
unquoted values are integers we parsed ourselves (the process group id).
"""

from __future__ import annotations

import collections
import hashlib
import posixpath
import re
import secrets
import shlex
import socket
import threading
import time
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Iterator, Optional, Sequence

from core.errors import InputError, OperationFailed
from remote.bundle import AGENT_MODULE
from remote.ssh import SshSession, SshUnreachable, connect, remote_word
from remote.transport import ProgressCallback

DEFAULT_WORKDIR = "~/klmtui"
DEFAULT_PYTHON = "python3"
PGID_MARK = "KLMTUI-PGID "
_CHUNK = 32768


def confined_path(workdir: str, relative: str) -> str:
    """`workdir/relative`, refusing anything that could land outside the work folder."""
    if not isinstance(relative, str) or not relative.strip():
        raise InputError("remote path is empty")
    if "\x00" in relative or "\n" in relative:
        raise InputError(f"remote path {relative!r} contains a control character")
    if relative.startswith("/") or relative.startswith("~"):
        raise InputError(f"remote path {relative!r} must be relative to the device's work folder")
    if ".." in PurePosixPath(relative).parts:
        raise InputError(f"remote path {relative!r} must not contain '..'")
    base = posixpath.normpath(workdir)
    full = posixpath.normpath(posixpath.join(base, relative))
    if not full.startswith(base.rstrip("/") + "/"):
        raise InputError(f"remote path {relative!r} resolves outside the work folder {base}")
    return full


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class SshTransport:
    """One device reached over SSH (connects lazily, on first use)."""

    def __init__(
        self,
        device: dict,
        *,
        home: Optional[Path] = None,
        timeout: Optional[float] = None,
        ssh_config: Optional[Path] = None,
        probe_interval: float = 15.0,
    ):
        self.device = device
        self.name = str(device.get("id") or device.get("name"))
        self._home, self._timeout, self._ssh_config = home, timeout, ssh_config
        self._session: Optional[SshSession] = None
        self._workdir: Optional[str] = None
        self.probe_interval = probe_interval
        self.last_push: dict = {"uploaded": [], "skipped": []}

    # -- connection
    @property
    def session(self) -> SshSession:
        if self._session is None or not self._session.alive():
            if self._session is not None:
                self._session.close()
            self._session = connect(self.device, home=self._home, timeout=self._timeout, ssh_config=self._ssh_config)
            self._workdir = None
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    # -- paths
    @property
    def workdir(self) -> str:
        """The absolute work folder on the device (`~` resolved through SFTP, not a shell)."""
        if self._workdir is None:
            raw = str(self.device.get("workdir") or DEFAULT_WORKDIR)
            if raw.startswith("/"):
                path = raw
            else:
                home = self._sftp_call("finding the home folder", self.session.sftp().normalize, ".")
                rest = raw[2:] if raw.startswith("~/") else ("" if raw == "~" else raw)
                path = posixpath.join(home, rest) if rest else home
            path = posixpath.normpath(path)
            if path == "/":
                raise InputError(f"device {self.name}: the work folder must not be /")
            self._workdir = path
        return self._workdir

    @property
    def agent_dir(self) -> str:
        return posixpath.join(self.workdir, "agent")

    def _sftp_error(self, what: str, exc: BaseException) -> OperationFailed:
        """One line for a failed SFTP/SSH step: a lost link, or the device's own complaint."""
        if self._session is not None and not self._session.alive():
            return SshUnreachable(f"device {self.name}: connection lost while {what}")
        if isinstance(exc, (IOError, OSError, EOFError)):
            return OperationFailed(f"device {self.name}: {what} failed: {exc}")
        return SshUnreachable(f"device {self.name}: {what} failed: {exc or type(exc).__name__}")

    def _sftp_call(self, what: str, fn: Any, *args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except Exception as exc:  # IOError from the server, paramiko.SSHException/EOFError on a lost link
            raise self._sftp_error(what, exc) from None

    def _makedirs(self, folder: str) -> None:
        """Create `folder` step by step; every step below the work folder must really (symlinks
        resolved on the device) stay inside it, checked before anything is created in it."""
        sftp = self.session.sftp()
        root = self.workdir.rstrip("/")
        real_root = None
        built = "/"
        for part in PurePosixPath(folder).parts[1:]:
            built = posixpath.join(built, part)
            try:
                sftp.stat(built)
            except FileNotFoundError:
                self._sftp_call(f"creating {built}", sftp.mkdir, built)
            except Exception as exc:
                raise self._sftp_error(f"looking at {built}", exc) from None
            if built.startswith(root + "/"):
                real_root = real_root or self._sftp_call("resolving the work folder", sftp.normalize, root)
                real = self._sftp_call(f"resolving {built}", sftp.normalize, built)
                if not real.startswith(real_root.rstrip("/") + "/"):
                    raise InputError(
                        f"device {self.name}: {built} resolves to {real}, outside the work folder {real_root}"
                    )

    # -- uploads
    def remote_sha256(self, folder: str, relatives: Iterable[str]) -> dict[str, str]:
        """sha256 of files under a remote folder (missing files are simply absent from the result)."""
        names = list(relatives)
        if not names:
            return {}
        command = (
            f"cd -- {shlex.quote(folder)} 2>/dev/null || exit 0; "
            f"sha256sum -- {' '.join(shlex.quote(n) for n in names)} 2>/dev/null; exit 0"
        )
        status, out, _ = self.session.run(command, timeout=120)
        found = {}
        for line in out.splitlines():
            digest, _, name = line.partition("  ")
            if re.fullmatch(r"[0-9a-f]{64}", digest) and name in names:
                found[name] = digest
        return found

    def _upload(self, local: Path, remote: str, done: int, total: int, label: str, progress: Optional[ProgressCallback]) -> int:
        sftp = self.session.sftp()
        folder, base = posixpath.split(remote)
        temp = posixpath.join(folder, f".{base}.klmtui-tmp-{secrets.token_hex(4)}")

        def report(sent: int, _size: int) -> None:
            if progress is not None:
                progress(done + sent, total, label)

        try:
            with open(local, "rb") as fh:
                self._sftp_call(f"uploading {label}", sftp.putfo, fh, temp, local.stat().st_size, report, True)
            self._rename(sftp, temp, remote, label)
        except BaseException:
            try:
                sftp.remove(temp)
            except Exception:
                pass
            raise
        return done + local.stat().st_size

    def _rename(self, sftp: Any, temp: str, remote: str, label: str) -> None:
        """posix-rename@openssh.com (atomic replace); servers without it get remove + rename."""
        try:
            sftp.posix_rename(temp, remote)
            return
        except IOError as exc:
            if "unsupported" not in str(exc).lower() and "not supported" not in str(exc).lower():
                raise self._sftp_error(f"renaming {label} into place", exc) from None
        except Exception as exc:
            raise self._sftp_error(f"renaming {label} into place", exc) from None
        try:
            sftp.remove(remote)
        except IOError:
            pass
        self._sftp_call(f"renaming {label} into place", sftp.rename, temp, remote)

    def push(self, files: Sequence[tuple[Path, str]], folder: str, progress: Optional[ProgressCallback] = None) -> str:
        """Upload (local path, relative path) pairs under `folder` (relative to the work folder),
        skipping files whose sha256 already matches; returns the absolute remote folder."""
        root = self.workdir if folder in ("", ".") else confined_path(self.workdir, folder)
        wanted = [(Path(local), confined_path(root, rel), rel) for local, rel in files]
        local_sums = {rel: _sha256(local) for local, _, rel in wanted}
        remote_sums = self.remote_sha256(root, local_sums)
        todo = [w for w in wanted if remote_sums.get(w[2]) != local_sums[w[2]]]
        self.last_push = {"uploaded": [w[2] for w in todo], "skipped": [w[2] for w in wanted if w not in todo]}
        total = sum(local.stat().st_size for local, _, _ in todo)
        done = 0
        self._makedirs(root)
        for local, remote, rel in todo:
            self._makedirs(posixpath.dirname(remote))
            done = self._upload(local, remote, done, total, rel, progress)
        if progress is not None:
            progress(done, total, "")
        return root

    def prepare(self, progress: Optional[ProgressCallback] = None) -> str:
        """Push the agent bundle (remote.bundle.bundle_files) into `<workdir>/agent/`."""
        from remote.bundle import bundle_files

        return self.push(bundle_files(), "agent", progress)

    def put_file(self, local: Path, remote_relative: str, progress: Optional[ProgressCallback] = None) -> str:
        """Upload one file into the work folder (e.g. `checkpoints/t-1234abcd.pt`); returns its path."""
        remote = confined_path(self.workdir, remote_relative)
        folder = posixpath.dirname(remote)
        rel_folder = posixpath.relpath(folder, self.workdir)
        self.push([(Path(local), posixpath.basename(remote))], rel_folder, progress)
        return remote

    # -- before a push (remote.bench.check_space)
    def disk_free(self) -> tuple[str, Optional[int]]:
        """(the work folder, free bytes on the device's file system holding it; None if unknown)."""
        folder = self.workdir
        script = (f"p={shlex.quote(folder)}; while [ ! -e \"$p\" ] && [ \"$p\" != / ]; do p=$(dirname -- \"$p\"); done; "
                  "df -Pk -- \"$p\" 2>/dev/null | tail -n 1")
        status, out, _ = self.session.run(f"sh -c {shlex.quote(script)}", timeout=60)
        fields = out.split()
        if status != 0 or len(fields) < 4 or not fields[3].isdigit():
            return folder, None
        return folder, int(fields[3]) * 1024

    def pending_bytes(self, files: Sequence[tuple[Path, str]]) -> int:
        """Bytes a push of (local, path relative to the work folder) pairs would write (changed files)."""
        wanted = {rel: Path(local) for local, rel in files}
        remote = self.remote_sha256(self.workdir, wanted)
        return sum(local.stat().st_size for rel, local in wanted.items() if remote.get(rel) != _sha256(local))

    def kill_group(self, pgid: int, tag: str) -> bool:
        """Kill a leftover agent's process group on the device, only if its leader's command line
        still carries `tag` (the benchmark id): a recycled group id is left alone."""
        pgid = int(pgid)
        if pgid <= 1 or not re.fullmatch(r"[A-Za-z0-9-]{1,64}", tag):
            return False
        script = (
            f"tr '\\000' ' ' < /proc/{pgid}/cmdline 2>/dev/null | grep -q -e {shlex.quote(tag)} || exit 3; "
            f"kill -TERM -{pgid} 2>/dev/null; i=0; "
            f"while kill -0 -{pgid} 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; "
            f"kill -KILL -{pgid} 2>/dev/null; exit 0"
        )
        status, _, _ = self.session.run(f"sh -c {shlex.quote(script)}", timeout=30)
        return status == 0

    # -- the agent
    def agent_command(self, args: Sequence[str]) -> str:
        """The remote shell command: every word quoted; `setsid` gives the agent its own process
        group, whose id the inner shell prints first (`exec` keeps that pid for python)."""
        python = remote_word(str(self.device.get("python") or DEFAULT_PYTHON))
        inner = f'echo "{PGID_MARK}$$"; exec "$0" "$@"'
        words = " ".join(shlex.quote(str(a)) for a in args)
        return (
            f"cd -- {shlex.quote(self.agent_dir)} && exec setsid -w sh -c {shlex.quote(inner)} "
            f"{python} -u -m {AGENT_MODULE} {words}"
        ).rstrip()

    def start_agent(self, args: Sequence[str]) -> "SshAgentProcess":
        session = self.session
        channel = session.open_exec(self.agent_command(args))
        return SshAgentProcess(session, channel, self.name, probe_interval=self.probe_interval)


class SshAgentProcess:
    """The agent running on the device: streamed stdout lines, a stderr tail, group cancel."""

    def __init__(self, session: SshSession, channel: Any, device: str, probe_interval: float = 15.0):
        self._session, self._channel, self._device = session, channel, device
        self._stderr: collections.deque[bytes] = collections.deque()
        self._stderr_size = 0
        self._pgid: Optional[int] = None
        self._pgid_known = threading.Event()
        self._cancelled = False
        self._lock = threading.Lock()
        self.link_lost = False
        self.probe_interval = probe_interval

    @property
    def pgid(self) -> Optional[int]:
        return self._pgid

    def _drain_stderr(self) -> None:
        try:
            while self._channel.recv_stderr_ready():
                data = self._channel.recv_stderr(_CHUNK)
                if not data:
                    break
                self._stderr.append(data)
                self._stderr_size += len(data)
                while self._stderr_size > 65536 and len(self._stderr) > 1:
                    self._stderr_size -= len(self._stderr.popleft())
        except Exception:
            pass

    def _link_alive(self) -> bool:
        """A real round trip: open (and close) a channel. A silent network drop fails this."""
        try:
            probe = self._session.transport.open_session(timeout=self._session.timeout)
            probe.close()
            return True
        except Exception:
            return False

    def _line(self, raw: bytes) -> Optional[str]:
        text = raw.decode("utf-8", "replace").rstrip("\r")
        if self._pgid is None and text.startswith(PGID_MARK):
            digits = text[len(PGID_MARK) :].strip()
            if digits.isdigit() and int(digits) > 1:
                self._pgid = int(digits)
            self._pgid_known.set()
            return None
        return text

    def lines(self) -> Iterator[str]:
        """stdout lines as they arrive; ends at EOF, on cancel, or when the link is gone."""
        from remote.linereader import LineSplitter

        channel = self._channel
        channel.settimeout(1.0)
        splitter = LineSplitter(self._device)  # bounded: a huge or endless line raises LineTooLong
        last_data = time.monotonic()
        try:
            while True:
                self._drain_stderr()
                try:
                    data = channel.recv(_CHUNK)
                except socket.timeout:
                    if self._cancelled or channel.closed:
                        break
                    if not self._session.alive():
                        self.link_lost = True
                        break
                    if time.monotonic() - last_data > self.probe_interval:
                        if not self._link_alive():
                            self.link_lost = True
                            self._session.close()
                            break
                        last_data = time.monotonic()
                    continue
                except Exception:
                    self.link_lost = not self._session.alive()
                    break
                if not data:
                    break
                last_data = time.monotonic()
                for raw in splitter.feed(data):
                    line = self._line(raw)
                    if line is not None:
                        yield line
            rest = splitter.rest()
            if rest:
                line = self._line(rest)
                if line is not None:
                    yield line
        finally:
            self._drain_stderr()
            self._pgid_known.set()
            if not self._session.alive():
                self.link_lost = True

    def heartbeat(self) -> None:
        """One line on the agent's stdin over the session: the host is alive (--heartbeat-timeout)."""
        try:
            if not self._channel.closed and self._channel.send_ready():
                self._channel.send(b"\n")
        except Exception:
            pass  # a dropped link: the agent stops itself when the beats stay away

    def wait(self, timeout: Optional[float] = None) -> Optional[int]:
        """The agent's exit status; None if the link dropped (or timeout passed) before one came."""
        channel = self._channel
        if not channel.status_event.wait(timeout):
            return None
        self._drain_stderr()
        status = channel.exit_status
        return None if status == -1 else status

    def cancel(self) -> None:
        """TERM the agent's process group (and its session), then KILL what is left; close the channel."""
        with self._lock:
            if self._cancelled:
                return
            self._cancelled = True
        self._pgid_known.wait(timeout=5)
        pgid = self._pgid
        if pgid is not None and pgid > 1 and self._session.alive():
            script = (
                f"kill -TERM -{pgid} 2>/dev/null || exit 0; i=0; "
                f"while kill -0 -{pgid} 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; "
                f"kill -KILL -{pgid} 2>/dev/null; "
                f"command -v pkill >/dev/null 2>&1 && pkill -KILL -s {pgid} 2>/dev/null; exit 0"
            )
            try:
                self._session.run(f"sh -c {shlex.quote(script)}", timeout=20)
            except Exception:
                pass  # the link may be gone; nothing more we can do from here
        try:
            self._channel.close()
        except Exception:
            pass

    def stderr_tail(self, max_chars: int = 2000) -> str:
        self._drain_stderr()
        text = b"".join(self._stderr).decode("utf-8", "replace")
        return text[-max_chars:]
