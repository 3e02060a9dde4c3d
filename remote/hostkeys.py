"""Host-key verification the OpenSSH way, with klmtui's own known_hosts beside the user's.

A device's key is accepted only if a known_hosts file already vouches for it: klmtui's own
(`<klmtui home>/known_hosts`, written by `klmtui device trust`) or the user's `~/.ssh/known_hosts`
(only ever read). An unknown key is refused with its fingerprint; a key that differs from the
recorded one is refused loudly, because that is what a man in the middle looks like. Silent trust
on first use (paramiko's auto-add policy) is never used.
"""

from __future__ import annotations

import base64
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

from core.errors import OperationFailed
from remote.hostcert import fingerprint


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


class RevokedHostKey(OperationFailed):
    """The presented key (or the CA that signed its certificate) is marked @revoked."""


@dataclass(frozen=True)
class KnownKey:
    """One known_hosts line that names the host: the key it vouches for and where it came from."""

    key: Any  # paramiko.PKey
    source: Path
    revoked: bool = False
    cert_authority: bool = False  # @cert-authority: a CA whose host certificates are accepted

    @property
    def key_type(self) -> str:
        return self.key.get_name()


def _wildcard(pattern: str) -> "re.Pattern[str]":
    """OpenSSH's match_pattern: `*` any run, `?` one character, everything else literal."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.S)


def _hashed_match(candidate: str, name: str) -> bool:
    from paramiko.hostkeys import HostKeys

    parts = candidate.split("|")
    if len(parts) != 4:
        return False
    try:
        return HostKeys.hash_host(name, parts[2]) == candidate
    except Exception:  # a malformed salt
        return False


def host_matches(patterns: Iterable[str], name: str) -> bool:
    """OpenSSH's match_hostname over one line's comma-separated names: a negated pattern that
    matches rules the line out, else any positive match (`*`, `?`, `[host]:port`, hashed) counts.
    Case-insensitive, as host names are."""
    name = name.lower()
    positive = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern[1:] if negated else pattern
        if pattern.startswith("|1|"):
            hit = _hashed_match(pattern, name)
        elif "*" in pattern or "?" in pattern:
            hit = _wildcard(pattern.lower()).fullmatch(name) is not None
        else:
            hit = pattern.lower() == name
        if hit and negated:
            return False
        positive = positive or hit
    return positive


def _parse_line(line: str) -> Optional[tuple[str, list[str], Any]]:
    """(marker, host patterns, paramiko key) of a known_hosts line, None for comments/garbage."""
    from paramiko import PKey

    fields = line.split()
    if not fields or fields[0].startswith("#"):
        return None
    marker = ""
    if fields[0].startswith("@"):
        marker, fields = fields[0], fields[1:]
        if marker not in ("@revoked", "@cert-authority"):
            return None  # OpenSSH ignores lines with an unknown marker
    if len(fields) < 3:
        return None
    names, key_type, blob = fields[:3]
    try:
        key = PKey.from_type_string(key_type, base64.b64decode(blob, validate=True))
    except Exception:  # unknown key type, bad base64, truncated key
        return None
    return marker, names.split(","), key


def known_keys(files: Iterable[Path], entry: str) -> list[KnownKey]:
    """Every key the given known_hosts files record for `entry` (missing files are skipped):
    plain keys, `@revoked` ones and `@cert-authority` CAs, with OpenSSH's pattern rules."""
    found: list[KnownKey] = []
    for path in files:
        try:
            lines = Path(path).read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            parsed = _parse_line(line)
            if parsed is None or not host_matches(parsed[1], entry):
                continue
            marker, _, key = parsed
            found.append(KnownKey(key, Path(path), marker == "@revoked", marker == "@cert-authority"))
    return found


def _matches(entry_names: Iterable[str], name: str) -> bool:
    """Exact or hashed names only (klmtui's own file: which lines `record` replaces)."""
    return any(c == name or (c.startswith("|1|") and _hashed_match(c, name)) for c in entry_names)


def verify(known: list[KnownKey], device: str, entry: str, key: Any) -> None:
    """Accept `key` for `entry` or raise UnknownHostKey / ChangedHostKey / OperationFailed (@revoked).

    As OpenSSH: @revoked lines (from every file, patterns included) are checked before anything
    else; a host certificate is accepted when an @cert-authority line for the host signed it
    (remote.hostcert checks signature, type, principals and validity); otherwise a plain key line
    must hold exactly this key."""
    presented = fingerprint(key)
    blob = getattr(key, "public_blob", None)
    signer = None
    if blob is not None:  # a host certificate: its CA may be revoked too
        from remote.hostcert import parse_certificate

        signer = parse_certificate(blob).signature_key
    for k in known:
        if k.revoked and (k.key == key or (signer is not None and k.key == signer)):
            which = "host key" if k.key == key else "certificate authority"
            raise RevokedHostKey(f"the {which} of {entry} ({presented}) is marked @revoked in {k.source}; refused")
    if blob is not None:
        from remote.hostcert import check_host_certificate

        cas = [k for k in known if k.cert_authority]
        if cas:
            check_host_certificate(blob, entry, [k.key for k in cas], device)
            return
    good = [k for k in known if not k.revoked and not k.cert_authority]
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
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    kept: list[str] = []
    if path.exists():
        for line in path.read_text(errors="replace").splitlines():
            parsed = _parse_line(line)
            if parsed is not None and not parsed[0] and _matches(parsed[1], entry):
                if parsed[2].get_name() == key.get_name():
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
