"""Host-key verification the OpenSSH way, with klmtui's own known_hosts beside the user's.

A device's key is accepted only if a known_hosts file already vouches for it: klmtui's own
(`<klmtui home>/known_hosts`, written by `klmtui device trust`) or the user's `~/.ssh/known_hosts`
(only ever read). An unknown key is refused with its fingerprint; a key that differs from the
recorded one is refused loudly, because that is what a man in the middle looks like. Silent trust
on first use (paramiko's auto-add policy) is never used.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from core.errors import OperationFailed


def fingerprint(key: Any) -> str:
    """OpenSSH's `SHA256:<base64 without padding>` fingerprint of a paramiko key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def host_entry(hostname: str, port: int) -> str:
    """The name OpenSSH files a host under: `host` on port 22, `[host]:port` otherwise."""
    return hostname if int(port) == 22 else f"[{hostname}]:{int(port)}"


class UnknownHostKey(OperationFailed):
    """The device presented a key no known_hosts file vouches for; nothing was run."""

    def __init__(self, device: str, entry: str, key_type: str, fingerprint: str):
        self.device, self.host_entry, self.key_type, self.fingerprint = device, entry, key_type, fingerprint
        self.key: Any = None
        super().__init__(
            f"unknown host key for {entry} ({key_type} {fingerprint}); refused. If that is the device's"
            f" key, run: klmtui device trust {device}"
        )


class ChangedHostKey(OperationFailed):
    """The device presented a different key than the recorded one: possibly a man in the middle."""

    def __init__(self, device: str, entry: str, key_type: str, fingerprint: str, expected: str, source: Path):
        self.device, self.host_entry, self.key_type = device, entry, key_type
        self.fingerprint, self.expected_fingerprint, self.source = fingerprint, expected, source
        self.key: Any = None
        super().__init__(
            f"HOST KEY CHANGED for {entry}: it now presents {key_type} {fingerprint}, {source} records"
            f" {expected}. Someone could be intercepting the connection (man in the middle); refused."
            f" If the device was really reinstalled, run: klmtui device trust {device}"
        )


@dataclass(frozen=True)
class KnownKey:
    """One known_hosts line that names the host: the key it vouches for and where it came from."""

    key: Any  # paramiko.PKey
    source: Path
    revoked: bool = False

    @property
    def key_type(self) -> str:
        return self.key.get_name()


def _matches(entry_names: Iterable[str], name: str) -> bool:
    from paramiko.hostkeys import HostKeys

    for candidate in entry_names:
        if candidate == name:
            return True
        if candidate.startswith("|1|"):  # hashed (HashKnownHosts yes)
            salt = candidate.split("|")[2]
            if HostKeys.hash_host(name, salt) == candidate:
                return True
    return False


def known_keys(files: Iterable[Path], entry: str) -> list[KnownKey]:
    """Every key the given known_hosts files record for `entry` (missing files are skipped)."""
    from paramiko.hostkeys import HostKeyEntry
    from paramiko.ssh_exception import SSHException

    found: list[KnownKey] = []
    for path in files:
        try:
            lines = Path(path).read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            revoked = False
            if line.startswith("@"):
                marker, _, line = line.partition(" ")
                if marker != "@revoked":
                    continue  # @cert-authority: certificates are not supported here
                revoked = True
            try:
                parsed = HostKeyEntry.from_line(line)
            except (SSHException, ValueError, IndexError):
                continue
            if parsed is None or parsed.key is None or not _matches(parsed.hostnames, entry):
                continue
            found.append(KnownKey(parsed.key, Path(path), revoked))
    return found


def verify(known: list[KnownKey], device: str, entry: str, key: Any) -> None:
    """Accept `key` for `entry` or raise UnknownHostKey / ChangedHostKey."""
    presented = fingerprint(key)
    if any(k.revoked and k.key == key for k in known):
        raise OperationFailed(f"the host key of {entry} ({presented}) is marked @revoked in {known[0].source}; refused")
    good = [k for k in known if not k.revoked]
    if any(k.key == key for k in good):
        return
    same_type = [k for k in good if k.key_type == key.get_name()] or good
    if same_type:
        old = same_type[0]
        changed = ChangedHostKey(device, entry, key.get_name(), presented, fingerprint(old.key), old.source)
        changed.key = key
        raise changed
    unknown = UnknownHostKey(device, entry, key.get_name(), presented)
    unknown.key = key  # the presented paramiko key, so a trust flow can record exactly this one
    raise unknown


def record(path: Path, entry: str, key: Any) -> None:
    """Write `entry key` into klmtui's known_hosts, replacing that host's older key of the same type.

    Written atomically (temp file + rename) with mode 600 in a 700 folder.
    """
    from paramiko.hostkeys import HostKeyEntry

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    kept: list[str] = []
    if path.exists():
        for line in path.read_text(errors="replace").splitlines():
            try:
                parsed = None if line.startswith(("#", "@")) or not line.strip() else HostKeyEntry.from_line(line)
            except Exception:
                parsed = None
            if parsed is not None and parsed.key is not None and _matches(parsed.hostnames, entry):
                if parsed.key.get_name() == key.get_name():
                    continue
            kept.append(line)
    kept.append(f"{entry} {key.get_name()} {key.get_base64()}")
    fd, tmp = tempfile.mkstemp(prefix=".known_hosts.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            out.write("\n".join(kept) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
