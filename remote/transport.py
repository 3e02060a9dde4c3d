"""How the host reaches the agent: a local subprocess or an SSH session, behind one interface.

`remote.bench` drives a benchmark through a `Transport` without knowing which one it has.
This module is the interface only and imports no other part of `remote`: `LocalTransport` lives
in `remote.local`, `SshTransport` in `remote.ssh_transport`, and `remote.devices.transport_for(device)`
(where device records are resolved) picks one (the built-in `local` device: `core.schema`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, Optional, Protocol, Sequence

# progress(done_bytes, total_bytes, current_file)
ProgressCallback = Callable[[int, int, str], None]


class AgentProcess(Protocol):
    """A running agent. Its stdout is one JSON object per line (docs/architecture.md, Agent protocol and event schema)."""

    link_lost: bool  # True once the link to the device dropped (no exit status will come)

    @property
    def pgid(self) -> Optional[int]:
        """The agent's process group on the device (recorded, so a resume can kill a leftover)."""

    def heartbeat(self) -> None:
        """One line on the agent's stdin: the host is alive (the agent stops itself without them)."""

    def lines(self) -> Iterator[str]:
        """Yield stdout lines (without newline) as they arrive; ends when the process exits or the link drops."""

    def cancel(self) -> None:
        """Kill the agent's whole process group (tegrastats included). Idempotent."""

    def wait(self, timeout: Optional[float] = None) -> Optional[int]:
        """The exit status, or None if the link dropped before one was known."""

    def stderr_tail(self, max_chars: int = 2000) -> str:
        """The last part of the agent's stderr, for error messages."""


class Transport(Protocol):
    """One device's side of a benchmark."""

    name: str

    def prepare(self, progress: Optional[ProgressCallback] = None) -> str:
        """Make sure the agent bundle is on the device (skip files whose checksum matches);
        return the remote agent folder (where `python -m remote.agent.main` runs)."""

    def put_file(self, local: Path, remote_relative: str, progress: Optional[ProgressCallback] = None) -> str:
        """Upload a file (e.g. a checkpoint) into the device's work folder; return its remote path.
        `remote_relative` must stay inside the work folder (no '..', not absolute)."""

    def start_agent(self, args: Sequence[str]) -> AgentProcess:
        """Start `python -u -m remote.agent.main ARGS` in the agent folder, in its own process group.
        Every argument is quoted for the remote shell."""

    def disk_free(self) -> tuple[str, Optional[int]]:
        """(the work folder, free bytes on its file system, None if unknown), checked before a push."""

    def pending_bytes(self, files: Sequence[tuple[Path, str]]) -> int:
        """Bytes a push of (local path, path relative to the work folder) pairs would write."""

    def kill_group(self, pgid: int, tag: str) -> bool:
        """Kill a leftover agent's process group, only if its leader's command line still carries
        `tag` (the benchmark id); True if one was killed."""

    def close(self) -> None:
        ...

