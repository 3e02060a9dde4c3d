"""Public-key authentication the way OpenSSH's client does it (sshconnect2.c pubkey_prepare).

Identities are the record's `key` (like `ssh -i`, first) and the config's IdentityFiles (the
default ~/.ssh/id_* files when none is named). The order keys are offered in:
1. listed identities the ssh-agent holds (the agent's copy: a passphrase-protected file works
   when its key is loaded with ssh-add), 2. the agent's other keys, unless IdentitiesOnly,
3. the listed identities the agent does not hold, read from their files.
Private key files are refused, like ssh, when others can read them (mode & 077). Files may be
OpenSSH, PEM or PKCS#8 (RSA, ECDSA, Ed25519); a `CertificateFile` (or `<key>-cert.pub`) that
matches a key is offered with it. No password, no passphrase is ever asked for.

Every failure is one line naming what to do: too many authentication failures (sshd's
MaxAuthTries), a passphrase-protected key the agent does not hold, an unreadable or unsupported
key file, permissions, or simply no key accepted.
"""

from __future__ import annotations

import base64
import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from core.errors import OperationFailed

DEFAULT_IDENTITIES = ("~/.ssh/id_rsa", "~/.ssh/id_ecdsa", "~/.ssh/id_ecdsa_sk", "~/.ssh/id_ed25519",
                      "~/.ssh/id_ed25519_sk", "~/.ssh/id_xmss", "~/.ssh/id_dsa")  # fmt: skip


class SshAuthFailed(OperationFailed):
    """The host answered but accepted none of our keys (or a key could not be used)."""


@dataclass
class Identity:
    path: Path
    blob: Optional[bytes]  # the public key, to find the agent's copy (None: unknown)
    problem: Optional[str] = None  # why the file itself cannot be used (permissions, format, passphrase)


def _public_blob(path: Path) -> Optional[bytes]:
    pub = Path(str(path) + ".pub")
    try:
        fields = pub.read_text().split()
        return base64.b64decode(fields[1]) if len(fields) >= 2 else None
    except (OSError, ValueError):
        return None


def _too_open(path: Path) -> Optional[str]:
    try:
        info = path.stat()
    except OSError as exc:
        return f"cannot read private key {path}: {exc.strerror}"
    if info.st_mode & 0o077 and info.st_uid == os.getuid():
        return (
            f"private key {path} has permissions {stat.S_IMODE(info.st_mode):04o}: it is readable by others, and"
            f" ssh refuses such a key; run: chmod 600 {path}"
        )
    return None


def load_private_key(path: Path) -> Any:
    """A paramiko key from an OpenSSH, PEM or PKCS#8 file; SshAuthFailed (one line) otherwise."""
    import paramiko
    from cryptography.hazmat.primitives import serialization

    problem = _too_open(path)
    if problem:
        raise SshAuthFailed(problem)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SshAuthFailed(f"cannot read private key {path}: {exc.strerror}") from None
    passphrase = (
        f"private key {path} is passphrase-protected and ssh-agent does not hold it: run `ssh-add {path}`"
        " (klmtui never asks for passphrases)"
    )
    try:
        if b"BEGIN OPENSSH PRIVATE KEY" in data:
            return paramiko.PKey.from_path(path)
        loaded = serialization.load_pem_private_key(data, password=None)
        text = loaded.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        ).decode()
    except (TypeError, paramiko.PasswordRequiredException):  # cryptography: "password was not given"
        raise SshAuthFailed(passphrase) from None
    except Exception as exc:
        raise SshAuthFailed(
            f"cannot use private key {path}: {str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__}"
            f" (klmtui reads OpenSSH, PEM and PKCS#8 RSA, ECDSA and Ed25519 keys; `ssh-keygen -p -f {path}`"
            " rewrites a key OpenSSH can read in its own format)"
        ) from None
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key(io.StringIO(text))
        except Exception:
            continue
    raise SshAuthFailed(f"cannot use private key {path}: unsupported key type (klmtui reads RSA, ECDSA and Ed25519)")


