"""SSH sessions to devices: ~/.ssh/config, keys and the agent, verified host keys, timeouts.

`connect(device)` turns a device record (store table `devices`) into an authenticated
`SshSession`. The record's `host` is looked up in `~/.ssh/config` like `ssh` would (HostName,
User, Port, IdentityFile, IdentitiesOnly, ProxyCommand, ProxyJump, UserKnownHostsFile,
HostKeyAlias); explicit record fields win over the config. Authentication uses keys only: the
record's key file, the config's IdentityFiles, the ssh-agent and the default keys. No password is
ever asked for or stored. Host keys are verified (remote.hostkeys); an unknown key raises
`UnknownHostKey` with its fingerprint, `fetch_host_key` + `remote.hostkeys.record` is the trust flow.

`SshTransport` (remote.transport.Transport over SSH) lives in remote.ssh_transport, which
imports this module (never the other way round). paramiko is imported lazily: the CLI starts
without it.
"""

from __future__ import annotations

import getpass
import os
import re
import shlex
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

from core import settings
from core.errors import InputError, OperationFailed
from remote.deadlines import DEFAULT_ALIVE_COUNT_MAX, DEFAULT_ALIVE_INTERVAL_S, Keepalive, Overdue, bounded
from remote.sshauth import SshAuthFailed, authenticate
from remote.hostkeys import ChangedHostKey, RevokedHostKey, UnknownHostKey, host_entry, known_keys, verify

DEFAULT_TIMEOUT = settings.DEFAULT_SSH_TIMEOUT_S  # seconds: TCP connect, SSH banner, auth, channel opening
MAX_JUMPS = 8
MAX_COMMAND_OUTPUT = 4 << 20  # bytes a short remote command (device check, sha256sum, df) may write

__all__ = [
    "klmtui_home",
    "klmtui_known_hosts",
    "ssh_timeout",
    "SshTarget",
    "SshSession",
    "SshUnreachable",
    "SshAuthFailed",
    "UnknownHostKey",
    "ChangedHostKey",
    "resolve_target",
    "connect",
    "fetch_host_key",
    "remote_word",
    "PresentedKey",
]


def klmtui_home() -> Path:
    """klmtui's own folder (known_hosts lives here): `core.settings.home()`."""
    return settings.home()


def klmtui_known_hosts(home: Optional[Path] = None) -> Path:
    return settings.known_hosts(home)


def ssh_timeout(value: Optional[float] = None) -> float:
    """The connect/banner/auth timeout: the argument, else $KLMTUI_SSH_TIMEOUT, else 10 s."""
    return settings.ssh_timeout(value)


# What OpenSSH refuses in a host name given to it (ssh.c valid_hostname, its fix for
# CVE-2023-51385), plus what would change meaning in an ssh_config line or a known_hosts pattern
# (`*?!,#=%` and quotes): such a name could run commands through `%h` in a ProxyCommand.
_HOST_FORBIDDEN = set("'`\"$\\;&<>|(){}*?!,#=%")
_USER_RE = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]{0,63}")
MAX_HOST_LEN = 253


def check_host(value: object, what: str = "host") -> str:
    """A host name, IP or ssh_config alias as OpenSSH would accept it (InputError otherwise)."""
    from core.safetext import visible

    host = value if isinstance(value, str) else ""
    bad = sorted({c for c in host if c in _HOST_FORBIDDEN or c.isspace() or not c.isprintable()})
    if not host or host.startswith("-") or len(host) > MAX_HOST_LEN or bad:
        why = (
            "is empty" if not host else "starts with '-'" if host.startswith("-")
            else f"is longer than {MAX_HOST_LEN} characters" if len(host) > MAX_HOST_LEN
            else "contains " + " ".join(repr(c) for c in bad)
        )  # fmt: skip
        raise InputError(
            f"{what} {visible(repr(value), limit=80)} is not a valid host name: it {why} (OpenSSH refuses"
            " shell characters, spaces and a leading '-' in host names)"
        )
    return host


