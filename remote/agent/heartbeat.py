"""The agent's watchdog on the host's heartbeat (Python 3.6 compatible).

The host writes a line to the agent's stdin every few seconds over the session
(remote.bench, `HEARTBEAT_EVERY_S`). With `--heartbeat-timeout S` > 0 the agent reads stdin in a
thread; when nothing has arrived for S seconds (a link down, a host process stopped), or stdin
ends (the host process or its session is gone), the watchdog sends the agent SIGTERM: the agent
unwinds through its `finally` blocks (tegrastats stopped), reports `error` kind `heartbeat` if
anybody still listens, and exits. If the agent has not gone `HARD_KILL_S` later (stuck in a
kernel), its whole process group is killed.
"""

import os
import signal
import sys
import threading
import time

HARD_KILL_S = 15.0


class Watchdog(object):
    def __init__(self, timeout_s, stream=None):
        self.timeout_s = float(timeout_s)
        self.stream = stream if stream is not None else sys.stdin
        self.last = time.time()
        self.reason = None
        self._stop = threading.Event()

    def start(self):
        if self.timeout_s <= 0:
            return self
        for target, name in ((self._read, "heartbeat-read"), (self._check, "heartbeat-check")):
            thread = threading.Thread(target=target, name=name)
            thread.daemon = True
            thread.start()
        return self

    def stop(self):
        self._stop.set()

    def last_words(self, emit):
        """Say why we stop, without ever blocking (a frozen host reads nothing: a full pipe must
        not keep us alive): one line on stderr, the `error` event (kind heartbeat) on stdout."""
        line = "\n" + emit.line("error", error=self.reason, kind="heartbeat") + "\n"  # ends a torn line first
        for fd, text in ((2, "klmtui agent: %s; stopping\n" % self.reason), (1, line)):
            try:
                os.set_blocking(fd, False)
                os.write(fd, text.encode("utf-8"))
            except (OSError, ValueError):
                pass

    def _read(self):
        stream = getattr(self.stream, "buffer", self.stream)
        try:
            while not self._stop.is_set():
                line = stream.readline()
                if not line:
                    break
                self.last = time.time()
        except (OSError, ValueError):
            pass
        if not self._stop.is_set():
            self._fire("the host's session ended (no heartbeat)")

    def _check(self):
        while not self._stop.wait(min(1.0, self.timeout_s / 4.0)):
            silent = time.time() - self.last
            if silent > self.timeout_s:
                self._fire("no heartbeat from the host for %.0f s (limit %.0f s)" % (silent, self.timeout_s))
                return

    def _fire(self, reason):
        if self.reason is not None or self._stop.is_set():
            return
        self.reason = reason
        os.kill(os.getpid(), signal.SIGTERM)
        if not self._stop.wait(HARD_KILL_S):
            try:
                if os.getpgrp() == os.getpid():  # our own group (the host starts us so): all of it
                    os.killpg(os.getpgrp(), signal.SIGKILL)
            except OSError:
                pass
            os._exit(143)
