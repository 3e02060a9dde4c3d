"""`klmtui device ...` as a user runs it, against a real loopback sshd."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import pytest

from tests.fixtures.cli import assert_one_line_error


@pytest.fixture
def dcli(cli, ssh_env):
    """The `cli` fixture inside the test's own SSH world (HOME, KLMTUI_HOME, no ssh-agent)."""
    cli.env.update(ssh_env)
    cli.env.pop("SSH_AUTH_SOCK", None)
    return cli


def add(dcli, sshd, name="jet", *extra, key=None):
    r = dcli(
        "device", "add", name, "--host", "127.0.0.1", "--port", sshd.port,
        "--key", key or sshd.client_key, "--python", sys.executable, *extra,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return r


def test_add_list_remove(dcli, sshd, tmp_path):
    r = add(dcli, sshd, "jet", "--user", sshd.user, "--workdir", "/tmp/klmtui-w", "--tegrastats", "sudo tegrastats")
    assert "klmtui device trust jet" in r.stdout
    rows = dcli("device", "list", "--json").json()
    assert rows == [
        {
            "id": "jet", "name": "jet", "host": "127.0.0.1", "user": sshd.user, "port": sshd.port,
            "key": str(sshd.client_key), "python": sys.executable, "tegrastats": "sudo tegrastats",
            "workdir": "/tmp/klmtui-w", "added": rows[0]["added"], "host_key_known": False,
        }
    ]  # fmt: skip
    table = dcli("device", "list")
    assert table.returncode == 0 and "jet" in table.stdout
    assert_one_line_error(add_again := dcli("device", "add", "jet", "--host", "h"), 2)
    assert "already exists" in add_again.stderr
    assert dcli("device", "remove", "jet").returncode == 0
    assert dcli("device", "list", "--json").json() == []
    assert "no device named 'jet'" in assert_one_line_error(dcli("device", "remove", "jet"), 2)


def test_add_accepts_user_at_host(dcli):
    assert dcli("device", "add", "nano", "--host", "nvidia@jetson-nano.local").returncode == 0
    [row] = dcli("device", "list", "--json").json()
    assert (row["user"], row["host"], row["port"], row["python"], row["workdir"]) == (
        "nvidia", "jetson-nano.local", None, "python3", "~/klmtui")
    assert "contradicts" in assert_one_line_error(dcli("device", "add", "x", "--host", "a@h", "--user", "b"), 2)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["bad name", "--host", "h"], "not allowed"),
        (["local", "--host", "h"], "built-in"),
        (["x", "--host", "h", "--port", "70000"], "70000"),
        (["x", "--host", "h", "--key", "/no/such/key"], "does not exist"),
        (["x", "--host", "two words"], "spaces"),
        (["x"], "--host"),
        (["x", "--host", "h", "--password", "hunter2"], "password"),
    ],
)
def test_add_rejects_bad_input_in_one_line(dcli, args, expected):
    line = assert_one_line_error(dcli("device", "add", *args), 2)
    assert expected in line
    assert dcli("device", "list", "--json").json() == []


def test_trust_shows_fingerprint_asks_and_records(dcli, sshd):
    add(dcli, sshd)
    known = Path(dcli.env["KLMTUI_HOME"]) / "known_hosts"
    declined = dcli("device", "trust", "jet", input="n\n")
    assert declined.returncode == 1
    assert sshd.fingerprint in declined.stderr and "not trusted" in declined.stderr
    assert not known.exists()

    accepted = dcli("device", "trust", "jet", input="y\n")
    assert accepted.returncode == 0, accepted.stderr
    assert sshd.fingerprint in accepted.stderr  # shown before the question
    assert known.read_text() == sshd.known_hosts_line()

    again = dcli("device", "trust", "jet", "--yes")
    assert again.returncode == 0 and "already trusted" in again.stdout
    assert dcli("device", "list", "--json").json()[0]["host_key_known"] is True