def check_user(value: object, what: str = "user") -> str:
    """A login name: letters, digits, '.', '_', '-' (not first), at most 64 (InputError otherwise)."""
    from core.safetext import visible

    if not isinstance(value, str) or not _USER_RE.fullmatch(value):
        raise InputError(
            f"{what} {visible(repr(value), limit=80)} is not a valid user name: use letters, digits, '.', '_'"
            " or '-' (not first), at most 64"
        )
    return value


class SshUnreachable(OperationFailed):
    """No SSH conversation with the host: refused, no answer, no banner, DNS failure, link lost."""


def remote_word(value: str) -> str:
    """Quote one word for the remote POSIX shell, keeping a leading `~/` meaning the home folder."""
    if value == "~":
        return '"$HOME"'
    if value.startswith("~/"):
        return '"$HOME"/' + shlex.quote(value[2:])
    return shlex.quote(value)


@dataclass
class SshTarget:
    """Where and how to connect, after ~/.ssh/config is applied."""

    device: str  # the device name, for messages
    alias: str  # what the record says (a Host pattern in ~/.ssh/config, or a plain host name)
    hostname: str
    port: int
    user: str
    key_files: list[str] = field(default_factory=list)
    identities_only: bool = False
    proxy_command: Optional[str] = None
    proxy_jump: list[str] = field(default_factory=list)
    known_hosts: list[Path] = field(default_factory=list)  # the user's and system's files, read only
    certificate_files: list[str] = field(default_factory=list)  # CertificateFile
    host_key_alias: Optional[str] = None
    connect_timeout: Optional[float] = None  # ConnectTimeout
    alive_interval: float = DEFAULT_ALIVE_INTERVAL_S  # ServerAliveInterval (0: off, as in ssh)
    alive_count_max: int = DEFAULT_ALIVE_COUNT_MAX  # ServerAliveCountMax

    @property
    def entry(self) -> str:
        """The known_hosts name of this host: `[host]:port` unless port 22; a HostKeyAlias is
        filed bare, whatever the port (as OpenSSH does)."""
        return self.host_key_alias or host_entry(self.hostname, self.port)

    @property
    def where(self) -> str:
        return f"{self.user}@{self.hostname}:{self.port}"


def _ssh_config(path: Optional[Path], alias: str, overrides: dict) -> Any:
    """The parsed ~/.ssh/config, with the record's explicit fields as a first `Host` stanza, so that
    they win (first value wins, as in ssh) and %p/%r in ProxyCommand expand to them."""
    import paramiko

    from remote.sshconfig import config_text

    text = config_text(path, alias)  # Include expanded; the system file after the user's (as ssh)
    path = Path(path) if path is not None else Path(os.path.expanduser("~/.ssh/config"))
    first = "".join(f"  {key} {value}\n" for key, value in overrides.items() if value is not None)
    if first and alias and not any(c.isspace() for c in alias):
        text = f"Host {alias}\n{first}\n" + text
    try:
        return paramiko.SSHConfig.from_text(text)
    except Exception as exc:  # paramiko raises ConfigParseError and friends
        raise InputError(f"cannot read SSH config {path}: {exc}") from None


def _parse_port(value: Any, what: str) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise InputError(f"{what}: port must be a number, not {value!r}") from None
    if not 1 <= port <= 65535:
        raise InputError(f"{what}: port {port} is out of range 1-65535")
    return port


def _as_list(value: Any) -> list[str]:
    """paramiko keeps a repeated keyword as a list only for some (IdentityFile), else one string."""
    return [] if value is None else [value] if isinstance(value, str) else list(value)


def _config_number(found: Any, key: str, name: str, default: Any, least: float) -> Any:
    """A numeric ssh_config value (ConnectTimeout, ServerAlive*), InputError naming it if bad."""
    raw = found.get(key.lower())
    if raw is None or str(raw).lower() == "none":
        return default
    try:
        value = type(default)(raw) if default is not None else float(raw)
    except (TypeError, ValueError):
        raise InputError(f"device {name}: {key} {raw!r} in the SSH config is not a number") from None
    if value < least:
        raise InputError(f"device {name}: {key} {raw!r} in the SSH config must be >= {least:g}")
    return value


