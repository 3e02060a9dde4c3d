"""OpenSSH host certificates (PROTOCOL.certkeys), for known_hosts `@cert-authority` lines.

paramiko negotiates `*-cert-v01@openssh.com` host keys and hands us the certificate blob but
does not check it; `check_host_certificate` does what OpenSSH's client does: the certificate is
a *host* certificate, signed by one of the CAs a `@cert-authority` line names for this host, the
signature verifies, the host name is among its principals (an empty list matches any host, as in
OpenSSH), and now is inside its validity window.
"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass
from typing import Any, Optional

from core.errors import OperationFailed

HOST_CERT = 2


def fingerprint(key: Any) -> str:
    """OpenSSH's `SHA256:<base64 without padding>` fingerprint of a paramiko key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")
# How many public-key fields follow the nonce, by certificate type.
_KEY_FIELDS = {
    "ssh-ed25519-cert-v01@openssh.com": ("string",),
    "ssh-rsa-cert-v01@openssh.com": ("mpint", "mpint"),
    "rsa-sha2-256-cert-v01@openssh.com": ("mpint", "mpint"),
    "rsa-sha2-512-cert-v01@openssh.com": ("mpint", "mpint"),
    "ecdsa-sha2-nistp256-cert-v01@openssh.com": ("string", "string"),
    "ecdsa-sha2-nistp384-cert-v01@openssh.com": ("string", "string"),
    "ecdsa-sha2-nistp521-cert-v01@openssh.com": ("string", "string"),
}


@dataclass
class Certificate:
    cert_type: int
    key_id: str
    principals: list
    valid_after: int
    valid_before: int
    signature_key: Any  # paramiko.PKey of the CA
    signed: bytes  # the bytes the signature covers
    signature: bytes


def _names(packed: bytes) -> list:
    from paramiko.message import Message

    m, out = Message(packed), []
    while m.get_remainder():
        out.append(m.get_text())
    return out


def parse_certificate(blob: Any) -> Certificate:
    """Parse a paramiko PublicBlob (or raw bytes) holding an OpenSSH certificate."""
    from paramiko import PKey
    from paramiko.message import Message

    raw = getattr(blob, "key_blob", blob)
    try:
        m = Message(bytes(raw))
        kind = m.get_text()
        if kind not in _KEY_FIELDS:
            raise ValueError(f"unsupported certificate type {kind}")
        m.get_string()  # nonce
        for field in _KEY_FIELDS[kind]:
            m.get_mpint() if field == "mpint" else m.get_string()
        m.get_int64()  # serial
        cert_type = m.get_int()
        key_id = m.get_text()
        principals = _names(m.get_string())
        valid_after, valid_before = m.get_int64(), m.get_int64()
        m.get_string(), m.get_string(), m.get_string()  # critical options, extensions, reserved
        ca_blob = m.get_string()
        signed = bytes(raw)[: m.packet.tell()]
        signature = m.get_string()
        ca_type = Message(ca_blob).get_text()
        ca = PKey.from_type_string(ca_type, ca_blob)
    except OperationFailed:
        raise
    except Exception as exc:
        raise OperationFailed(f"malformed host certificate: {exc}") from None
    return Certificate(cert_type, key_id, principals, valid_after, valid_before, ca, signed, signature)


def check_host_certificate(blob: Any, entry: str, authorities: list, device: str, now: Optional[float] = None) -> None:
    """Accept the certificate for `entry` or raise OperationFailed saying why (one line)."""
    from paramiko.message import Message

    cert = parse_certificate(blob)
    where = f"device {device}: the host certificate of {entry}"
    if cert.cert_type != HOST_CERT:
        raise OperationFailed(f"{where} is not a host certificate; refused")
    if not any(ca == cert.signature_key for ca in authorities):
        raise OperationFailed(
            f"{where} is signed by {fingerprint(cert.signature_key)}, which no @cert-authority line names for it; refused"
        )
    try:
        good = cert.signature_key.verify_ssh_sig(cert.signed, Message(cert.signature))
    except Exception:
        good = False
    if not good:
        raise OperationFailed(f"{where} has a bad signature; refused")
    host = entry[1:].split("]:", 1)[0] if entry.startswith("[") else entry
    if cert.principals and host not in cert.principals:
        raise OperationFailed(f"{where} is for {', '.join(cert.principals)[:200]}, not {host}; refused")
    moment = int(now if now is not None else time.time())
    if not cert.valid_after <= moment < cert.valid_before:
        raise OperationFailed(f"{where} is not valid now (valid {cert.valid_after}..{cert.valid_before}); refused")
