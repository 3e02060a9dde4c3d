"""Deadlines for every SSH wait: OpenSSH-style keepalive and bounded blocking calls.

paramiko's own keepalive (`Transport.set_keepalive`) sends requests that want no reply, so it
never concludes that the peer is dead, and several paramiko calls wait without a timeout
(`Channel.exec_command`, starting SFTP). Here:

* `Keepalive` does what ssh's ServerAliveInterval/ServerAliveCountMax do: every `interval`
  seconds one `keepalive@openssh.com` request that wants a reply; when `count_max` intervals in
  a row pass without an answer the transport is closed, so every read and wait on it ends at
  once, and `reason` says why. A dead peer is thus detected within interval x count_max.
* `bounded(fn, seconds, on_timeout)` runs a blocking call in a helper thread and gives up after
  `seconds`, calling `on_timeout` (which closes the transport, ending the stuck call as well).
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional

DEFAULT_ALIVE_INTERVAL_S = 15.0  # ssh's default is 0 (off); klmtui always watches, unless told 0
DEFAULT_ALIVE_COUNT_MAX = 3  # ssh's default


class Keepalive:
    def __init__(self, transport: Any, interval: float, count_max: int, what: str):
        self.transport, self.interval, self.count_max, self.what = transport, float(interval), int(count_max), what
        self.reason: Optional[str] = None
        self._stop = threading.Event()
        self._answered = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"keepalive-{what}", daemon=True)

    @property
    def window_s(self) -> float:
        return self.interval * self.count_max

    def start(self) -> "Keepalive":
        if self.interval > 0 and self.count_max > 0:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _ask(self) -> None:
        try:
            self.transport.global_request("keepalive@openssh.com", wait=True)  # a reply or a failure: alive
        except Exception:
            return
        if self.transport.is_active():
            self._answered.set()

    def _run(self) -> None:
        missed = 0
        asking: Optional[threading.Thread] = None
        while not self._stop.wait(self.interval):
            if not self.transport.is_active():
                return
            if asking is not None and asking.is_alive() and not self._answered.is_set():
                missed += 1
                if missed >= self.count_max:
                    self.reason = (
                        f"no answer from {self.what} to {missed} keepalives in {self.window_s:g} s"
                        f" (ServerAliveInterval {self.interval:g} x ServerAliveCountMax {self.count_max}); link dead"
                    )
                    try:
                        self.transport.close()
                    except Exception:
                        pass
                    return
                continue
            missed = 0
            self._answered.clear()
            asking = threading.Thread(target=self._ask, name=f"keepalive-ask-{self.what}", daemon=True)
            asking.start()


class Overdue(Exception):
    """A bounded call did not return in time."""


def bounded(fn: Callable[[], Any], seconds: float, on_timeout: Callable[[], None]) -> Any:
    """`fn()` or Overdue after `seconds` (then `on_timeout()` runs, to unblock and clean up)."""
    box: dict = {}

    def call() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=call, name="bounded-call", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        try:
            on_timeout()
        finally:
            thread.join(1.0)
        raise Overdue()
    if "error" in box:
        raise box["error"]
    return box.get("value")