def _split_jump(spec: str) -> tuple[Optional[str], str, Optional[int]]:
    """`[user@]host[:port]` (also `ssh://user@host:port`) from a ProxyJump list."""
    spec = spec.strip()
    if spec.startswith("ssh://"):
        spec = spec[len("ssh://") :]
    user, _, hostport = spec.rpartition("@")
    host, port = hostport, None
    if hostport.startswith("["):  # [v6]:port
        host, _, rest = hostport[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else None
    elif hostport.count(":") == 1:
        host, port_text = hostport.split(":")
        port = _parse_port(port_text, f"ProxyJump {spec}")
    return (user or None), host, port


def resolve_target(
    device: Mapping[str, Any],
    *,
    ssh_config: Optional[Path] = None,
    jump: Optional[str] = None,
) -> SshTarget:
    """Apply ~/.ssh/config to a device record (or, with `jump`, to one ProxyJump hop)."""
    name = device.get("id") or device.get("name") or "?"
    if jump is not None:
        jump_user, alias, jump_port = _split_jump(jump)
        record_user, record_port, record_key = jump_user, jump_port, None
    else:
        alias = str(device.get("host") or "")
        record_user, record_port, record_key = device.get("user"), device.get("port"), device.get("key")
    if not alias:
        raise InputError(f"device {name} has no host")
    # Checked every time a record is used, not only at `device add`: a shared runs.json may carry anything.
    check_host(alias, f"device {name}: {'ProxyJump host' if jump is not None else 'host'}")
    if record_user is not None:
        check_user(record_user, f"device {name}: user")
    if record_port is not None:
        record_port = _parse_port(record_port, f"device {name}")
    config = _ssh_config(ssh_config, alias, {"Port": record_port, "User": record_user})
    try:
        found = config.lookup(alias)
    except ImportError:  # paramiko needs the optional `invoke` package for `Match exec`
        raise InputError(f"device {name}: `Match exec` in the SSH config needs the Python package invoke (pip install invoke)") from None
    except Exception as exc:  # a Match paramiko cannot evaluate, a bad token
        raise InputError(f"device {name}: cannot apply the SSH config: {' '.join(str(exc).split())[:200]}") from None
    port = _parse_port(record_port or found.get("port") or 22, f"device {name}")
    keys = [str(Path(record_key).expanduser())] if record_key else []
    keys += [os.path.expanduser(k) for k in found.get("identityfile", []) if os.path.exists(os.path.expanduser(k))]
    known_files = str(found.get("userknownhostsfile", "~/.ssh/known_hosts ~/.ssh/known_hosts2")).split()
    known_files += str(found.get("globalknownhostsfile", "/etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2")).split()
    known = [Path(os.path.expanduser(p)) for p in known_files]
    proxy_jump = found.get("proxyjump")
    proxy_command = found.get("proxycommand")
    # %h/%r in a ProxyCommand expand to these two: both validated, whatever their source.
    hostname = check_host(found.get("hostname") or alias, f"device {name}: HostName")
    user = check_user(record_user or found.get("user") or getpass.getuser(), f"device {name}: user")
    return SshTarget(
        device=name,
        alias=alias,
        hostname=hostname,
        port=port,
        user=user,
        key_files=keys,
        identities_only=str(found.get("identitiesonly", "no")).lower() == "yes",
        proxy_command=None if not proxy_command or proxy_command.lower() == "none" else proxy_command,
        proxy_jump=[] if not proxy_jump or proxy_jump.lower() == "none" else proxy_jump.split(","),
        known_hosts=known,
        host_key_alias=found.get("hostkeyalias"),
        certificate_files=[os.path.expanduser(c) for c in _as_list(found.get("certificatefile"))],
        connect_timeout=_config_number(found, "ConnectTimeout", name, None, 0) or None,
        alive_interval=_config_number(found, "ServerAliveInterval", name, DEFAULT_ALIVE_INTERVAL_S, 0),
        alive_count_max=_config_number(found, "ServerAliveCountMax", name, DEFAULT_ALIVE_COUNT_MAX, 1),
    )


def _known_host_files(target: SshTarget, home: Optional[Path]) -> list[Path]:
    return [klmtui_known_hosts(home), *target.known_hosts]


CERT_TYPES = [
    "ssh-ed25519-cert-v01@openssh.com", "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com", "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "rsa-sha2-512-cert-v01@openssh.com", "rsa-sha2-256-cert-v01@openssh.com",
]  # fmt: skip


def _preferred_types(known: list) -> list[str]:
    """Host key algorithms to ask for first, as ssh does: certificates when a @cert-authority
    line names the host, then the types known_hosts records for it."""
    first = CERT_TYPES[:] if any(k.cert_authority for k in known) else []
    return first + [k.key_type for k in known if not k.revoked and not k.cert_authority]


def _transport_factory(preferred: list[str]):
    """A paramiko Transport that asks first for the key types we already know (as ssh does)."""
    import paramiko

    order: list[str] = []
    for key_type in preferred:
        order += ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] if key_type == "ssh-rsa" else [key_type]

    def make(sock: Any, disabled_algorithms: Any = None) -> Any:
        transport = paramiko.Transport(sock, disabled_algorithms=disabled_algorithms)
        options = transport.get_security_options()
        available = list(options.key_types)
        first = [k for k in order if k in available or k in CERT_TYPES]
        if first:
            options.key_types = first + [k for k in available if k not in first]
        return transport

    return make


