"""The device registry (store table `devices`) and what klmtui asks of a device before benchmarking.

A record names how to reach a Jetson: `id`/`name`, `host` (a host name, IP or ~/.ssh/config
alias), `user`, `port`, `key` (a private-key PATH, never key material), `python`, `tegrastats`
(the command), `workdir`, `added`. No password field exists and none is ever written.

`check_device` connects (verified host key) and reports the L4T/JetPack release, board model,
Python/torch/CUDA, nvpmodel mode, tegrastats presence and free disk; on a machine that is not a
Jetson those read as None ("unavailable"), not as errors. `trust_device` is the only way a host key
gets recorded: it shows the fingerprint and asks (or is told `yes=True`).
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, cast

from core.errors import InputError, OperationFailed
from core.records import DeviceRecord
from core.schema import DEVICES, LOCAL_DEVICE, is_local_device, local_device_record

if TYPE_CHECKING:  # pragma: no cover
    from remote.transport import Transport

LOCAL = LOCAL_DEVICE  # the built-in device: the agent in a subprocess on this machine
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
DEFAULTS = {"user": None, "port": None, "key": None, "python": "python3", "tegrastats": "tegrastats", "workdir": "~/klmtui"}
FIELDS = ("id", "name", "host", "user", "port", "key", "python", "tegrastats", "workdir", "added")

# L4T release -> JetPack (NVIDIA's release tables); unknown releases report jetpack None.
L4T_TO_JETPACK = {
    "32.4.3": "4.4", "32.4.4": "4.4.1", "32.5.0": "4.5", "32.5.1": "4.5.1", "32.5.2": "4.5.1",
    "32.6.1": "4.6", "32.7.1": "4.6.1", "32.7.2": "4.6.2", "32.7.3": "4.6.3", "32.7.4": "4.6.4",
    "32.7.5": "4.6.5", "32.7.6": "4.6.6", "35.1.0": "5.0.2", "35.2.1": "5.1", "35.3.1": "5.1.1",
    "35.4.1": "5.1.2", "35.5.0": "5.1.3", "35.6.0": "5.1.4", "36.3.0": "6.0", "36.4.0": "6.1",
    "36.4.3": "6.2", "38.2.0": "7.0",
}  # fmt: skip


def local_device() -> DeviceRecord:
    """The built-in device with every registry field (as `klmtui devices` lists it)."""
    return cast(DeviceRecord, {**local_device_record(), **DEFAULTS, "workdir": None, "added": None})


def resolve_device(store, name: str) -> DeviceRecord:
    """The device record named `name`: from the store's `devices` table, or the built-in `local`."""
    device = store.get(DEVICES, name) if store.exists() else None
    if device is None and name == LOCAL_DEVICE:
        return local_device_record()
    if device is None:
        raise InputError(f"unknown device {name!r}: add it with `klmtui device add {name} --host HOST` (or use --device local)")
    return device


def transport_for(device: Mapping[str, Any], *, home: Optional[Path] = None) -> "Transport":
    """The transport that reaches `device`: a local subprocess for the built-in `local`, else SSH."""
    if is_local_device(device):
        from remote.local import LocalTransport

        return LocalTransport(dict(device), home=home)
    from remote.ssh_transport import SshTransport

    return SshTransport(dict(device), home=home)


# ----------------------------------------------------------------------------- registry


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise InputError(
            f"device name {name!r} is not allowed: use letters, digits, '.', '_' or '-' (at most 64, starting alphanumeric)"
        )
    if name == LOCAL:
        raise InputError("'local' is the built-in device (this machine); choose another name")
    return name


def _check_text(what: str, value: Optional[str]) -> Optional[str]:
    if value is None:
        return None
    value = str(value)
    if not value.strip() or any(c in value for c in "\x00\n\r"):
        raise InputError(f"{what} {value!r} is empty or contains a control character")
    return value


