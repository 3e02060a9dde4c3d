"""SshTransport over a real loopback sshd: pushes, confinement, streamed agent output, cancel, link loss.

The "device" is this machine through sshd, so the tests can look at the remote files and processes
directly. The agent here is a small stand-in module (the transport is under test, not the agent;
tests/test_bench_ssh.py runs the real one).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from core.errors import InputError
from remote.ssh_transport import SshTransport, confined_path
from tests.fixtures.sshd import device_record

STAND_IN_AGENT = '''
import json, os, subprocess, sys, time
count, pause = int(sys.argv[1]), sys.argv[2]
child = subprocess.Popen(["sleep", "300"], preexec_fn=os.setpgrp)  # like tegrastats: its own group
print(json.dumps({"event": "hello", "pid": os.getpid(), "pgid": os.getpgid(0), "child": child.pid,
                  "argv": sys.argv[3:], "cwd": os.getcwd()}), flush=True)
sys.stderr.write("stand-in agent stderr\\n"); sys.stderr.flush()
for i in range(count):
    print(json.dumps({"event": "latency", "i": i}), flush=True)
    if pause == "ack":  # wait until the host has seen this line (proves lines are streamed)
        deadline = time.time() + 30
        while not os.path.exists("ack-%d" % i) and time.time() < deadline:
            time.sleep(0.01)
    else:
        time.sleep(float(pause))
child.kill()
sys.exit(int(os.environ.get("STAND_IN_EXIT", "4")))
'''


def stand_in_bundle(root: Path) -> list[tuple[Path, str]]:
    files = {"remote/__init__.py": "", "remote/agent/__init__.py": "", "remote/agent/main.py": STAND_IN_AGENT}
    out = []
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        out.append((path, rel))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def transport(sshd, ssh_env, tmp_path):
    known = Path(ssh_env["KLMTUI_HOME"]) / "known_hosts"
    known.parent.mkdir(parents=True)
    known.write_text(sshd.known_hosts_line())
    t = SshTransport(device_record(sshd, python=sys.executable, workdir=str(tmp_path / "device work")))
    yield t
    t.close()


def test_push_uploads_then_skips_unchanged_files(transport, tmp_path):
    files = stand_in_bundle(tmp_path / "src")
    seen = []
    agent = transport.push(files, "agent", lambda done, total, name: seen.append((done, total, name)))
    assert agent == str(tmp_path / "device work" / "agent")
    for local, rel in files:
        assert (Path(agent) / rel).read_bytes() == local.read_bytes()
    assert sorted(transport.last_push["uploaded"]) == sorted(rel for _, rel in files)
    total = sum(local.stat().st_size for local, _ in files)
    assert seen[-1] == (total, total, "")
    assert [d for d, _, _ in seen] == sorted(d for d, _, _ in seen)  # progress only grows
    assert not list(Path(agent).rglob("*.klmtui-tmp-*"))  # temp names were renamed away

    transport.push(files, "agent")
    assert transport.last_push == {"uploaded": [], "skipped": [rel for _, rel in files]}

    (tmp_path / "src" / "remote" / "agent" / "main.py").write_text(STAND_IN_AGENT + "\n# changed\n")
    (Path(agent) / "remote" / "__init__.py").write_text("# tampered on the device\n")
    transport.push(files, "agent")
    assert sorted(transport.last_push["uploaded"]) == ["remote/__init__.py", "remote/agent/main.py"]
    assert (Path(agent) / "remote" / "__init__.py").read_text() == ""


def test_put_file_stays_inside_the_work_folder(transport, tmp_path):
    checkpoint = tmp_path / "weights.pt"
    checkpoint.write_bytes(os.urandom(300_000))
    remote = transport.put_file(checkpoint, "checkpoints/t-1234abcd.pt")
    assert Path(remote).read_bytes() == checkpoint.read_bytes()
    assert remote == str(tmp_path / "device work" / "checkpoints" / "t-1234abcd.pt")
    for bad in ("/etc/passwd", "../outside.pt", "checkpoints/../../outside.pt", "~/x.pt", ""):
        with pytest.raises(InputError):
            transport.put_file(checkpoint, bad)
    # A symlink inside the work folder that points outside is caught on the device side.
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (tmp_path / "device work" / "escape").symlink_to(outside)
    for sneaky in ("escape/x.pt", "escape/deeper/x.pt"):
        with pytest.raises(InputError, match="outside the work folder"):
            transport.put_file(checkpoint, sneaky)
    assert not list(outside.iterdir())  # not even an empty folder was made there
    assert not (tmp_path / "outside.pt").exists()


def test_confined_path_rules():
    assert confined_path("/w", "a/b.pt") == "/w/a/b.pt"
    assert confined_path("/w/", "./a//b.pt") == "/w/a/b.pt"
    for bad in ("/abs", "..", "a/../../b", "a\nb", "~root/x"):
        with pytest.raises(InputError):
            confined_path("/w", bad)


def test_agent_output_streams_live_in_order_with_exit_status(transport, tmp_path):
    transport.push(stand_in_bundle(tmp_path / "src"), "agent")
    process = transport.start_agent(["5", "ack", "two words", "$(touch pwned)"])
    events = []
    for line in process.lines():
        events.append(json.loads(line))
        if events[-1]["event"] == "latency":  # the agent waits for this before going on
            (Path(transport.agent_dir) / f"ack-{events[-1]['i']}").touch()
    assert [e["event"] for e in events] == ["hello"] + ["latency"] * 5
    assert [e["i"] for e in events[1:]] == [0, 1, 2, 3, 4]
    hello = events[0]
    assert hello["argv"] == ["two words", "$(touch pwned)"]  # arguments arrive verbatim
    assert hello["pgid"] == hello["pid"] == process.pgid  # its own process group, and we know it
    assert hello["cwd"] == transport.agent_dir
    assert process.wait(10) == 4
    assert "stand-in agent stderr" in process.stderr_tail()
    assert not list(Path(transport.agent_dir).rglob("pwned"))


def test_cancel_kills_the_remote_process_group(transport, tmp_path):
    transport.push(stand_in_bundle(tmp_path / "src"), "agent")
    process = transport.start_agent(["1000", "0.1"])
    lines = process.lines()
    hello = json.loads(next(lines))
    assert alive(hello["pid"]) and alive(hello["child"])
    next(lines)
    process.cancel()
    rest = list(lines)  # ends promptly after cancel
    assert len(rest) < 100
    deadline = time.monotonic() + 10
    while (alive(hello["pid"]) or alive(hello["child"])) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(hello["pid"]), "agent survived cancel"
    assert not alive(hello["child"]), "agent's child (own process group) survived cancel"
    process.cancel()  # idempotent


def test_link_drop_ends_lines_and_wait_is_none(sshd, transport, tmp_path):
    transport.push(stand_in_bundle(tmp_path / "src"), "agent")
    process = transport.start_agent(["1000", "0.1"])
    lines = process.lines()
    json.loads(next(lines))
    next(lines)
    sshd.kill()
    list(lines)  # must end, not hang
    assert process.wait(5) is None
    assert process.link_lost
    process.cancel()  # harmless on a dead link


def test_silent_link_is_detected_by_the_probe(sshd, ssh_env, tmp_path):
    known = Path(ssh_env["KLMTUI_HOME"]) / "known_hosts"
    known.parent.mkdir(parents=True)
    known.write_text(sshd.known_hosts_line())
    transport = SshTransport(
        device_record(sshd, python=sys.executable), timeout=1.0, probe_interval=1.0
    )
    try:
        transport.push(stand_in_bundle(tmp_path / "src"), "agent")
        process = transport.start_agent(["1000", "0.1"])
        lines = process.lines()
        next(lines)
        sshd.freeze()  # TCP stays up, nothing answers any more
        try:
            list(lines)
        finally:
            sshd.thaw()
        assert process.link_lost and process.wait(1) is None
    finally:
        transport.close()


def test_work_folder_tilde_and_relative_resolve_on_the_device(sshd, ssh_env):
    import pwd

    known = Path(ssh_env["KLMTUI_HOME"]) / "known_hosts"
    known.parent.mkdir(parents=True)
    known.write_text(sshd.known_hosts_line())
    home = pwd.getpwnam(sshd.user).pw_dir  # the remote login folder (not the test's $HOME)
    for workdir, expected in (("~/klmtui-nonexistent", f"{home}/klmtui-nonexistent"),
                              ("rel/dir", f"{home}/rel/dir"), (None, f"{home}/klmtui")):  # fmt: skip
        transport = SshTransport(device_record(sshd, workdir=workdir))
        try:
            assert transport.workdir == expected
            assert transport.agent_dir == f"{expected}/agent"
        finally:
            transport.close()
    assert not Path(home, "klmtui-nonexistent").exists()  # resolving creates nothing