def _tcp(target: SshTarget, timeout: float) -> socket.socket:
    try:
        return socket.create_connection((target.hostname, target.port), timeout=timeout)
    except socket.gaierror:
        raise SshUnreachable(f"device {target.device}: cannot resolve host {target.hostname!r}") from None
    except ConnectionRefusedError:
        raise SshUnreachable(
            f"device {target.device}: connection refused by {target.hostname}:{target.port} (is sshd running?)"
        ) from None
    except (socket.timeout, TimeoutError):
        raise SshUnreachable(
            f"device {target.device}: no answer from {target.hostname}:{target.port} within {timeout:g} s"
        ) from None
    except OSError as exc:
        raise SshUnreachable(f"device {target.device}: cannot reach {target.hostname}:{target.port}: {exc.strerror or exc}") from None


def _open_socket(target: SshTarget, timeout: float, home: Optional[Path], ssh_config: Optional[Path], hops: list, depth: int) -> Any:
    """A connected byte stream to the target: TCP, a ProxyCommand, or a direct-tcpip channel via ProxyJump."""
    import paramiko

    if target.proxy_jump:
        if depth >= MAX_JUMPS:
            raise InputError(f"device {target.device}: ProxyJump chain is longer than {MAX_JUMPS} hops (a loop?)")
        *earlier, last = target.proxy_jump
        hop = resolve_target({"id": target.device}, ssh_config=ssh_config, jump=last)
        if earlier:
            hop.proxy_jump = earlier
        jump_client = _connect_client(hop, timeout, home, ssh_config, hops, depth + 1)
        hops.append(jump_client)
        try:
            return jump_client.get_transport().open_channel(
                "direct-tcpip", (target.hostname, target.port), ("127.0.0.1", 0), timeout=timeout
            )
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise SshUnreachable(
                f"device {target.device}: jump host {hop.hostname} cannot reach {target.hostname}:{target.port}: {exc}"
            ) from None
    if target.proxy_command:
        try:
            proxy = paramiko.ProxyCommand(target.proxy_command)
        except Exception as exc:
            raise SshUnreachable(f"device {target.device}: ProxyCommand failed to start: {exc}") from None
        proxy.settimeout(timeout)
        return proxy
    return _tcp(target, timeout)


def _quiet_paramiko() -> None:
    """paramiko logs failed handshakes with tracebacks; our errors already say it in one line."""
    import logging

    logger = logging.getLogger("paramiko")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())