def add_device(
    store: Any,
    name: str,
    host: str,
    *,
    user: Optional[str] = None,
    port: Optional[int] = None,
    key: Optional[str] = None,
    python: Optional[str] = None,
    tegrastats: Optional[str] = None,
    workdir: Optional[str] = None,
) -> dict:
    """Register a device (nothing is contacted). Re-adding an existing name is refused."""
    from core.store import now_iso

    _check_name(name)
    host = _check_text("host", host) or ""
    if "@" in host:  # `nvidia@jetson.local`, as one would type it for ssh
        at_user, _, host = host.rpartition("@")
        if user is not None and user != at_user:
            raise InputError(f"--user {user} contradicts the user in --host {at_user}@{host}")
        user = at_user or user
    if not host:
        raise InputError("--host is empty")
    from remote.ssh import check_host, check_user

    check_host(host, "--host")  # as OpenSSH: no shell characters, spaces or leading '-' (checked again at use)
    if user is not None:
        check_user(user, "--user")
    if port is not None and not 1 <= int(port) <= 65535:
        raise InputError(f"port {port} is out of range 1-65535")
    key_path = None
    if key is not None:
        key_file = Path(str(_check_text("key", key))).expanduser()
        if not key_file.is_file():
            raise InputError(f"key file {key_file} does not exist (give the path of a private key)")
        key_path = str(key_file.resolve())
    if tegrastats is not None:
        try:
            if not shlex.split(_check_text("tegrastats command", tegrastats)):
                raise ValueError
        except ValueError:
            raise InputError(f"tegrastats command {tegrastats!r} cannot be parsed as a command line") from None
    record = {
        "id": name,
        "name": name,
        "host": host,
        "user": _check_text("user", user),
        "port": int(port) if port is not None else None,
        "key": key_path,
        "python": _check_text("python", python) or DEFAULTS["python"],
        "tegrastats": tegrastats or DEFAULTS["tegrastats"],
        "workdir": _check_text("workdir", workdir) or DEFAULTS["workdir"],
        "added": now_iso(),
    }
    with store.transaction() as tx:
        if tx.get("devices", name) is not None:
            raise InputError(f"device {name} already exists (klmtui device remove {name} first)")
        tx.insert("devices", record)
    return record


def list_devices(store: Any, include_local: bool = False, host_keys: bool = False) -> list[dict]:
    """The registered devices by name; `host_keys=True` adds `host_key_known` (a known_hosts file
    names the host; read locally, nothing is contacted)."""
    devices = sorted(store.all("devices"), key=lambda d: d["id"])
    if host_keys:
        devices = [{**d, "host_key_known": host_key_known(d)} for d in devices]
    return ([local_device()] if include_local else []) + devices


def host_key_known(device: dict, *, home: Optional[Path] = None) -> Optional[bool]:
    """Does klmtui's or the user's known_hosts record a key for this device (None: cannot tell)?"""
    from remote.hostkeys import known_keys
    from remote.ssh import klmtui_known_hosts, resolve_target

    try:
        target = resolve_target(device)
    except InputError:
        return None
    return bool(known_keys([klmtui_known_hosts(home), *target.known_hosts], target.entry))


def get_device(store: Any, name: str) -> DeviceRecord:
    """The record for `name` (`local` is built in); InputError naming the known devices otherwise."""
    if name == LOCAL:
        return local_device()
    record = store.get("devices", name)
    if record is None:
        known = ", ".join(d["id"] for d in store.all("devices")) or "none yet"
        raise InputError(f"no device named {name!r} (known: {known}; add one with klmtui device add)")
    return record


def remove_device(store: Any, name: str) -> None:
    """Forget a device (its host key stays in klmtui's known_hosts, as ssh would keep it)."""
    if name == LOCAL:
        raise InputError("'local' is built in and cannot be removed")
    get_device(store, name)
    store.remove("devices", name)


# ----------------------------------------------------------------------------- host keys


def host_key(store: Any, name: str, *, home: Optional[Path] = None, timeout: Optional[float] = None) -> Any:
    """What the device presents (remote.ssh.PresentedKey: entry, key_type, fingerprint, status),
    without authenticating or running anything. For the TUI's trust dialog."""
    from remote.ssh import fetch_host_key

    device = get_device(store, name)
    if device["id"] == LOCAL:
        raise InputError("'local' is this machine; there is no host key to trust")
    return fetch_host_key(device, home=home, timeout=timeout)


def record_host_key(presented: Any, *, home: Optional[Path] = None) -> Path:
    """Record a key obtained from `host_key` in klmtui's known_hosts; returns that file."""
    from remote.hostkeys import record
    from remote.ssh import klmtui_known_hosts

    if presented.status == "revoked":
        raise OperationFailed(f"the host key {presented.fingerprint} of {presented.entry} is marked @revoked; not trusted")
    path = klmtui_known_hosts(home)
    record(path, presented.entry, presented.key)
    return path


