"""tests/fixtures/leaks.py: a test session leaves no detached runner or agent behind, whatever happens.

Each case runs a real inner pytest (this repository's leak plugin only, no ini) on a small test
file that starts a detached process exactly as klmtui starts its runners (core.jobs.process:
double fork, new session, re-parented to init), then fails, is interrupted or is killed -9.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.fixtures.leaks import GROUP_ENV, MARKER_ENV, gone, owner_alive, session_token
from tests.fixtures.paths import REPO

SPAWN = """
import os, sys, time
from pathlib import Path
from core.jobs.process import spawn_detached

def spawn(tag, cwd):
    # a stand-in runner: detached like core.jobs.local's, a long sleep that names its tag
    pid = spawn_detached([sys.executable, "-c", "import time; time.sleep(300)", tag], Path(cwd) / (tag + ".log"), cwd)
    Path(os.environ["LEAK_PIDS"], tag).write_text(str(pid))
    return pid
"""


def wait(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def inner_pytest(tmp_path: Path, body: str, name: str = "test_inner.py", **popen) -> subprocess.Popen:
    """An inner pytest session on `body`; its sweep group is this test's own (see GROUP_ENV)."""
    folder = tmp_path / "inner"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(SPAWN + textwrap.dedent(body))
    (tmp_path / "pids").mkdir(exist_ok=True)
    env = dict(os.environ, LEAK_PIDS=str(tmp_path / "pids"), PYTEST_DISABLE_PLUGIN_AUTOLOAD="1", PYTHONPATH=str(REPO))
    env[GROUP_ENV] = str(tmp_path)
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "tests.fixtures.leaks",
        "-c",
        os.devnull,
        "--rootdir",
        str(folder),
        # its own temp root: a numbered one would make the inner session's exit clean up every old
        # /tmp/pytest-of-* run (minutes on a machine with many), and that is not what is tested here
        "--basetemp",
        str(tmp_path / "inner-tmp"),
        "-W",
        "default",
        str(folder / name),
    ]
    return subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=_ctrl_c_as_in_a_terminal, **popen)


def _ctrl_c_as_in_a_terminal() -> None:
    """SIGINT back to its default in the inner session. A suite started as a background job of a
    non-interactive shell (`cmd &`, as CI scripts often are) inherits SIGINT *ignored*, and Python
    keeps an ignored SIGINT ignored: the ctrl-c case would then wait out its sleep."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def pid_of(tmp_path: Path, tag: str, timeout: float = 60.0) -> int:
    path = tmp_path / "pids" / tag
    assert wait(lambda: path.exists() and path.read_text().strip(), timeout), f"{tag} never started"
    return int(path.read_text())


def reap(*pids: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_failing_test_and_the_session_end_leave_nothing_running(tmp_path):
    body = """
    def test_fails_with_a_runner_in_its_tmp_path(tmp_path):
        spawn("in-tmp", tmp_path)
        assert False, "the test fails with its runner still running"

    def test_a_runner_outside_any_tmp_path_lives_until_the_session_ends(tmp_path_factory):
        spawn("outside", "/")

    def test_per_test_cleanup_left_the_outside_one_alone():
        pid = int(Path(os.environ["LEAK_PIDS"], "outside").read_text())
        assert Path(f"/proc/{pid}").exists()
    """
    proc = inner_pytest(tmp_path, body)
    out = proc.communicate(timeout=120)[0]
    inside, outside = pid_of(tmp_path, "in-tmp", 0), pid_of(tmp_path, "outside", 0)
    try:
        assert proc.returncode == 1, out
        assert "1 failed, 2 passed" in out, out
        assert "LeakedProcessWarning" in out and "test_fails_with_a_runner_in_its_tmp_path left 1 process(es)" in out
        assert f"pid {inside}:" in out
        assert gone(inside) and gone(outside), out  # the outside one: at the session's end
    finally:
        reap(inside, outside)


def test_ctrl_c_during_a_test_leaves_nothing_running(tmp_path):
    body = """
    def test_interrupted(tmp_path):
        spawn("interrupted", "/")
        time.sleep(120)
    """
    proc = inner_pytest(tmp_path, body)
    try:
        pid = pid_of(tmp_path, "interrupted")
        assert not gone(pid)
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=60)[0]
        assert proc.returncode == 2 and "KeyboardInterrupt" in out, out
        assert wait(lambda: gone(pid), 10), out
    finally:
        proc.kill()
        proc.wait()
        reap(*(int(p.read_text()) for p in (tmp_path / "pids").iterdir()))


def test_a_session_killed_minus_9_is_cleaned_up_by_the_next_one(tmp_path):
    body = """
    def test_killed(tmp_path):
        spawn("orphan", tmp_path)
        time.sleep(120)
    """
    proc = inner_pytest(tmp_path, body)
    try:
        pid = pid_of(tmp_path, "orphan")
        proc.kill()  # nothing of the session's teardown runs
        proc.wait()
        token = Path(f"/proc/{pid}/environ").read_bytes().split(MARKER_ENV.encode() + b"=")[1].split(b"\0")[0].decode()
        assert not gone(pid) and not owner_alive(token)
        nxt = inner_pytest(tmp_path, "def test_nothing():\n    pass\n", name="test_next.py")
        out = nxt.communicate(timeout=120)[0]
        assert nxt.returncode == 0, out
        assert gone(pid), out
        assert "left by an earlier test session that died" in out and f"pid {pid}:" in out, out
    finally:
        proc.kill()
        reap(*(int(p.read_text()) for p in (tmp_path / "pids").iterdir()))


def test_the_marker_is_this_session_and_reaches_ssh_sessions(sshd, ssh_env):
    from remote import ssh
    from tests.fixtures.sshd import device_record

    assert os.environ[MARKER_ENV] == session_token() and owner_alive(session_token())
    (Path(ssh_env["KLMTUI_HOME"]) / "known_hosts").parent.mkdir(parents=True, exist_ok=True)
    (Path(ssh_env["KLMTUI_HOME"]) / "known_hosts").write_text(sshd.known_hosts_line())
    session = ssh.connect(device_record(sshd))
    try:
        assert session.run(f"echo ${MARKER_ENV}")[1] == os.environ[MARKER_ENV] + "\n"
    finally:
        session.close()