def _connect_client(target: SshTarget, timeout: float, home: Optional[Path], ssh_config: Optional[Path], hops: list, depth: int = 0) -> Any:
    _quiet_paramiko()

    files = _known_host_files(target, home)
    sock = _open_socket(target, timeout, home, ssh_config, hops, depth)
    transport = None
    try:
        known = known_keys(files, target.entry)
        transport = _transport_factory(_preferred_types(known))(sock)
        transport.banner_timeout = timeout
        transport.auth_timeout = timeout
        # With our own socket this bounds key exchange; the banner timeout speaks first.
        transport.start_client(timeout=2 * timeout)
        # The host key is verified before anything is sent to the host (no key offered, nothing run).
        verify(known, target.device, target.entry, transport.get_remote_server_key())
        authenticate(transport, target, f"device {target.device} ({target.where})")
    except BaseException as exc:
        if transport is not None:
            _close_quietly(transport)
        _close_quietly(sock)
        raise _explain(exc, target, timeout) from None
    client = _Client(transport)
    # OpenSSH's ServerAlive*: a peer that stops answering closes the transport within the window.
    client.klmtui_keepalive = Keepalive(transport, target.alive_interval, target.alive_count_max,
                                        f"{target.hostname}:{target.port}").start()
    return client


class _Client:
    """An authenticated transport, with the bits of paramiko.SSHClient the session uses."""

    def __init__(self, transport: Any):
        self._transport = transport
        self.klmtui_keepalive: Optional[Keepalive] = None

    def get_transport(self) -> Any:
        return self._transport

    def open_sftp(self) -> Any:
        import paramiko

        return paramiko.SFTPClient.from_transport(self._transport)

    def close(self) -> None:
        self._transport.close()


def _close_quietly(thing: Any) -> None:
    try:
        thing.close()
    except Exception:
        pass


def _explain(exc: BaseException, target: SshTarget, timeout: float) -> BaseException:
    """One clear line for what went wrong while connecting (KlmtuiErrors pass through)."""
    import paramiko

    from core.errors import KlmtuiError

    if isinstance(exc, KlmtuiError) or not isinstance(exc, Exception):
        return exc
    who = f"device {target.device} ({target.where})"
    if isinstance(exc, paramiko.PasswordRequiredException):
        return SshAuthFailed(f"{who}: the private key is passphrase-protected; load it into ssh-agent (ssh-add) first")
    if isinstance(exc, paramiko.AuthenticationException):
        tried = ", ".join(target.key_files) if target.key_files else "no key file"
        agent = "" if target.identities_only else " plus ssh-agent and default keys"
        return SshAuthFailed(f"{who}: authentication failed (tried {tried}{agent}; klmtui never uses passwords)")
    text = str(exc)
    if "banner" in text.lower():
        return SshUnreachable(f"{who}: no SSH banner within {timeout:g} s (is this an SSH server?)")
    if text in ("No existing session", "Negotiation failed."):
        return SshUnreachable(f"{who}: the SSH handshake did not complete within {2 * timeout:g} s")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return SshUnreachable(f"{who}: timed out after {timeout:g} s")
    if isinstance(exc, (paramiko.SSHException, EOFError, OSError)):
        return SshUnreachable(f"{who}: SSH connection failed: {text or type(exc).__name__}")
    return OperationFailed(f"{who}: {type(exc).__name__}: {text}")