def _with_certificate(key: Any, certificates: list[Path]) -> Any:
    for cert in certificates:
        try:
            key.load_certificate(str(cert))
            return key
        except Exception:  # not this key's certificate, or unreadable
            continue
    return key


def identities(target: Any) -> list[Identity]:
    """The listed identity files in order (the record's key first), defaults when none is listed."""
    listed = [Path(p).expanduser() for p in target.key_files]
    if not listed:
        listed = [Path(p).expanduser() for p in DEFAULT_IDENTITIES if Path(p).expanduser().exists()]
    seen, out = set(), []
    for path in listed:
        if path in seen:
            continue
        seen.add(path)
        out.append(Identity(path, _public_blob(path)))
    return out


def _agent_keys() -> tuple[Any, list]:
    import paramiko

    if not os.environ.get("SSH_AUTH_SOCK"):
        return None, []
    try:
        agent = paramiko.Agent()
        return agent, list(agent.get_keys())
    except Exception:
        return None, []


def offer_order(target: Any, agent_keys: list) -> list[tuple[str, Any]]:
    """(label, key or Identity) in OpenSSH's order; file identities are loaded only when offered."""
    ids = identities(target)
    for identity in ids:
        if identity.blob is None and identity.path.exists() and _too_open(identity.path) is None:
            try:  # no .pub beside it: the public half comes from the (unencrypted) private file
                identity.blob = load_private_key(identity.path).asbytes()
            except SshAuthFailed:
                pass
    preferred, others = [], []
    remaining = list(ids)
    for key in agent_keys:
        match = next((i for i in remaining if i.blob is not None and i.blob == key.asbytes()), None)
        if match is not None:
            remaining.remove(match)
            preferred.append((f"{match.path} (from ssh-agent)", key))
        elif not target.identities_only:
            others.append((f"ssh-agent key {key.get_name()} {getattr(key, 'comment', '') or ''}".rstrip(), key))
    return preferred + others + [(str(i.path), i) for i in remaining]


def authenticate(transport: Any, target: Any, who: str) -> None:
    """Offer the keys in order until one is accepted; SshAuthFailed with the reason otherwise."""
    import paramiko

    agent, agent_keys = _agent_keys()
    refused: list[str] = []
    problems: list[str] = []
    try:
        for label, item in offer_order(target, agent_keys):
            if isinstance(item, Identity):
                try:
                    key = _with_certificate(load_private_key(item.path), [Path(c) for c in target.certificate_files])
                except SshAuthFailed as exc:
                    problems.append(str(exc))
                    continue
            else:
                key = item
            try:
                transport.auth_publickey(target.user, key)
            except paramiko.BadAuthenticationType as exc:
                raise SshAuthFailed(
                    f"{who}: the server does not accept public keys (it allows: {', '.join(exc.allowed_types) or 'nothing'});"
                    " klmtui never uses passwords"
                ) from None
            except paramiko.AuthenticationException:
                refused.append(label)
            except (paramiko.SSHException, EOFError, OSError):
                if transport.is_active():
                    raise
                refused.append(label)
            if transport.is_authenticated():
                return
            if not transport.is_active():
                raise SshAuthFailed(
                    f"{who}: too many authentication failures: the server closed the connection after refusing"
                    f" {len(refused)} key(s) ({', '.join(refused)[:300]}); sshd's MaxAuthTries counts every key"
                    " offered, so name the right one (--key, or IdentityFile with IdentitiesOnly yes in ~/.ssh/config)"
                )
    finally:
        if agent is not None:
            agent.close()
    if problems and not refused:
        raise SshAuthFailed(f"{who}: {problems[0]}")
    tried = ", ".join(refused)[:300] if refused else "no usable key"
    hint = f"; also: {problems[0]}" if problems else ""
    if not refused and not problems:
        hint = "; give one with --key, IdentityFile in ~/.ssh/config, or load it into ssh-agent"
    raise SshAuthFailed(f"{who}: authentication failed (tried {tried}{hint}; klmtui never uses passwords)")
