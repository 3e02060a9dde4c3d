"""Bounded line splitting for device output (the agent's stdout over SSH or a pipe).

A device may send a 200 MB line, or one that never ends. `LineSplitter` keeps at most
`max_line` bytes of an unfinished line, scans each byte once (a chunk is searched for newlines
only from where the previous search stopped: no quadratic rescans) and raises `LineTooLong`
when a line passes the cap, so the caller can end the run cleanly instead of growing without
bound. `read_lines(read)` applies it to any `read(n) -> bytes` source.
"""

from __future__ import annotations

from typing import Callable, Iterator

from core.errors import OperationFailed

# Far above any valid event (remote/agent/events.py MAX_LINE_CHARS = 64 K characters; UTF-8 may
# take 4 bytes each), far below anything that could hurt the host.
MAX_LINE_BYTES = 1 << 20


class LineTooLong(OperationFailed):
    """The device wrote a line longer than the cap: not the agent's protocol; the run is ended."""

    def __init__(self, device: str, limit: int):
        self.limit = limit
        super().__init__(
            f"device {device}: the agent wrote a line longer than {limit // 1024} KiB (not an agent event);"
            " the benchmark was stopped"
        )


class LineSplitter:
    def __init__(self, device: str = "?", max_line: int = MAX_LINE_BYTES):
        self.device, self.max_line = device, max_line
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """The lines `data` completes (without their newline); raises LineTooLong past the cap."""
        lines = []
        searched_from = len(self._buffer)  # the buffer so far holds no newline
        self._buffer += data
        start = 0
        while True:
            end = self._buffer.find(b"\n", max(start, searched_from))
            if end < 0:
                break
            if end - start > self.max_line:
                raise LineTooLong(self.device, self.max_line)
            lines.append(bytes(self._buffer[start:end]))
            start = end + 1
        if start:
            del self._buffer[:start]
        if len(self._buffer) > self.max_line:
            self._buffer.clear()
            raise LineTooLong(self.device, self.max_line)
        return lines

    def rest(self) -> bytes:
        """The unfinished last line (at EOF)."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest


def read_lines(read: Callable[[int], bytes], device: str = "?", max_line: int = MAX_LINE_BYTES,
               chunk: int = 65536) -> Iterator[bytes]:
    """Lines from a blocking `read(n)` source until it returns b'' (the last, unfinished one too)."""
    splitter = LineSplitter(device, max_line)
    while True:
        data = read(chunk)
        if not data:
            break
        yield from splitter.feed(data)
    rest = splitter.rest()
    if rest:
        yield rest