class SshSession:
    """An authenticated connection (plus any jump hosts), with helpers for commands and SFTP."""

    def __init__(self, client: Any, target: SshTarget, hops: list, timeout: float):
        self.client, self.target, self.hops, self.timeout = client, target, hops, timeout
        self._sftp: Any = None  # paramiko's SFTPClient, opened on first use
        self._overdue: Optional[str] = None
        # A single read may wait this long before it gives up (keepalive ends a dead link sooner).
        self.read_timeout = max(timeout, target.alive_interval * target.alive_count_max)

    @property
    def transport(self) -> Any:
        return self.client.get_transport()

    def alive(self) -> bool:
        transport = self.transport
        return transport is not None and transport.is_active()

    def lost_reason(self) -> Optional[str]:
        """Why the link is gone, when klmtui itself concluded it (keepalive, a deadline), else None."""
        keepalives = [getattr(c, "klmtui_keepalive", None) for c in (self.client, *self.hops)]
        return self._overdue or next((k.reason for k in keepalives if k is not None and k.reason), None)

    def _fail(self, what: str, exc: BaseException) -> OperationFailed:
        reason = self.lost_reason()
        if reason:
            return SshUnreachable(f"device {self.target.device}: {what} failed: {reason}")
        if "Timeout opening channel" in str(exc):
            return SshUnreachable(
                f"device {self.target.device}: {what} failed: no answer from {self.target.hostname}:{self.target.port}"
                f" within {self.timeout:g} s"
            )
        return SshUnreachable(f"device {self.target.device}: {what} failed: {exc or type(exc).__name__}")

    def _bounded(self, what: str, fn: Any) -> Any:
        """A paramiko call that can wait forever, given `self.timeout`; on expiry the link is closed."""

        def give_up() -> None:
            self._overdue = f"no answer from {self.target.hostname}:{self.target.port} within {self.timeout:g} s while {what}"
            _close_quietly(self.client)

        try:
            return bounded(fn, self.timeout, give_up)
        except Overdue:
            raise SshUnreachable(f"device {self.target.device}: {self._overdue}") from None

    def open_exec(self, command: str) -> Any:
        """Start `command` in the remote login shell; return the paramiko channel. Both the channel
        and the exec request are bounded by the session timeout (paramiko waits forever on exec)."""
        import paramiko

        try:
            channel = self.transport.open_session(timeout=self.timeout)
            self._bounded("starting a remote command", lambda: channel.exec_command(command))
        except (paramiko.SSHException, OSError, EOFError, AttributeError) as exc:
            raise self._fail("starting a remote command", exc) from None
        return channel

    def run(self, command: str, timeout: float = 120.0, max_bytes: int = MAX_COMMAND_OUTPUT) -> tuple[int, str, str]:
        """Run a short command to completion: (exit status, stdout, stderr); SshUnreachable if the
        link dropped (keepalive, deadline) before an exit status came, -1 if the server sent none.
        Output is bounded: more than `max_bytes` (stdout + stderr) stops the command, OperationFailed."""
        channel = self.open_exec(command)
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout
        try:
            while True:
                busy = False
                if channel.recv_ready():
                    out += channel.recv(65536)
                    busy = True
                if channel.recv_stderr_ready():
                    err += channel.recv_stderr(65536)
                    busy = True
                if busy:
                    if len(out) + len(err) > max_bytes:
                        raise OperationFailed(
                            f"device {self.target.device}: a remote command wrote more than {max_bytes // 1024} KiB; stopped"
                        )
                    continue
                if channel.closed or (channel.exit_status_ready() and channel.eof_received):
                    break
                if not self.alive():
                    raise self._fail("a remote command", EOFError("connection lost"))
                if time.monotonic() > deadline:
                    raise OperationFailed(f"device {self.target.device}: remote command timed out after {timeout:g} s")
                time.sleep(0.01)
            status = channel.exit_status if channel.exit_status_ready() else -1
            if status == -1 and not self.alive():  # the link died under the command: say so, once
                raise self._fail("a remote command", EOFError("connection lost"))
        finally:
            channel.close()
        return status, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

    def sftp(self) -> Any:
        import paramiko

        if self._sftp is None:
            try:
                self._sftp = self._bounded("starting SFTP", self.client.open_sftp)
            except (paramiko.SSHException, OSError, EOFError) as exc:
                raise self._fail("opening SFTP", exc) from None
            self._sftp.get_channel().settimeout(self.read_timeout)  # every SFTP reply read is bounded
        return self._sftp

    def close(self) -> None:
        if self._sftp is not None:
            _close_quietly(self._sftp)
            self._sftp = None
        for client in (self.client, *reversed(self.hops)):
            keepalive = getattr(client, "klmtui_keepalive", None)
            if keepalive is not None:
                keepalive.stop()
            _close_quietly(client)