def test_trust_yes_for_scripts_still_prints_the_fingerprint(dcli, sshd):
    add(dcli, sshd)
    r = dcli("device", "trust", "jet", "--yes")
    assert r.returncode == 0, r.stderr
    assert sshd.fingerprint in r.stderr and sshd.fingerprint in r.stdout
    assert f"[127.0.0.1]:{sshd.port}" in r.stdout


def test_trust_through_proxy_jump_asks_for_the_jump_host_first(dcli, sshd):
    # One sshd plays both roles; HostKeyAlias files the device under its own known_hosts name.
    (Path(dcli.env["HOME"]) / ".ssh" / "config").write_text(
        f"Host hop\n  HostName 127.0.0.1\n  Port {sshd.port}\n  IdentityFile {sshd.client_key}\n"
        f"Host behind\n  HostName 127.0.0.1\n  HostKeyAlias jetson-behind\n  ProxyJump hop\n"
    )
    assert dcli("device", "add", "far", "--host", "behind", "--port", sshd.port, "--key", sshd.client_key).returncode == 0
    line = assert_one_line_error(dcli("device", "check", "far"), 1)
    assert f"[127.0.0.1]:{sshd.port}" in line and "klmtui device trust far" in line  # the hop is unknown
    r = dcli("device", "trust", "far", input="y\ny\n")
    assert r.returncode == 0, r.stderr
    assert "jump host" in r.stderr and r.stderr.count(sshd.fingerprint) == 2
    assert f"trusted jump host [127.0.0.1]:{sshd.port}" in r.stdout
    known = (Path(dcli.env["KLMTUI_HOME"]) / "known_hosts").read_text().splitlines()
    # HostKeyAlias is filed bare, whatever the port, as OpenSSH does
    assert [l.split()[0] for l in known] == [f"[127.0.0.1]:{sshd.port}", "jetson-behind"]
    assert dcli("device", "check", "far", "--json").returncode == 0


def test_check_reports_what_the_device_offers(dcli, sshd, tmp_path):
    fake = tmp_path / "bin" / "tegrastats"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    add(dcli, sshd, "jet", "--tegrastats", f"{fake} --interval 100", "--workdir", str(tmp_path / "not" / "yet"))
    assert dcli("device", "trust", "jet", "--yes").returncode == 0
    r = dcli("device", "check", "jet", "--json")
    assert r.returncode == 0, r.stderr
    [report] = r.json()
    assert report["python"] == platform.python_version()
    import torch

    assert report["torch"] == torch.__version__ and report["cuda"] == torch.cuda.is_available()
    assert report["tegrastats"] is True and report["tegrastats_path"] == str(fake)
    assert report["host_key"] == f"ssh-ed25519 {sshd.fingerprint}"
    assert report["disk_free_bytes"] > 0
    # Not a Jetson: these read as unavailable, not as errors.
    assert report["l4t"] is None and report["jetpack"] is None and report["model"] is None
    assert report["nvpmodel"] is None
    assert not (tmp_path / "not").exists()  # checking does not create the work folder

    table = dcli("device", "check", "jet")
    assert table.returncode == 0 and "unavailable" in table.stdout


def test_check_without_tegrastats_says_power_is_unavailable(dcli, sshd, tmp_path):
    add(dcli, sshd, "jet", "--tegrastats", str(tmp_path / "no-tegrastats"))
    dcli("device", "trust", "jet", "--yes")
    [report] = dcli("device", "check", "jet", "--json").json()
    assert report["tegrastats"] is False
    assert any("power unavailable" in p for p in report["problems"])


def test_unknown_host_key_is_refused_and_nothing_runs(dcli, sshd, tmp_path):
    add(dcli, sshd, "jet", "--workdir", str(tmp_path / "device"))
    line = assert_one_line_error(dcli("device", "check", "jet"), 1)
    assert sshd.fingerprint in line and "ssh-ed25519" in line and "klmtui device trust jet" in line
    assert "Accepted publickey" not in sshd.log.read_text()  # refused before authenticating