def trust_prompt(presented: Any) -> str:
    """The question shown before trusting, fingerprint included (also used by the TUI)."""
    who = f"jump host {presented.entry} (on the way to device {presented.device})" if presented.hop else (
        f"device {presented.device} at {presented.entry}"
    )
    text = f"{who} presents {presented.key_type} key {presented.fingerprint}."
    if presented.status == "changed":
        text += (
            f" WARNING: this is NOT the recorded key ({presented.expected_fingerprint}); trust it only if you"
            " know the host was reinstalled, otherwise someone may be intercepting the connection."
        )
    return text + " Trust it?"


def trust_device(
    store: Any,
    name: str,
    yes: bool = False,
    *,
    confirm: Optional[Callable[[str], bool]] = None,
    home: Optional[Path] = None,
    timeout: Optional[float] = None,
) -> dict:
    """Fetch the device's host key, ask `confirm(prompt)` unless `yes`, record it. Untrusted
    ProxyJump hosts on the way are asked about (and recorded) first, one at a time.

    Returns {device, host_entry, key_type, fingerprint, status: "added"|"replaced"|"already-trusted",
    previous_fingerprint, known_hosts, hops: [entries of jump hosts trusted on the way]}.
    Declining raises OperationFailed and records nothing more.
    """
    from remote.ssh import MAX_JUMPS

    hops: list[str] = []
    for _ in range(MAX_JUMPS + 1):
        presented = host_key(store, name, home=home, timeout=timeout)
        result = {
            "device": name,
            "host_entry": presented.entry,
            "key_type": presented.key_type,
            "fingerprint": presented.fingerprint,
            "previous_fingerprint": presented.expected_fingerprint,
            "known_hosts": None,
            "hops": hops,
        }
        if presented.status == "trusted":
            return {**result, "status": "already-trusted"}
        if presented.status == "revoked":
            raise OperationFailed(f"the host key {presented.fingerprint} of {presented.entry} is marked @revoked; not trusted")
        if not yes:
            if confirm is None:
                raise InputError(f"{trust_prompt(presented)} (confirm interactively or pass --yes)")
            if not confirm(trust_prompt(presented)):
                raise OperationFailed(f"host key {presented.fingerprint} of {presented.entry} not trusted; nothing recorded")
        path = record_host_key(presented, home=home)
        if presented.hop:
            hops.append(presented.entry)
            continue
        return {**result, "known_hosts": str(path), "status": "replaced" if presented.status == "changed" else "added"}
    raise OperationFailed(f"device {name}: too many jump hosts to trust")


# ----------------------------------------------------------------------------- checks

_PY_PROBE = """
import json, platform
r = {"python": platform.python_version(), "torch": None, "cuda": None, "cuda_version": None}
try:
    import torch
    r["torch"] = torch.__version__
    r["cuda_version"] = torch.version.cuda
    r["cuda"] = bool(torch.cuda.is_available())
except Exception as e:
    r["torch_error"] = "%s: %s" % (type(e).__name__, str(e)[:200])
print(json.dumps(r))
"""

_CHECK_SCRIPT = """
section() { printf '\\n@@%s\\n' "$1"; }
section l4t; head -n 1 /etc/nv_tegra_release 2>/dev/null
section l4t_pkg; dpkg-query -W -f='${Version}' nvidia-l4t-core 2>/dev/null
section model; { tr -d '\\000' < /proc/device-tree/model; } 2>/dev/null
section nvpmodel; nvpmodel -q 2>/dev/null
section tegrastats; command -v @TEGRASTATS@ 2>/dev/null
section disk; d=@WORKDIR@; while [ ! -d "$d" ]; do d=$(dirname -- "$d"); done; df -Pk -- "$d" 2>/dev/null | tail -n 1
section python; @PYTHON@ -c @PROBE@ 2>&1 | tail -n 5
section end
"""


