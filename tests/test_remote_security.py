"""Security properties of the remote layer: verified host keys only, no shell injection from the
store or names, remote paths confined to the work folder, no password anywhere."""

from __future__ import annotations

import json
import pwd
import re
import sys
from pathlib import Path

import pytest

from core.errors import InputError
from core.store import Store
from remote.ssh_transport import SshTransport
from tests.fixtures.paths import REPO
from tests.fixtures.sshd import device_record

SOURCE_DIRS = ("core", "remote", "klmtui")


def source_files() -> list[Path]:
    return [p for d in SOURCE_DIRS for p in (REPO / d).rglob("*.py")]


def test_no_auto_add_or_warning_host_key_policy_anywhere():
    offenders = []
    for path in source_files():
        text = path.read_text()
        for bad in ("AutoAddPolicy", "WarningPolicy", "load_system_host_keys", "save_host_keys"):
            if bad in text:
                offenders.append(f"{path.relative_to(REPO)}: {bad}")
    assert source_files() and offenders == []
    # The only missing-host-key policy installed is klmtui's verifying one.
    policies = [
        (p.relative_to(REPO), line.strip())
        for p in source_files()
        for line in p.read_text().splitlines()
        if "set_missing_host_key_policy(" in line
    ]
    assert policies == []  # host keys are checked by remote.hostkeys.verify before authentication (remote/ssh.py)
    connect = (REPO / "remote" / "ssh.py").read_text()
    assert connect.index("verify(known, target.device, target.entry") < connect.index("authenticate(transport, target")


def test_no_password_is_ever_passed_or_stored(cli, ssh_env, sshd):
    # paramiko is always told password=None; nothing in the remote layer prompts for one.
    for path in (REPO / "remote").rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"password\s*=\s*(?!None)", text), path
        assert "getpass.getpass" not in text, path
    cli.env.update(ssh_env)
    r = cli("device", "add", "jet", "--host", "127.0.0.1", "--port", sshd.port, "--key", sshd.client_key,
            "--user", sshd.user, "--python", "python3", "--tegrastats", "tegrastats", "--workdir", "/tmp/w")  # fmt: skip
    assert r.returncode == 0, r.stderr
    [record] = Store(cli.store).all("devices")
    assert set(record) == {"id", "name", "host", "user", "port", "key", "python", "tegrastats", "workdir", "added"}
    assert record["key"] == str(sshd.client_key)  # a path, never key material
    raw = cli.store.read_text()
    assert "PRIVATE KEY" not in raw and sshd.client_key.read_text().split("\n")[1] not in raw

    def keys(node):
        if isinstance(node, dict):
            for k, v in node.items():
                yield k
                yield from keys(v)

    assert not [k for k in keys(json.loads(raw)) if "pass" in k.lower() or "secret" in k.lower()]
    assert cli("device", "add", "jet2", "--host", "h", "--password", "x").returncode == 2


def test_shell_metacharacters_in_device_fields_never_reach_a_shell(cli, ssh_env, sshd, tmp_path):
    """Work folder and python path full of shell syntax: the benchmark still runs (every word was
    quoted) and none of the embedded commands ran."""
    cli.env.update(ssh_env)
    markers = [tmp_path / f"pwned{i}" for i in range(3)]
    workdir = tmp_path / f"w; touch {markers[0]}; $(touch {markers[1]}) `touch {markers[2]}`"
    python_dir = tmp_path / "py'; touch pwned-py; '"  # a relative marker: the remote shell's cwd
    python_dir.mkdir()
    remote_home = Path(pwd.getpwnam(sshd.user).pw_dir)
    assert not (remote_home / "pwned-py").exists()
    python = python_dir / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')  # the venv's python, via a wrapper
    python.chmod(0o755)
    r = cli("device", "add", "evil", "--host", "127.0.0.1", "--port", sshd.port, "--key", sshd.client_key,
            "--python", python, "--workdir", workdir, "--tegrastats", f"tegrastats; touch {markers[0]}")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert cli("device", "trust", "evil", "--yes").returncode == 0
    [report] = cli("device", "check", "evil", "--json").json()
    assert report["python"] and report["tegrastats"] is False
    r = cli("bench", "1-1-1@8", "--device", "evil", "--batch", "2", "--runs", "2", "--batches", "2",
            "--warmup-runs", "1", "--warmup-batches", "1", "--threads", "1", "--compute", "cpu", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    [row] = json.loads(r.stdout)
    assert row["status"] == "done" and row["power_w"] is None  # tegrastats "missing", latency measured
    assert (workdir / "agent" / "remote" / "agent" / "main.py").is_file()  # the literal folder
    assert [m for m in markers if m.exists()] == []
    assert not list(tmp_path.rglob("pwned-py")) and not (remote_home / "pwned-py").exists()


@pytest.mark.parametrize("name", ["jet;id", "jet$(id)", "../jet", "-rf", "a b", "jet\n"])
def test_device_names_with_shell_syntax_are_refused(cli, name):
    r = cli("device", "add", "--host", "h", "--", name)
    assert r.returncode == 2 and "not allowed" in r.stderr


def test_bundle_paths_outside_the_work_folder_are_refused(sshd, ssh_env, tmp_path):
    known = Path(ssh_env["KLMTUI_HOME"]) / "known_hosts"
    known.parent.mkdir(parents=True)
    known.write_text(sshd.known_hosts_line())
    payload = tmp_path / "payload.py"
    payload.write_text("print('x')\n")
    transport = SshTransport(device_record(sshd, workdir=str(tmp_path / "work")))
    try:
        for rel in ("../evil.py", "/tmp/evil.py", "a/../../evil.py"):
            with pytest.raises(InputError):
                transport.push([(payload, rel)], "agent")
            with pytest.raises(InputError):
                transport.push([(payload, "ok.py")], rel)
        assert not (tmp_path / "evil.py").exists() and not Path("/tmp/evil.py").exists()
    finally:
        transport.close()
