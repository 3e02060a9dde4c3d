"""remote.ssh behaving like OpenSSH's client, against a real loopback OpenSSH sshd (issue 16):
no injection through host names, known_hosts semantics (@revoked, patterns, negation,
@cert-authority, known_hosts2), ssh_config (Include, HostKeyAlias, IdentitiesOnly + agent),
clear auth failures and deadlines on every wait."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import InputError, OperationFailed
from core.store import Store
from remote import hostkeys, ssh
from tests.fixtures.cli import assert_one_line_error
from tests.fixtures.sshd import connects, device_record

RELAY = Path(__file__).parent / "fixtures" / "relay.py"
INJECTION = "x$(touch${IFS}PWNED).lab"


def klmtui_known(env) -> Path:
    path = Path(env["KLMTUI_HOME"]) / "known_hosts"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def user_ssh(env) -> Path:
    return Path(env["HOME"]) / ".ssh"


def key_part(sshd) -> str:
    return " ".join(sshd.host_key_pub.read_text().split()[:2])


# --------------------------------------------------------------------------- host names


@pytest.mark.parametrize("host", [INJECTION, "a;id", "-oProxyCommand=id", "a b", "h`id`", "a|b", "x" * 254, "a\x1b]0;t\x07"])
def test_host_names_with_shell_syntax_are_refused_as_openssh_does(host):
    with pytest.raises(InputError) as caught:
        ssh.check_host(host)
    assert "\n" not in str(caught.value) and "\x1b" not in str(caught.value)


@pytest.mark.parametrize("host", ["jetson.lan", "127.0.0.1", "fe80::1", "nano-01_b.example.org", "my-alias"])
def test_ordinary_host_names_pass(host):
    assert ssh.check_host(host) == host


@pytest.mark.parametrize("user", ["nvidia", "jet.son", "a_b-c"])
def test_ordinary_users_pass(user):
    assert ssh.check_user(user) == user


@pytest.mark.parametrize("user", ["-oX", "a;b", "a b", "$(id)", "", "u" * 65])
def test_users_with_shell_syntax_are_refused(user):
    with pytest.raises(InputError):
        ssh.check_user(user)


def test_injection_host_is_refused_at_add_and_at_use_and_no_command_runs(cli, ssh_env, sshd, tmp_path):
    """A ProxyCommand with %h (`sh -c` around it, as users write them): the injection host is
    refused by `device add`, and a record carrying it in a shared runs.json is refused at use,
    before the ProxyCommand (or anything in it) runs."""
    cli.env.update(ssh_env)
    ran = tmp_path / "proxy-ran.log"
    (user_ssh(ssh_env) / "config").write_text(
        f'Host *\n  ProxyCommand sh -c "exec {sys.executable} {RELAY} %h %p {ran}"\n'
    )
    r = cli("device", "add", "evil", "--host", INJECTION, "--port", sshd.port, "--key", sshd.client_key)
    line = assert_one_line_error(r, 2)
    assert "not a valid host name" in line
    # A record written by someone else's klmtui (or by hand) into the shared store:
    assert cli("device", "add", "evil", "--host", "127.0.0.1", "--port", sshd.port, "--key", sshd.client_key).returncode == 0
    Store(cli.store).update("devices", "evil", host=INJECTION)
    line = assert_one_line_error(cli("device", "check", "evil"), 2)  # every use goes through resolve_target
    assert "not a valid host name" in line
    with pytest.raises(InputError, match="not a valid host name"):
        ssh.fetch_host_key(Store(cli.store).get("devices", "evil"))  # `device trust`'s first step
    assert not ran.exists()
    assert not list(tmp_path.rglob("PWNED")) and not (Path(ssh_env["HOME"]) / "PWNED").exists()
    assert not Path(cli.cwd, "PWNED").exists()
    # The same ProxyCommand with a valid host: %h/%p expanded to exactly the validated values.
    Store(cli.store).update("devices", "evil", host="127.0.0.1")
    assert cli("device", "trust", "evil", "--yes").returncode == 0  # through the ProxyCommand
    assert set(ran.read_text().split()) == {"127.0.0.1"}


def test_bad_user_in_a_stored_record_is_refused_at_use(sshd, ssh_env):
    with pytest.raises(InputError, match="not a valid user name"):
        ssh.connect(device_record(sshd, user="root;id"))


# --------------------------------------------------------------------------- known_hosts


def test_wildcard_revoked_line_refuses_a_key_trusted_elsewhere_and_trust_does_not_pin_it(cli, ssh_env, sshd):
    cli.env.update(ssh_env)
    klmtui_known(ssh_env).write_text(sshd.known_hosts_line())  # trusted in klmtui's own file ...
    (user_ssh(ssh_env) / "known_hosts").write_text(f"@revoked * {key_part(sshd)}\n")  # ... revoked in the user's
    with pytest.raises(OperationFailed, match="@revoked"):
        ssh.connect(device_record(sshd))
    assert ssh.fetch_host_key(device_record(sshd)).status == "revoked"
    klmtui_known(ssh_env).unlink()
    assert cli("device", "add", "jet", "--host", "127.0.0.1", "--port", sshd.port, "--key", sshd.client_key).returncode == 0
    line = assert_one_line_error(cli("device", "trust", "jet", "--yes"), 1)
    assert "@revoked" in line
    assert not klmtui_known(ssh_env).exists()


def test_revoked_in_the_global_known_hosts2_of_the_config(sshd, ssh_env, tmp_path):
    klmtui_known(ssh_env).write_text(sshd.known_hosts_line())
    global2 = tmp_path / "ssh_known_hosts2"
    global2.write_text(f"@revoked [127.0.0.?]:* {key_part(sshd)}\n")
    (user_ssh(ssh_env) / "config").write_text(f"Host *\n  GlobalKnownHostsFile {tmp_path / 'none'} {global2}\n")
    with pytest.raises(OperationFailed, match="@revoked"):
        ssh.connect(device_record(sshd))


def test_known_hosts2_is_read(sshd, ssh_env):
    (user_ssh(ssh_env) / "known_hosts2").write_text(sshd.known_hosts_line())
    ssh.connect(device_record(sshd)).close()


def test_wildcard_patterns_match_and_negation_rules_out(sshd, ssh_env):
    user_known = user_ssh(ssh_env) / "known_hosts"
    user_known.write_text(f"[127.0.0.?]:{sshd.port} {key_part(sshd)}\n")
    ssh.connect(device_record(sshd)).close()
    user_known.write_text(f"*,![127.0.0.1]:{sshd.port} {key_part(sshd)}\n")
    with pytest.raises(ssh.UnknownHostKey):
        ssh.connect(device_record(sshd))


def test_host_matches_follows_openssh_match_hostname():
    assert hostkeys.host_matches(["*.lan"], "nano.lan")
    assert hostkeys.host_matches(["NANO.lan"], "nano.LAN")
    assert not hostkeys.host_matches(["*.lan"], "nano.lan.evil")
    assert not hostkeys.host_matches(["nano.lan", "!nano.lan"], "nano.lan")
    assert not hostkeys.host_matches(["!nano.lan"], "other.lan")  # negation alone matches nothing
    assert hostkeys.host_matches(["[127.0.0.?]:2222"], "[127.0.0.1]:2222")
    assert not hostkeys.host_matches(["[127.0.0.?]:2222"], "[127.0.0.10]:2222")
    assert not hostkeys.host_matches(["[nano]"], "n")  # brackets are literal, not a character class


def test_host_certificate_signed_by_a_cert_authority_line(sshd, ssh_env, tmp_path):
    ca = tmp_path / "ca"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ca)], check=True)
    subprocess.run(["ssh-keygen", "-q", "-s", str(ca), "-h", "-I", "klmtui-test", "-n", "127.0.0.1",
                    str(sshd.host_key_pub)], check=True, capture_output=True)  # fmt: skip
    sshd.stop()
    sshd.extra_config = [f"HostCertificate {sshd.root / 'host_ed25519-cert.pub'}"]
    sshd.start()
    ca_line = " ".join(Path(f"{ca}.pub").read_text().split()[:2])
    user_known = user_ssh(ssh_env) / "known_hosts"
    user_known.write_text(f"@cert-authority [127.0.0.1]:* {ca_line}\n")  # the host key itself is nowhere
    session = ssh.connect(device_record(sshd))
    try:
        assert session.transport.get_remote_server_key().public_blob is not None  # a certificate was used
        assert session.run("echo ok")[1] == "ok\n"
    finally:
        session.close()
    user_known.write_text(f"@cert-authority [127.0.0.1]:* {ca_line}\n@revoked * {ca_line}\n")
    with pytest.raises(OperationFailed, match="certificate authority .* @revoked"):
        ssh.connect(device_record(sshd))
    other = tmp_path / "other-ca"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    user_known.write_text(f"@cert-authority * {' '.join(Path(f'{other}.pub').read_text().split()[:2])}\n")
    with pytest.raises(OperationFailed, match="no @cert-authority line names"):
        ssh.connect(device_record(sshd))


# --------------------------------------------------------------------------- deadlines


def _within(seconds: float, fn):
    """Run fn in a thread; (elapsed, exception) once it ends; fail the test if it hangs."""
    import threading
    import time

    box: dict = {}

    def call():
        start = time.monotonic()
        try:
            fn()
        except BaseException as exc:
            box["error"] = exc
        box["elapsed"] = time.monotonic() - start

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still waiting after {seconds} s"
    return box["elapsed"], box.get("error")


@pytest.fixture
def relay(sshd, ssh_env):
    from tests.fixtures.relay import StallingRelay

    proxy = StallingRelay(sshd.host, sshd.port)
    klmtui_known(ssh_env).write_text(f"[127.0.0.1]:{proxy.port} {key_part(sshd)}\n")
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.mark.parametrize("when", ["before-channel", "after-channel"])
@pytest.mark.parametrize("step", ["exec", "sftp"])
def test_link_stalling_right_after_auth_ends_within_the_timeout(sshd, relay, step, when, monkeypatch):
    session = ssh.connect(device_record(sshd, port=relay.port), timeout=2)
    try:
        if when == "before-channel":
            relay.stall()
        else:  # the channel opens, then the exec / sftp subsystem request gets no answer
            real_open = session.transport.open_session

            def open_then_stall(*args, **kwargs):
                channel = real_open(*args, **kwargs)
                relay.stall()
                return channel

            monkeypatch.setattr(session.transport, "open_session", open_then_stall)
        call = (lambda: session.run("echo hi")) if step == "exec" else session.sftp
        elapsed, error = _within(60, call)
    finally:
        session.close()
    assert isinstance(error, ssh.SshUnreachable), error
    assert "within 2 s" in str(error) and "\n" not in str(error)
    assert elapsed < 20  # 2 s deadline; generous margin for a loaded machine (was: forever)


def test_dead_peer_found_by_keepalive_per_server_alive_interval_x_count_max(sshd, relay, ssh_env):
    (user_ssh(ssh_env) / "config").write_text("Host *\n  ServerAliveInterval 1\n  ServerAliveCountMax 2\n")
    session = ssh.connect(device_record(sshd, port=relay.port), timeout=5)
    assert (session.target.alive_interval, session.target.alive_count_max) == (1, 2)
    try:
        channel = session.open_exec("sleep 120")
        relay.stall()
        elapsed, error = _within(60, lambda: session.run("sleep 120", timeout=300))
        channel.close()
    finally:
        session.close()
    assert isinstance(error, ssh.SshUnreachable), error
    assert "2 keepalives in 2 s" in str(error)
    assert elapsed < 30  # ~2-3 s; the command itself would take 120 s


def test_connect_timeout_from_the_users_config(silent_port, ssh_env, monkeypatch):
    monkeypatch.delenv("KLMTUI_SSH_TIMEOUT", raising=False)
    (user_ssh(ssh_env) / "config").write_text("Host quiet\n  HostName 127.0.0.1\n  ConnectTimeout 1\n")
    elapsed, error = _within(60, lambda: ssh.connect({"id": "q", "host": "quiet", "port": silent_port}))
    assert isinstance(error, ssh.SshUnreachable) and "within 1 s" in str(error), error
    assert elapsed < 15


def test_device_check_ends_when_the_device_freezes_mid_command(cli, ssh_env, sshd, tmp_path):
    """The CLI as a user runs it: the device stops answering (TCP up, sshd frozen) while the check
    runs; `device check` ends within ServerAliveInterval x CountMax with one line, exit 1."""
    import time

    cli.env.update(ssh_env)
    (user_ssh(ssh_env) / "config").write_text("Host *\n  ServerAliveInterval 1\n  ServerAliveCountMax 2\n")
    slow = tmp_path / "slowpython"
    slow.write_text("#!/bin/sh\nsleep 60\n")
    slow.chmod(0o755)
    assert cli("device", "add", "jet", "--host", "127.0.0.1", "--port", sshd.port, "--key", sshd.client_key,
               "--python", slow).returncode == 0  # fmt: skip
    klmtui_known(ssh_env).write_text(sshd.known_hosts_line())
    argv = [sys.executable, "-m", "klmtui", "--store", str(cli.store), "device", "check", "jet"]
    proc = subprocess.Popen(argv, cwd=cli.cwd, env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while "Accepted publickey" not in sshd.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # the check's command is running now (its python sleeps for 60 s)
        sshd.freeze()
        frozen_at = time.monotonic()
        out, err = proc.communicate(timeout=60)
        elapsed = time.monotonic() - frozen_at
    finally:
        if proc.poll() is None:
            proc.kill()
        sshd.thaw()
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert "keepalives" in lines[0]
    assert elapsed < 30  # ~2-3 s; the command would have taken 60 s, a frozen link forever


def test_keepalive_does_not_end_a_healthy_quiet_command(sshd, ssh_env):
    klmtui_known(ssh_env).write_text(sshd.known_hosts_line())
    (user_ssh(ssh_env) / "config").write_text("Host *\n  ServerAliveInterval 1\n  ServerAliveCountMax 3\n")
    session = ssh.connect(device_record(sshd))
    try:
        assert session.run("sleep 4; echo done", timeout=60)[:2] == (0, "done\n")  # 4 keepalives, all answered
        assert session.lost_reason() is None
    finally:
        session.close()


def test_through_a_jump_host_revocation_and_validation_hold(sshd, ssh_env):
    """One sshd plays the jump host and (through direct-tcpip) the device behind it."""
    (user_ssh(ssh_env) / "config").write_text(
        f"Host hop\n  HostName 127.0.0.1\n  Port {sshd.port}\n  IdentityFile {sshd.client_key}\n"
        "Host behind\n  HostName 127.0.0.1\n  HostKeyAlias jetson-behind\n  ProxyJump hop\n"
        "Host *.evil\n  ProxyJump x;id@hop\n"
    )
    klmtui_known(ssh_env).write_text(sshd.known_hosts_line() + f"jetson-behind {key_part(sshd)}\n")
    record = device_record(sshd, host="behind")
    assert connects(record)
    connections = sshd.log.read_text().count("Connection from")
    assert connections >= 2  # the hop, then the device through it
    with pytest.raises(InputError, match="not a valid host name"):
        ssh.connect(device_record(sshd, host=INJECTION))
    with pytest.raises(InputError, match="not a valid user name"):
        ssh.connect(device_record(sshd, host="nano.evil"))
    assert sshd.log.read_text().count("Connection from") == connections  # refused before any connection
    (user_ssh(ssh_env) / "known_hosts").write_text(f"@revoked * {key_part(sshd)}\n")
    with pytest.raises(OperationFailed, match="@revoked"):
        ssh.connect(record)  # the jump host's key is refused first, as ssh would


def test_short_commands_have_bounded_output(sshd, ssh_env):
    klmtui_known(ssh_env).write_text(sshd.known_hosts_line())
    session = ssh.connect(device_record(sshd))
    try:
        with pytest.raises(OperationFailed, match="more than 1024 KiB; stopped"):
            session.run("yes", max_bytes=1 << 20)  # endless output: stopped, not buffered
        assert session.run("echo still fine")[1] == "still fine\n"
    finally:
        session.close()