def test_changed_host_key_is_refused_loudly(dcli, sshd, tmp_path):
    add(dcli, sshd)
    known = Path(dcli.env["KLMTUI_HOME"]) / "known_hosts"
    known.parent.mkdir(parents=True)
    impostor = sshd.known_hosts_line().split()
    other = sshd.other_key.with_suffix(".pub").read_text().split()[1]
    known.write_text(f"{impostor[0]} ssh-ed25519 {other}\n")
    line = assert_one_line_error(dcli("device", "check", "jet"), 1)
    assert "HOST KEY CHANGED" in line and sshd.fingerprint in line
    r = dcli("device", "trust", "jet", input="n\n")
    assert r.returncode == 1 and "WARNING" in r.stderr and "NOT the recorded key" in r.stderr


def test_wrong_key_is_one_clear_line(dcli, sshd):
    add(dcli, sshd, key=sshd.other_key)
    assert dcli("device", "trust", "jet", "--yes").returncode == 0  # the host key is fine
    line = assert_one_line_error(dcli("device", "check", "jet"), 1)
    assert "authentication failed" in line and str(sshd.other_key) in line


def test_host_that_never_speaks_ssh_times_out(dcli, silent_port):
    r = dcli("device", "add", "mute", "--host", "127.0.0.1", "--port", silent_port)
    assert r.returncode == 0
    dcli.env["KLMTUI_SSH_TIMEOUT"] = "1"
    line = assert_one_line_error(dcli("device", "check", "mute"), 1)
    assert "no SSH banner within 1 s" in line
    line = assert_one_line_error(dcli("device", "trust", "mute", "--yes"), 1)
    assert "no SSH banner" in line


def test_closed_port_is_connection_refused(dcli, closed_port):
    dcli("device", "add", "gone", "--host", "127.0.0.1", "--port", closed_port)
    line = assert_one_line_error(dcli("device", "check", "gone"), 1)
    assert "connection refused" in line


def test_unknown_device_and_local(dcli):
    assert "no device named 'nope'" in assert_one_line_error(dcli("device", "check", "nope"), 2)
    assert "this machine" in assert_one_line_error(dcli("device", "check", "local"), 2)
    assert "built in" in assert_one_line_error(dcli("device", "remove", "local"), 2)



@pytest.mark.parametrize(
    "release, package, l4t, jetpack",
    [
        ("# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64, DATE: Sat Feb 19 17:05:08 UTC 2022",
         "", "32.7.1", "4.6.1"),
        ("# R32 (release), REVISION: 6.1, GCID: 27863751, BOARD: t210ref, EABI: aarch64, DATE: Mon Jul 26 19:20:30 UTC 2021",
         "", "32.6.1", "4.6"),
        ("# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, DATE: Tue Aug  1 19:57:35 UTC 2023",
         "", "35.4.1", "5.1.2"),
        ("", "36.3.0-20240506102626", "36.3.0", "6.0"),  # JetPack 6 dropped the release file
        ("", "", None, None),
    ],
)  # fmt: skip
def test_l4t_release_parsing(release, package, l4t, jetpack):
    from remote.devices import L4T_TO_JETPACK, parse_l4t

    assert parse_l4t(release, package) == l4t
    assert (L4T_TO_JETPACK.get(l4t) if l4t else None) == jetpack


def test_nvpmodel_and_df_parsing():
    from remote.devices import parse_df, parse_nvpmodel

    assert parse_nvpmodel("NV Fan Mode:quiet\nNV Power Mode: MAXN\n0\n") == ("MAXN", 0)
    assert parse_nvpmodel("NV Power Mode: MODE_15W_6CORE\n2") == ("MODE_15W_6CORE", 2)
    assert parse_nvpmodel("") == (None, None)
    assert parse_df("/dev/mmcblk0p1  30503752 14123456  15052436  49% /") == 15052436 * 1024
    assert parse_df("") is None