def _timeout_for(target: SshTarget, timeout: Optional[float]) -> float:
    """The argument, else $KLMTUI_SSH_TIMEOUT, else the config's ConnectTimeout, else 10 s."""
    if timeout is None and settings.SSH_TIMEOUT_ENV not in os.environ and target.connect_timeout:
        return float(target.connect_timeout)
    return ssh_timeout(timeout)


def connect(
    device: Mapping[str, Any],
    *,
    home: Optional[Path] = None,
    timeout: Optional[float] = None,
    ssh_config: Optional[Path] = None,
) -> SshSession:
    """Open an authenticated, host-key-verified session to a device record."""
    target = resolve_target(device, ssh_config=ssh_config)
    seconds = _timeout_for(target, timeout)
    hops: list = []
    try:
        client = _connect_client(target, seconds, home, ssh_config, hops)
    except BaseException:
        for hop in reversed(hops):
            _close_quietly(hop)
        raise
    return SshSession(client, target, hops, seconds)


@dataclass
class PresentedKey:
    """What a host showed during key exchange, and what our known_hosts files say about it."""

    device: str
    entry: str  # known_hosts name, `[host]:port` for non-22 ports
    key: Any  # paramiko.PKey
    key_type: str
    fingerprint: str
    status: str  # "trusted" | "unknown" | "changed" | "revoked"
    expected_fingerprint: Optional[str] = None  # the recorded key when status == "changed"
    hop: bool = False  # True: a ProxyJump host on the way, not the device itself


def fetch_host_key(
    device: Mapping[str, Any],
    *,
    home: Optional[Path] = None,
    timeout: Optional[float] = None,
    ssh_config: Optional[Path] = None,
) -> PresentedKey:
    """Key-exchange with the device (no authentication, nothing run) and report its host key.

    With ProxyJump, the first jump host whose key is not trusted yet is reported instead
    (`hop=True`): trust it, then ask again. `status` tells whether the key is already trusted,
    unknown, changed (differs from the recorded one) or revoked.
    """
    from remote.hostkeys import fingerprint

    _quiet_paramiko()
    target = resolve_target(device, ssh_config=ssh_config)
    seconds = _timeout_for(target, timeout)
    files = _known_host_files(target, home)
    hops: list = []
    sock = None
    transport = None
    try:
        try:
            sock = _open_socket(target, seconds, home, ssh_config, hops, 0)
        except (UnknownHostKey, ChangedHostKey) as hop:  # a jump host on the way is not trusted
            changed = isinstance(hop, ChangedHostKey)
            return PresentedKey(
                target.device, hop.host_entry, hop.key, hop.key_type, hop.fingerprint,
                "changed" if changed else "unknown", getattr(hop, "expected_fingerprint", None), hop=True,
            )  # fmt: skip
        preferred = _preferred_types(known_keys(files, target.entry))
        transport = _transport_factory(preferred)(sock)
        transport.banner_timeout = seconds
        transport.start_client(timeout=2 * seconds)
        key = transport.get_remote_server_key()
    except BaseException as exc:
        raise _explain(exc, target, seconds) from None
    finally:
        if transport is not None:
            _close_quietly(transport)
        if sock is not None:
            _close_quietly(sock)
        for client in reversed(hops):
            _close_quietly(client)
    presented = PresentedKey(target.device, target.entry, key, key.get_name(), fingerprint(key), "trusted")
    try:
        verify(known_keys(files, target.entry), target.device, target.entry, key)
    except UnknownHostKey:
        presented.status = "unknown"
    except ChangedHostKey as changed:
        presented.status, presented.expected_fingerprint = "changed", changed.expected_fingerprint
    except RevokedHostKey:
        presented.status = "revoked"  # (a bad host certificate is raised as it is: nothing to trust)
    return presented

