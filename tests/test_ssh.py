"""remote.ssh against a real loopback sshd: host-key verification, ~/.ssh/config, keys, timeouts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from remote import hostkeys, ssh
from tests.fixtures.sshd import device_record


def trust(sshd, env) -> Path:
    path = Path(env["KLMTUI_HOME"]) / "known_hosts"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(sshd.known_hosts_line())
    return path


def test_unknown_host_key_is_refused_with_openssh_fingerprint(sshd, ssh_env):
    with pytest.raises(ssh.UnknownHostKey) as caught:
        ssh.connect(device_record(sshd))
    err = caught.value
    assert err.fingerprint == sshd.fingerprint  # the same text `ssh-keygen -l` prints
    assert err.key_type == "ssh-ed25519"
    assert err.host_entry == f"[127.0.0.1]:{sshd.port}"
    message = str(err)
    assert sshd.fingerprint in message and "klmtui device trust jet" in message and "\n" not in message


def test_trusted_key_connects_and_runs(sshd, ssh_env):
    trust(sshd, ssh_env)
    session = ssh.connect(device_record(sshd))
    try:
        status, out, err = session.run("echo out; echo err >&2; exit 7")
        assert (status, out, err) == (7, "out\n", "err\n")
    finally:
        session.close()


def test_changed_host_key_is_refused_loudly(sshd, ssh_env, tmp_path):
    other = tmp_path / "impostor"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    key_type, key_b64 = (other.with_suffix(".pub")).read_text().split()[:2]
    path = Path(ssh_env["KLMTUI_HOME"]) / "known_hosts"
    path.parent.mkdir(parents=True)
    path.write_text(f"[127.0.0.1]:{sshd.port} {key_type} {key_b64}\n")
    with pytest.raises(ssh.ChangedHostKey) as caught:
        ssh.connect(device_record(sshd))
    message = str(caught.value)
    assert "HOST KEY CHANGED" in message and "man in the middle" in message
    assert sshd.fingerprint in message
    assert caught.value.expected_fingerprint == subprocess.run(
        ["ssh-keygen", "-lf", str(other.with_suffix(".pub"))], capture_output=True, text=True
    ).stdout.split()[1]


def test_users_hashed_known_hosts_is_honoured_read_only(sshd, ssh_env):
    user_known = Path(ssh_env["HOME"]) / ".ssh" / "known_hosts"
    user_known.write_text(sshd.known_hosts_line())
    subprocess.run(["ssh-keygen", "-H", "-f", str(user_known)], check=True, capture_output=True)
    assert user_known.read_text().startswith("|1|")  # hashed like HashKnownHosts yes
    before = user_known.read_text()
    ssh.connect(device_record(sshd)).close()
    assert user_known.read_text() == before
    assert not (Path(ssh_env["KLMTUI_HOME"]) / "known_hosts").exists()


def test_fetch_and_record_host_key_round_trip(sshd, ssh_env):
    presented = ssh.fetch_host_key(device_record(sshd))
    assert (presented.status, presented.fingerprint) == ("unknown", sshd.fingerprint)
    path = ssh.klmtui_known_hosts()
    hostkeys.record(path, presented.entry, presented.key)
    assert path.read_text() == sshd.known_hosts_line()  # OpenSSH's `[host]:port type key` form
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert ssh.fetch_host_key(device_record(sshd)).status == "trusted"
    ssh.connect(device_record(sshd)).close()


def test_wrong_key_is_an_auth_error(sshd, ssh_env):
    trust(sshd, ssh_env)
    with pytest.raises(ssh.SshAuthFailed) as caught:
        ssh.connect(device_record(sshd, key=str(sshd.other_key)))
    assert "authentication failed" in str(caught.value) and str(sshd.other_key) in str(caught.value)


def test_ssh_config_alias_user_port_and_identity_file(sshd, ssh_env):
    trust(sshd, ssh_env)
    (Path(ssh_env["HOME"]) / ".ssh" / "config").write_text(
        f"Host jetson-alias\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User {sshd.user}\n"
        f"  IdentityFile {sshd.client_key}\n  IdentitiesOnly yes\n"
    )
    record = device_record(sshd, host="jetson-alias", port=None, key=None)
    target = ssh.resolve_target(record)
    assert (target.hostname, target.port, target.user) == ("127.0.0.1", sshd.port, sshd.user)
    session = ssh.connect(record)
    try:
        assert session.run("echo $USER")[1].strip() == sshd.user
    finally:
        session.close()


def test_proxy_jump_through_a_direct_tcpip_channel(sshd, ssh_env):
    trust(sshd, ssh_env)
    # The jump host is the same sshd; the target is reached through a direct-tcpip channel from it.
    (Path(ssh_env["HOME"]) / ".ssh" / "config").write_text(
        f"Host hop\n  HostName 127.0.0.1\n  Port {sshd.port}\n  IdentityFile {sshd.client_key}\n"
        f"Host behind\n  HostName 127.0.0.1\n  ProxyJump hop\n"
    )
    session = ssh.connect(device_record(sshd, host="behind"))
    try:
        assert len(session.hops) == 1
        assert session.run("echo through")[1] == "through\n"
    finally:
        session.close()


def test_proxy_command(sshd, ssh_env):
    trust(sshd, ssh_env)
    relay = (
        f"ssh -q -i {sshd.client_key} -p {sshd.port} -o BatchMode=yes -o StrictHostKeyChecking=yes "
        f"-o UserKnownHostsFile={Path(ssh_env['KLMTUI_HOME']) / 'known_hosts'} -W %h:%p {sshd.user}@127.0.0.1"
    )
    (Path(ssh_env["HOME"]) / ".ssh" / "config").write_text(f"Host viaproxy\n  HostName 127.0.0.1\n  ProxyCommand {relay}\n")
    session = ssh.connect(device_record(sshd, host="viaproxy"))
    try:
        assert session.run("echo proxied")[1] == "proxied\n"
    finally:
        session.close()


def test_silent_host_times_out_on_the_banner(silent_port, ssh_env):
    record = {"id": "mute", "host": "127.0.0.1", "port": silent_port}
    with pytest.raises(ssh.SshUnreachable) as caught:
        ssh.connect(record, timeout=1.0)
    assert "no SSH banner within 1 s" in str(caught.value)


def test_closed_port_is_refused(closed_port, ssh_env):
    with pytest.raises(ssh.SshUnreachable) as caught:
        ssh.connect({"id": "gone", "host": "127.0.0.1", "port": closed_port}, timeout=2)
    assert "connection refused" in str(caught.value)


def test_timeout_from_environment(monkeypatch):
    monkeypatch.setenv("KLMTUI_SSH_TIMEOUT", "2.5")
    assert ssh.ssh_timeout() == 2.5
    monkeypatch.setenv("KLMTUI_SSH_TIMEOUT", "soon")
    with pytest.raises(ssh.InputError):
        ssh.ssh_timeout()


def test_remote_word_quotes_but_keeps_home():
    assert ssh.remote_word("~/venv/bin/python") == "\"$HOME\"/venv/bin/python"
    assert ssh.remote_word("python3; touch /tmp/x") == "'python3; touch /tmp/x'"
