"""Authentication and ssh_config interop against a real loopback OpenSSH sshd and a real
ssh-agent (issue 16): Include, IdentitiesOnly + the agent's copy, MaxAuthTries with several agent
keys (OpenSSH's own client as the oracle), PKCS#8, legacy PEM, CertificateFile, permissions."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from remote import ssh
from tests.fixtures.cli import assert_one_line_error
from tests.fixtures.sshd import connects, device_record, keygen


@pytest.fixture
def trusted(sshd, ssh_env):
    path = Path(ssh_env["KLMTUI_HOME"]) / "known_hosts"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(sshd.known_hosts_line())
    return path


@pytest.fixture
def agent(tmp_path, monkeypatch):
    """A real ssh-agent on a temp socket, as $SSH_AUTH_SOCK; `agent(key)` adds a key."""
    if shutil.which("ssh-agent") is None:
        pytest.skip("ssh-agent is not installed (openssh-client)")
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not sock.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))

    def add(key: Path) -> None:
        subprocess.run(["ssh-add", "-q", str(key)], check=True, capture_output=True, env={**os.environ, "SSH_AUTH_SOCK": str(sock)})

    try:
        yield add
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def authorize(sshd, key: Path) -> None:
    with open(sshd.root / "authorized_keys", "a") as f:
        f.write(Path(f"{key}.pub").read_text())


def restart(sshd, *lines: str) -> None:
    sshd.stop()
    sshd.extra_config = list(lines)
    sshd.start()


def config(env, text: str) -> Path:
    path = Path(env["HOME"]) / ".ssh" / "config"
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- ssh_config


def test_include_with_globs_relative_to_dot_ssh(sshd, ssh_env, trusted):
    dot = Path(ssh_env["HOME"]) / ".ssh"
    (dot / "conf.d").mkdir()
    (dot / "conf.d" / "jet.conf").write_text(
        f"Host jet\n  HostName 127.0.0.1\n  Port {sshd.port}\n  IdentityFile {sshd.client_key}\n"
    )
    (dot / "other.conf").write_text("Host *\n  Port 1\n")  # would break the connection if applied
    # (as in ssh, a line belongs to the last Host/Match above it, whatever its indentation)
    config(ssh_env, "Include conf.d/*.conf\nUser nobody-by-default\nHost elsewhere\n  Include other.conf\n")
    target = ssh.resolve_target({"id": "jet", "host": "jet"})
    assert (target.hostname, target.port, target.key_files) == ("127.0.0.1", sshd.port, [str(sshd.client_key)])
    assert target.user == "nobody-by-default"  # a top-level line after an Include is top level again
    assert connects({"id": "jet", "host": "jet", "user": sshd.user})
    assert ssh.resolve_target({"id": "e", "host": "elsewhere"}).port == 1  # that Include applies there


def test_host_key_alias_is_looked_up_bare(sshd, ssh_env):
    config(ssh_env, "Host jet\n  HostName 127.0.0.1\n  HostKeyAlias jetson-7\n")
    (Path(ssh_env["HOME"]) / ".ssh" / "known_hosts").write_text(
        "jetson-7 " + " ".join(sshd.host_key_pub.read_text().split()[:2]) + "\n"
    )  # where `ssh` files it, whatever the port
    assert connects(device_record(sshd, host="jet"))


# --------------------------------------------------------------------------- the agent


def test_identities_only_uses_the_agents_copy_of_a_listed_key(sshd, ssh_env, trusted, agent, tmp_path, monkeypatch):
    key = keygen(tmp_path / "listed", "listed")
    authorize(sshd, key)
    agent(key)
    subprocess.run(["ssh-keygen", "-q", "-p", "-P", "", "-N", "secret", "-f", str(key)], check=True)  # now encrypted
    config(ssh_env, f"Host *\n  IdentityFile {key}\n  IdentitiesOnly yes\n")
    assert connects(device_record(sshd, key=None))
    monkeypatch.delenv("SSH_AUTH_SOCK")
    with pytest.raises(ssh.SshAuthFailed) as caught:
        ssh.connect(device_record(sshd, key=None))
    assert "passphrase-protected" in str(caught.value) and f"ssh-add {key}" in str(caught.value)


def _openssh(sshd, tmp_path, *options: str) -> subprocess.CompletedProcess:
    known = tmp_path / "ssh_known"
    known.write_text(sshd.known_hosts_line())
    return subprocess.run(
        ["ssh", "-F", "none", "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes",
         "-o", "PasswordAuthentication=no", *options, "-i", str(sshd.client_key), "-p", str(sshd.port),
         f"{sshd.user}@127.0.0.1", "true"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_max_auth_tries_with_several_agent_keys_says_too_many_failures(sshd, ssh_env, trusted, agent, tmp_path):
    restart(sshd, "MaxAuthTries 2")
    for i in range(3):
        agent(keygen(tmp_path / f"wrong{i}", f"wrong{i}"))
    oracle = _openssh(sshd, tmp_path)
    assert oracle.returncode != 0 and "Too many authentication failures" in oracle.stderr  # OpenSSH: same order
    with pytest.raises(ssh.SshAuthFailed) as caught:
        ssh.connect(device_record(sshd))
    message = str(caught.value)
    assert "too many authentication failures" in message and "IdentitiesOnly yes" in message and "\n" not in message
    assert "handshake" not in message
    # IdentitiesOnly: only the listed key is offered, for OpenSSH and for klmtui.
    assert _openssh(sshd, tmp_path, "-o", "IdentitiesOnly=yes").returncode == 0
    config(ssh_env, "Host *\n  IdentitiesOnly yes\n")
    assert connects(device_record(sshd))


# --------------------------------------------------------------------------- key files


@pytest.mark.parametrize("kind", [("rsa", "-b", "2048"), ("ecdsa",)])
def test_pkcs8_keys(sshd, ssh_env, trusted, tmp_path, kind):
    key = tmp_path / "pkcs8"
    subprocess.run(["ssh-keygen", "-q", "-t", *kind, "-m", "PKCS8", "-N", "", "-f", str(key)], check=True)
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    authorize(sshd, key)
    assert connects(device_record(sshd, key=str(key)))


def test_encrypted_legacy_pem_key_asks_for_the_agent(sshd, ssh_env, trusted, tmp_path):
    key = tmp_path / "pem"
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "secret", "-f", str(key)], check=True)
    authorize(sshd, key)
    with pytest.raises(ssh.SshAuthFailed) as caught:
        ssh.connect(device_record(sshd, key=str(key)))
    assert "passphrase-protected" in str(caught.value) and "expected OPENSSH" not in str(caught.value)


def test_unsupported_key_file_names_the_formats(sshd, ssh_env, trusted, tmp_path):
    key = tmp_path / "garbage"
    key.write_text("-----BEGIN SOMETHING-----\nAAAA\n-----END SOMETHING-----\n")
    key.chmod(0o600)
    with pytest.raises(ssh.SshAuthFailed, match="OpenSSH, PEM and PKCS#8"):
        ssh.connect(device_record(sshd, key=str(key)))


def test_private_key_readable_by_others_is_refused(sshd, ssh_env, trusted, tmp_path):
    key = tmp_path / "open_key"
    shutil.copy(sshd.client_key, key)
    key.chmod(0o644)
    with pytest.raises(ssh.SshAuthFailed) as caught:
        ssh.connect(device_record(sshd, key=str(key)))
    assert "permissions 0644" in str(caught.value) and f"chmod 600 {key}" in str(caught.value)


def test_certificate_file_from_the_config(sshd, ssh_env, trusted, tmp_path):
    ca = keygen(tmp_path / "user_ca", "user-ca")
    key = keygen(tmp_path / "certified", "certified")  # not in authorized_keys: only its certificate helps
    subprocess.run(["ssh-keygen", "-q", "-s", str(ca), "-I", "klmtui-test", "-n", sshd.user, f"{key}.pub"],
                   check=True, capture_output=True)  # fmt: skip
    (tmp_path / "certs").mkdir()
    cert = tmp_path / "certs" / "mine.pub"
    shutil.move(f"{key}-cert.pub", cert)  # not beside the key: only CertificateFile finds it
    restart(sshd, f"TrustedUserCAKeys {ca}.pub")
    with pytest.raises(ssh.SshAuthFailed):
        ssh.connect(device_record(sshd, key=str(key)))
    config(ssh_env, f"Host *\n  CertificateFile {cert}\n")
    assert connects(device_record(sshd, key=str(key)))


def test_match_blocks_are_applied(ssh_env):
    config(ssh_env, "Match host jet,nano\n  Port 2201\nMatch originalhost other\n  Port 2202\nHost *\n  Port 2200\n")
    assert ssh.resolve_target({"id": "a", "host": "jet"}).port == 2201
    assert ssh.resolve_target({"id": "b", "host": "other"}).port == 2202
    assert ssh.resolve_target({"id": "c", "host": "elsewhere"}).port == 2200


def test_bad_numbers_in_the_config_are_one_line_input_errors(ssh_env):
    from core.errors import InputError

    config(ssh_env, "Host *\n  ServerAliveInterval often\n")
    with pytest.raises(InputError, match="ServerAliveInterval 'often'"):
        ssh.resolve_target({"id": "a", "host": "jet"})


def test_match_exec_runs_through_the_cli(cli, ssh_env, closed_port):
    """`Match exec` (paramiko runs it with invoke, %h validated first) picks the port."""
    cli.env.update(ssh_env)
    config(ssh_env, f"Match exec \"test %h = 127.0.0.1\"\n  Port {closed_port}\n")
    assert cli("device", "add", "m", "--host", "127.0.0.1").returncode == 0
    line = assert_one_line_error(cli("device", "check", "m", input=""), 1)
    assert f"127.0.0.1:{closed_port}" in line and "refused" in line
