"""ssh_config as OpenSSH reads it, on top of paramiko's parser: `Include`, and the system file.

paramiko's `SSHConfig` understands Host, Match (host, originalhost, user, localuser, exec,
canonical, final, all), token expansion and first-value-wins, but not `Include`. This small
layer expands Include lines into one text before paramiko parses it, with OpenSSH's rules
(readconf.c): glob patterns, `~` expanded, relative paths taken from ~/.ssh (user file) or
/etc/ssh (system file), missing files ignored, at most 16 levels. An Include inside a Host
block applies only when that block matches the host (the included file's own Host/Match lines
are evaluated as usual), and the enclosing block is restored after it (its header is repeated);
an Include at the top level is followed by `Host *`, which is what "top level" means. An
Include inside a Match block is expanded unconditionally (paramiko evaluates the Match itself
later only for the block's own lines): the one approximation, stated in the README.

`config_text(user_file, host)` is the user's file followed by /etc/ssh/ssh_config (as ssh
reads both; with an explicit file, `ssh -F`, only that one).
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path
from typing import Optional

from core.errors import InputError

MAX_DEPTH = 16
SYSTEM_CONFIG = Path("/etc/ssh/ssh_config")
_KEYWORD = re.compile(r"^\s*(\w+)(?:\s*=\s*|\s+)(.*?)\s*$")


def _host_block_matches(patterns: str, host: str) -> bool:
    from remote.hostkeys import host_matches

    return host_matches(patterns.split(), host)


def _words(value: str) -> list[str]:
    import shlex

    try:
        return shlex.split(value)
    except ValueError:
        return value.split()


def _expand(path: Path, host: str, base: Path, depth: int) -> list[str]:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise InputError(f"cannot read SSH config {path}: {exc.strerror}") from None
    out: list[str] = []
    header: Optional[str] = None  # the current Host/Match line (None: top level)
    active = True
    for line in lines:
        m = _KEYWORD.match(line)
        if m is None:  # not a keyword line (blank, comment): kept as it is
            out.append(line)
            continue
        keyword = m.group(1).lower()
        if keyword in ("host", "match"):
            header = line
            active = keyword == "match" or _host_block_matches(m.group(2), host)
            out.append(line)
            continue
        if keyword != "include":
            out.append(line)
            continue
        if depth >= MAX_DEPTH:
            raise InputError(f"SSH config {path}: Include nested deeper than {MAX_DEPTH} (a loop?)")
        if not active:
            continue  # an Include inside a Host block for other hosts: nothing of it applies
        for pattern in _words(m.group(2)):
            pattern = os.path.expanduser(pattern)
            if not os.path.isabs(pattern):
                pattern = str(base / pattern)
            for name in sorted(glob.glob(pattern)):
                out += _expand(Path(name), host, base, depth + 1)
        out.append(header if header is not None else "Host *")
    return out


def config_text(user_file: Optional[Path], host: str, *, system: bool = True) -> str:
    """The configuration ssh would apply for `host`, Includes expanded, as one text."""
    user_default = Path(os.path.expanduser("~/.ssh/config"))
    path = Path(user_file) if user_file is not None else user_default
    text = _expand(path, host.lower(), Path(os.path.expanduser("~/.ssh")), 0)
    if system and user_file is None:
        text += ["Host *"] + _expand(SYSTEM_CONFIG, host.lower(), SYSTEM_CONFIG.parent, 0)
    return "\n".join(text) + "\n"