def _sections(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("@@"):
            current = line[2:].strip()
            out[current] = ""
        elif current is not None:
            out[current] += line + "\n"
    return {k: v.strip() for k, v in out.items()}


def parse_l4t(release_line: str, package_version: str = "") -> Optional[str]:
    """`# R32 (release), REVISION: 7.1, ...` or dpkg's `32.7.1-2022...` -> `32.7.1`."""
    m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*(\d+)(?:\.(\d+))?", release_line or "")
    if m:
        return f"{m.group(1)}.{m.group(2)}.{m.group(3) or 0}"
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", package_version or "")
    if m:
        return f"{m.group(1)}.{m.group(2)}.{m.group(3) or 0}"
    return None


def parse_nvpmodel(text: str) -> tuple[Optional[str], Optional[int]]:
    """`nvpmodel -q` -> (mode name, mode id), e.g. ("MAXN", 0)."""
    name = mode = None
    for line in (text or "").splitlines():
        m = re.match(r"\s*NV Power Mode\s*:\s*(.+?)\s*$", line)
        if m:
            name = m.group(1)
        elif line.strip().isdigit():
            mode = int(line.strip())
    return name, mode


def parse_df(line: str) -> Optional[int]:
    """Free bytes from the data line of `df -Pk` (Filesystem 1024-blocks Used Available ...)."""
    parts = (line or "").split()
    if len(parts) >= 4 and parts[3].isdigit():
        return int(parts[3]) * 1024
    return None


def check_device(store: Any, name: str, *, home: Optional[Path] = None, timeout: Optional[float] = None) -> dict:
    """Connect (verified host key, keys only) and report what the device offers for benchmarking."""
    from remote.ssh import connect, remote_word

    device = get_device(store, name)
    if device["id"] == LOCAL:
        raise InputError("'local' is this machine; device check is for SSH devices")
    tegrastats = str(device.get("tegrastats") or DEFAULTS["tegrastats"])
    try:
        tegrastats_word = shlex.split(tegrastats)[0]
    except (ValueError, IndexError):
        tegrastats_word = tegrastats
    workdir = str(device.get("workdir") or DEFAULTS["workdir"])
    script = (
        _CHECK_SCRIPT.replace("@TEGRASTATS@", shlex.quote(tegrastats_word))
        .replace("@WORKDIR@", remote_word(workdir))
        .replace("@PYTHON@", remote_word(str(device.get("python") or DEFAULTS["python"])))
        .replace("@PROBE@", shlex.quote(_PY_PROBE))
    )
    session = connect(device, home=home, timeout=timeout)
    try:
        target = session.target
        presented = session.transport.get_remote_server_key()  # while the link is surely up
        _, out, _ = session.run(f"sh -c {shlex.quote(script)}", timeout=180)
    finally:
        session.close()
    from remote.hostkeys import fingerprint

    parts = _sections(out)
    if "end" not in parts:
        raise OperationFailed(f"device {name}: the check did not complete (connection lost?)")
    python_info: dict = {}
    for line in reversed(parts.get("python", "").splitlines()):
        if line.startswith("{"):
            try:
                python_info = json.loads(line)
            except ValueError:
                pass
            break
    l4t = parse_l4t(parts.get("l4t", ""), parts.get("l4t_pkg", ""))
    nvp_name, nvp_mode = parse_nvpmodel(parts.get("nvpmodel", ""))
    free = parse_df(parts.get("disk", ""))
    return {
        "name": name,
        "host": device["host"],
        "hostname": target.hostname,
        "port": target.port,
        "user": target.user,
        "reachable": True,
        "host_key": f"{presented.get_name()} {fingerprint(presented)}",
        "l4t": l4t,
        "jetpack": L4T_TO_JETPACK.get(l4t) if l4t else None,
        "model": parts.get("model") or None,
        "python": python_info.get("python"),
        "python_path": device.get("python") or DEFAULTS["python"],
        "torch": python_info.get("torch"),
        "cuda": python_info.get("cuda"),
        "cuda_version": python_info.get("cuda_version"),
        "nvpmodel": nvp_name,
        "nvpmodel_mode": nvp_mode,
        "tegrastats": bool(parts.get("tegrastats")),
        "tegrastats_command": tegrastats,
        "tegrastats_path": parts.get("tegrastats") or None,
        "workdir": workdir,
        "disk_free_bytes": free,
        "disk_free_gb": round(free / 1e9, 2) if free is not None else None,
        "problems": _problems(python_info, bool(parts.get("tegrastats")), free),
    }


def _problems(python_info: dict, tegrastats: bool, free: Optional[int]) -> list[str]:
    """What would stop or weaken a benchmark, in words (empty when all is well)."""
    problems = []
    if not python_info.get("python"):
        problems.append("the device's python did not run (check --python)")
    elif not python_info.get("torch"):
        problems.append("torch is not importable by the device's python")
    if not tegrastats:
        problems.append("tegrastats not found: latency only, power unavailable")
    if free is not None and free < 200 * 1024 * 1024:
        problems.append("less than 200 MB free in the work folder")
    return problems
