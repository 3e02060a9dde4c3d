"""One attempt of one device benchmark: push, run the agent, stream its events, store the outcome.

The lifecycle (submit / queue per device / runner / cancel / resume / refresh) is remote.benchjobs;
the event schema is remote/agent/events.py, its validation and THE fold remote.benchevents. Here,
`execute_record(store, record, on_event, cancel)` runs a benchmark record its caller holds:
1. free space on the device against what the push will write ("no space left on DEVICE:PATH
   (need X MB, Y MB free)"),
2. `transport.prepare()` (the bundle), `put_file()` (the weights: the checkpoint of the training
   run recorded at submit, exported to a plain state_dict torch 1.10 can load; none: initial
   weights), `start_agent()` with `--heartbeat-timeout` (the host writes a heartbeat line to the
   agent's stdin every `HEARTBEAT_EVERY_S`; a silent host makes the agent stop itself),
3. reads the agent's lines as they arrive: each is validated against the schema (a bad one is
   counted in `bad_lines` and logged to `run_dir(id)/agent.log`, never trusted), appended to
   `run_dir(id)/events.jsonl`, folded into a `BenchState` and handed to `on_event`; the agent's
   process group goes into the record (`agent_pgid`) and progress (`x/N batches, pass, ETA`)
   into `progress` every few seconds,
4. writes the outcome: `done` with the summary figures, `failed` with one clear line in `error`
   ("connection lost ...", the agent's own error, its exit status and stderr), or `cancelled`.

Cancelling: a `threading.Event` (the runner's SIGTERM handler, a thread of the caller) or a
`cancel` file in the run folder (remote.benchjobs.cancel); the agent's whole process group is
killed through `AgentProcess.cancel()`. The foreground forms (scripts, tests: the same
record-first path, executed in the calling process) are `remote.benchjobs.run_benchmark` /
`resume_benchmark`. This module never imports remote.benchjobs (it sits below it).

Host-side events given to `on_event` besides the agent's own (hello/latency/power/summary/error):
`{"event": "benchmark", "id", "arch", "device", "weights", "run_id", "attempt"}` first,
`{"event": "stage", "stage": "prepare"|"upload"|"start"}`, and `{"event": "finished", "status",
"error"}` last.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

from core.arch import Arch, parse_arch
from core.errors import InputError, KlmtuiError, OperationFailed
from core.records import DeviceRecord
from core.schema import is_local_device
from core.latency import FIELDS, Protocol
from remote.agent.events import AGENT_EVENTS, HOST_EVENTS, SUMMARY, SUMMARY_NOT_STORED
from remote.benchevents import BenchState, validate_event, validate_line
from remote.transport import AgentProcess

# What every protocol reports about its timed part, for latency (top level) and power (`power_timed`).
TIMED_KEYS = ("batches_timed", "seconds_timed", "stop_reason")
EventCallback = Callable[[dict], None]
CANCEL_FILE = "cancel"
EVENTS_FILE = "events.jsonl"
MAX_AGENT_LOG_BYTES = 1 << 20  # agent.log: skipped lines and the stderr tail, bounded
# events.jsonl, per attempt: the first MAX_EVENTS_BYTES of the agent's valid events as they come,
# then only a rolling tail of the last EVENTS_TAIL_BYTES, written when the attempt ends (before
# `finished`, which counts the events left out in `events_dropped`, as the record does). The host's
# own events are always written. So an endless stream of valid events cannot fill the disk.
MAX_EVENTS_BYTES = 32 << 20
EVENTS_TAIL_BYTES = 4 << 20
# Agent options beyond the protocol (name -> agent flag); booleans are flags.
AGENT_EXTRAS = {
    "compute": "--device",
    "threads": "--threads",
    "keep_none": "--keep-none",
    "images": "--images",
    "tegrastats_interval": "--tegrastats-interval",
    "power_min_samples": "--power-min-samples",
    "no_power": "--no-power",
    "heartbeat_timeout": "--heartbeat-timeout",
    "power_rail": "--power-rail",  # power measurement (H9): input|gpu|cpu|sum|RAIL
    "power_source": "--power-source",  # auto|sysfs|tegrastats
    "power_pass": "--power-pass",  # auto|same|separate
    "like_thesis": "--like-thesis",
    "lock_clocks": "--lock-clocks",
}
HEARTBEAT_TIMEOUT_S = 30.0  # the agent stops itself after this much silence from the host (option heartbeat_timeout)
HEARTBEAT_EVERY_S = 2.0  # how often the host writes a heartbeat line (at most a quarter of the timeout)
PROGRESS_EVERY_S = 3.0  # how often the runner writes `progress` into the record
MB = 1e6


def stamp() -> str:
    """ISO 8601 UTC with milliseconds, the benchmark records' times (`created`, `started`,
    `finished`): benchmark intervals on two devices are compared."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# --------------------------------------------------------------------------- inputs


def split_options(options: Optional[dict]) -> tuple[Protocol, dict]:
    """(Protocol, agent extras) from a flat options dict; unknown keys or bad values -> InputError."""
    options = {k: v for k, v in (options or {}).items() if v is not None}
    unknown = sorted(set(options) - set(FIELDS) - set(AGENT_EXTRAS))
    if unknown:
        raise InputError(f"unknown benchmark option(s): {', '.join(unknown)}")
    try:
        protocol = Protocol(**{k: v for k, v in options.items() if k in FIELDS})
    except ValueError as exc:
        raise InputError(f"bad benchmark protocol: {exc}") from exc
    from core.limits import check_agent_extras, check_protocol

    check_protocol(protocol)  # upper bounds (issue 12): no 10**30-image batch reaches a device
    extras = {k: v for k, v in options.items() if k in AGENT_EXTRAS}
    check_agent_extras(extras)
    if extras.get("compute", "auto") not in ("auto", "cpu", "cuda"):
        raise InputError(f"compute must be auto, cpu or cuda (got {extras['compute']!r})")
    beat = extras.get("heartbeat_timeout")
    if beat is not None and (isinstance(beat, bool) or not isinstance(beat, (int, float)) or not 1 <= beat <= 86400):
        raise InputError(f"heartbeat timeout must be a number of seconds in [1, 86400] (got {beat!r})")
    check_power_options(extras)
    for key, least in (("threads", 0), ("tegrastats_interval", 10), ("power_min_samples", 1)):
        value = extras.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < least):
            raise InputError(f"{key.replace('_', ' ')} must be an integer >= {least} (got {value!r})")
    return protocol, extras


def check_power_options(extras: dict) -> None:
    """--power-rail / --power-source / --power-pass: one clear line (exit 2) for a bad value."""
    from remote.agent.measure import PASSES, SOURCES
    from remote.agent.tegrastats import check_power_rail

    if extras.get("power_rail") is not None:
        try:
            check_power_rail(extras["power_rail"])
        except ValueError as exc:
            raise InputError(str(exc)) from None
    for key, choices in (("power_source", SOURCES), ("power_pass", PASSES)):
        if extras.get(key) is not None and extras[key] not in choices:
            raise InputError(f"{key.replace('_', ' ')} must be one of {', '.join(choices)} (got {extras[key]!r})")


def parse_request(arch_id: str) -> Arch:
    """The architecture to benchmark, its genotype checked here (bad input must create no record)."""
    from core.models import resolve_genotype

    arch = parse_arch(arch_id)
    resolve_genotype(arch.genotype)
    return arch


def check_new_id(store, bench_id: Optional[str]) -> None:
    """A caller-chosen benchmark id must look like one (`b-` + hex) and not be taken yet."""
    if bench_id is None:
        return
    if not re.fullmatch(r"b-[0-9a-f]{8}", bench_id):
        raise InputError(f"bad benchmark id {bench_id!r}: expected b- and 8 hex digits")
    if store.exists() and store.get("benchmarks", bench_id) is not None:
        raise InputError(f"benchmark {bench_id} exists already")


def device_record(store, name: str) -> DeviceRecord:
    """The device record to benchmark on (`remote.devices.resolve_device`)."""
    from remote.devices import resolve_device

    return resolve_device(store, name)


def latest_checkpoint(store, arch_id: str) -> Optional[dict]:
    """The latest `done` training run of this architecture that left a checkpoint file."""
    runs = [r for r in store.find("runs", arch_id=arch_id, status="done") if r.get("checkpoint")]
    runs.sort(key=lambda r: (r.get("finished") or "", r.get("created") or ""))
    return runs[-1] if runs else None


def agent_args(arch: Arch, protocol: Protocol, extras: dict, weights: Optional[str], tegrastats: Optional[str],
               job: Optional[str] = None) -> list[str]:
    """The agent's argv (a list: the SSH transport quotes every word for the remote shell).
    `job`: the benchmark id, carried on the agent's command line so that `resume` recognises a
    leftover agent of this benchmark (and never kills a recycled process group)."""
    args = ["--K", str(arch.K), "--L", str(arch.L), "--M", str(arch.M),
            "--channels", str(arch.channels), "--genotype", arch.genotype]
    if job:
        args += ["--job", job]
    args += protocol.args()
    if weights:
        args += ["--weights", weights]
    if tegrastats:
        args += ["--tegrastats", tegrastats]
    for key, flag in AGENT_EXTRAS.items():
        value = extras.get(key)
        if value is True:
            args.append(flag)
        elif value is not None and value is not False:  # 0 is a value (0 == False)
            args += [flag, str(value)]
    return args


def export_state_dict(checkpoint: Path, out: Path) -> Path:
    """Write the checkpoint's weights as a plain state_dict (name -> tensor) the agent can load."""
    import torch

    try:
        data = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated, not a torch file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise OperationFailed(f"checkpoint {checkpoint} is not readable: {first[:200]}") from exc
    state = data
    if isinstance(data, dict):
        for key in ("state_dict", "model", "model_state_dict", "network"):
            if isinstance(data.get(key), dict):
                state = data[key]
                break
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise OperationFailed(f"checkpoint {checkpoint} holds no state_dict (name -> tensor)")
    plain = {k.removeprefix("module."): v for k, v in state.items() if not k.startswith("auxiliary_head.")}
    torch.save(plain, out)
    return out


# --------------------------------------------------------------------------- running


class _Run:
    """One attempt of one benchmark: the events file, the callback, the cancel watcher."""

    def __init__(self, store, record: dict, on_event: Optional[EventCallback], cancel: Optional[threading.Event]):
        self.store = store
        self.record = record
        self.folder = store.run_dir(record["id"])
        self.on_event = on_event
        self.cancel = cancel or threading.Event()
        self.cancelled = False
        self.agent: Optional[AgentProcess] = None
        self.events = open(self.folder / EVENTS_FILE, "ab")
        self.events_written = 0  # bytes of this attempt's agent events in the file (MAX_EVENTS_BYTES)
        self.tail: deque[bytes] = deque()  # the rolling tail past the cap (EVENTS_TAIL_BYTES)
        self.tail_bytes = 0
        self.events_dropped = 0  # valid events left out of the file (the cap)
        self.bad_lines = 0
        self.dropped: set[str] = set()  # `event.field` names the agent sent that the schema lacks
        self.state = BenchState(record["id"], record.get("arch_id"), record.get("device"))
        self._done = threading.Event()
        self._progress_at = 0.0

    @property
    def counts(self) -> dict:
        return self.state.counts

    def deliver(self, event: dict) -> None:
        """A validated event: into events.jsonl, THE fold, the caller's callback."""
        event = validate_event(event)
        self._keep(event["event"], (json.dumps(event) + "\n").encode("utf-8"))
        self.state.feed(event)
        if self.on_event is not None:
            self.on_event(event)
        now = time.monotonic()
        if event["event"] == "latency" and now - self._progress_at > PROGRESS_EVERY_S:
            self._progress_at = now
            try:
                self.store.update("benchmarks", self.record["id"], progress=self.state.progress_text())
            except KlmtuiError:
                pass  # progress is a courtesy: never fail a benchmark over it

    def _keep(self, kind: str, line: bytes) -> None:
        """Into events.jsonl (host events always; the agent's up to MAX_EVENTS_BYTES), else into
        the rolling tail, which `finished` writes out first."""
        if kind == "finished":
            self.events.write(b"".join(self.tail))
            self.tail.clear()
            self.tail_bytes = 0
        if kind in HOST_EVENTS or self.events_written + len(line) <= MAX_EVENTS_BYTES:
            self.events.write(line)
            self.events.flush()
            self.events_written += 0 if kind in HOST_EVENTS else len(line)
            return
        self.tail.append(line)
        self.tail_bytes += len(line)
        while self.tail_bytes > EVENTS_TAIL_BYTES:
            self.tail_bytes -= len(self.tail.popleft())
            self.events_dropped += 1

    def log(self, text: str) -> None:
        """Append to agent.log, which never grows past MAX_AGENT_LOG_BYTES (a device printing
        garbage for hours fills it once, then lines are only counted in `bad_lines`)."""
        path = self.folder / "agent.log"
        room = MAX_AGENT_LOG_BYTES - 80 - (path.stat().st_size if path.exists() else 0)  # 80: the note
        if room <= 0:
            return
        data = (text.rstrip("\n") + "\n").encode("utf-8", "replace")
        if len(data) >= room:
            data = data[:room] + b"\n[agent.log is full: more lines are counted, not logged]\n"
        with open(path, "ab") as f:
            f.write(data)

    def cancel_requested(self) -> bool:
        return self.cancel.is_set() or (self.folder / CANCEL_FILE).exists()

    def check_cancel(self) -> None:
        if self.cancel_requested():
            self.cancelled = True
            raise _Cancelled()

    def watch(self) -> None:
        """Background: turn a cancel request into AgentProcess.cancel() while lines() blocks, and
        write the host's heartbeat to the agent every HEARTBEAT_EVERY_S."""
        every = min(HEARTBEAT_EVERY_S, self.heartbeat_timeout / 4)
        last_beat = 0.0
        while not self._done.wait(0.2):
            if self.cancel_requested() and self.agent is not None:
                self.cancelled = True
                self.agent.cancel()
                return
            if self.agent is not None and time.monotonic() - last_beat >= every:
                last_beat = time.monotonic()
                beat = getattr(self.agent, "heartbeat", None)
                if beat is not None:
                    beat()

    heartbeat_timeout = HEARTBEAT_TIMEOUT_S

    def close(self) -> None:
        self._done.set()
        self.events.close()


class _Cancelled(Exception):
    pass


def execute_record(store, record: dict, on_event: Optional[EventCallback] = None,
                   cancel: Optional[threading.Event] = None, home: Optional[Path] = None) -> dict:
    """Run the benchmark `record` (`running`, held by this process) with its recorded config."""
    arch = parse_arch(record["arch_id"])
    device = device_record(store, record["device"])
    protocol, extras = split_options(record.get("options") or {})
    return _execute(store, record, device, arch, protocol, extras, on_event, cancel, home)


def check_space(transport, files: list, device: str) -> None:
    """Refuse a push that cannot fit: one line naming the device, the folder and the sizes."""
    free = getattr(transport, "disk_free", None)
    if free is None:
        return
    path, available = free()
    if available is None:
        return
    need = transport.pending_bytes(files)
    if need > available:
        raise OperationFailed(f"no space left on {device}:{path} (need {need / MB:.2f} MB, {available / MB:.2f} MB free)")


def _execute(store, record, device, arch, protocol, extras, on_event, cancel, home) -> dict:
    from remote.devices import transport_for

    run = _Run(store, record, on_event, cancel)
    run.heartbeat_timeout = float(extras.get("heartbeat_timeout") or HEARTBEAT_TIMEOUT_S)
    extras = {**extras, "heartbeat_timeout": run.heartbeat_timeout}
    outcome: dict[str, Any] = {}
    transport = None
    watcher = threading.Thread(target=run.watch, name=f"cancel-{record['id']}", daemon=True)
    try:
        run.deliver({"event": "benchmark", "id": record["id"], "arch": arch.id, "device": record["device"],
                     "weights": record["weights"], "run_id": record["run_id"], "attempt": record["attempt"],
                     "power_pass": not extras.get("no_power") and extras.get("power_pass") != "same"})
        transport = transport_for(device, home=home)
        if is_local_device(device):  # other work on this machine would be timed too: say so (remote.busy)
            from remote.busy import local_busy

            busy = local_busy(store)
            record.update(store.update("benchmarks", record["id"], busy=busy, warnings=busy["warnings"]))
        run.check_cancel()
        plain = None
        if record["run_id"]:
            trained = store.get("runs", record["run_id"]) or {}
            if not trained.get("checkpoint"):
                raise OperationFailed(f"training run {record['run_id']} no longer has a checkpoint")
            plain = export_state_dict(store.resolve(trained["checkpoint"]), run.folder / "weights.pt")
        from remote.bundle import bundle_files

        pushed = [(local, f"agent/{rel}") for local, rel in bundle_files()]
        if plain is not None:
            pushed.append((plain, f"checkpoints/{record['id']}.pt"))
        check_space(transport, pushed, record["device"])
        try:
            run.deliver({"event": "stage", "stage": "prepare"})
            transport.prepare()
            weights = None
            if plain is not None:
                run.check_cancel()
                run.deliver({"event": "stage", "stage": "upload"})
                weights = transport.put_file(plain, f"checkpoints/{record['id']}.pt")
        except (OperationFailed, OSError) as exc:
            # the disk may have filled meanwhile ("size mismatch in put!", ENOSPC): say so plainly
            try:
                check_space(transport, pushed, record["device"])
            except OperationFailed as full:
                if str(full).startswith("no space left"):
                    raise full from exc
            except Exception:
                pass  # e.g. the link is gone: the original error says it
            raise
        images_tar = push_thesis_images(transport, run, protocol, extras)
        run.check_cancel()
        run.deliver({"event": "stage", "stage": "start"})
        args = agent_args(arch, protocol, extras, weights, device.get("tegrastats"), job=record["id"])
        if images_tar:
            args += ["--images-tar", images_tar]
        run.agent = transport.start_agent(args)
        watcher.start()
        outcome = _stream(run, protocol)
    except _Cancelled:
        outcome = {"status": "cancelled", "error": "cancelled before the agent started"}
    except KlmtuiError as exc:
        outcome = {"status": "failed", "error": str(exc)}
    except OSError as exc:  # a local file or pipe problem (copying the bundle, starting python)
        outcome = {"status": "failed", "error": f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")}
    except BaseException as exc:  # a bug or Ctrl-C: never leave the record `running`
        status = "cancelled" if isinstance(exc, KeyboardInterrupt) else "failed"
        _finish(store, run, {"status": status, "error": f"{type(exc).__name__}: {exc}".rstrip(": ")})
        raise
    finally:
        if run.agent is not None and outcome.get("status") != "done":
            run.agent.cancel()  # never leave the agent (or tegrastats) running behind us
        if transport is not None:
            try:
                transport.close()
            except Exception:
                pass
        # The exported weights were only the vehicle to the device; the training run keeps its own.
        (run.folder / "weights.pt").unlink(missing_ok=True)
        (run.folder / "thesis-images.tar").unlink(missing_ok=True)
    return _finish(store, run, outcome)


def push_thesis_images(transport, run: "_Run", protocol: Protocol, extras: dict) -> Optional[str]:
    """--like-thesis without --images: upload real CIFAR-10 test images (remote.thesis_images)."""
    if not extras.get("like_thesis") or extras.get("images"):
        return None
    from remote.thesis_images import TEST_SET, pack_test_images

    count = min(TEST_SET, protocol.batch * (protocol.batches or 50))
    packed, note = pack_test_images(run.folder / "thesis-images.tar", count)
    run.log(f"--like-thesis images: {note}")
    if packed is None:
        return None  # the agent uses synthetic images and its record says so
    return transport.put_file(packed, f"data/cifar10-test-{count}.tar")


def _stream(run: _Run, protocol: Protocol) -> dict:
    """Read the agent's lines to the end; the outcome (status, error, summary fields)."""
    agent = run.agent
    if agent is None:
        raise OperationFailed("internal: no agent process to read")  # _execute starts it first
    summary = error = None
    recorded_pgid = False
    for line in agent.lines():
        if not line.strip():
            continue
        event, why = validate_line(line, run.dropped)
        if event is None or event["event"] not in AGENT_EVENTS:
            run.bad_lines += 1  # counted and skipped, never trusted
            run.log(f"skipped a line ({why or 'not an agent event'}): {line[:300]!r}")
            continue
        if event["event"] == "summary":
            summary = event
        elif event["event"] == "error":
            error = event
        run.deliver(event)
        if not recorded_pgid and getattr(agent, "pgid", None):
            recorded_pgid = True  # resume kills a leftover agent by this group (remote.benchjobs)
            run.store.update("benchmarks", run.record["id"], agent_pgid=agent.pgid)
    link_lost = bool(getattr(agent, "link_lost", False))
    code = None if link_lost else agent.wait(timeout=30)  # no exit status comes over a dead link
    tail = agent.stderr_tail()
    if tail.strip():
        run.log("agent stderr:\n" + tail)
    if run.cancelled or run.cancel_requested():
        return {"status": "cancelled", "error": "cancelled"}
    if summary is not None and code == 0:
        return {"status": "done", "error": None, "summary": summary}
    if error is not None:
        return {"status": "failed", "error": str(error.get("error") or "the agent reported an error")}
    if run.bad_lines and summary is None and code == 0:
        return {"status": "failed", "error": f"the agent ended without a valid summary ({run.bad_lines} invalid "
                                             f"line(s) skipped, see agent.log)"}
    if link_lost or code is None:
        return {"status": "failed", "error": f"connection lost to device {run.record['device']} during the benchmark "
                                             f"({run.counts.get('latency', 0)} latency samples kept in {EVENTS_FILE})"}
    last = [l for l in tail.strip().splitlines() if l.strip()][-1:] or ["no output"]
    return {"status": "failed", "error": f"agent exited with status {code}: {last[0][:300]}"}


def _finish(store, run: _Run, outcome: dict) -> dict:
    record = run.record
    fields: dict[str, Any] = {"status": outcome["status"], "error": outcome.get("error"), "finished": stamp(),
                              "bad_lines": run.bad_lines, "dropped_fields": sorted(run.dropped)[:50],
                              "events_dropped": run.events_dropped, **run.state.record_fields()}
    summary = outcome.get("summary")
    if summary:
        fields.update(summary_fields(summary, record["batch"]))
        if fields.get("environment") is not None:
            fields["environment"] = {**fields["environment"], "end": summary.get("environment_end"),
                                     "temps_c": (summary.get("power") or {}).get("temps_end_c")}
    fields["progress"] = None if fields["status"] == "done" else run.state.progress_text()
    try:
        finished = {"event": "finished", "status": fields["status"], "error": fields["error"]}
        if run.events_dropped:
            finished["events_dropped"] = run.events_dropped
        run.deliver(finished)
    finally:
        run.close()
    return store.update("benchmarks", record["id"], **fields)


def summary_fields(summary: dict, batch: int) -> dict:
    """The store's benchmark figures from the agent's summary event."""
    latency = summary.get("latency_s")
    power = summary.get("power_w")
    info = summary.get("power") or {}
    # Every schema summary field is stored under its own name (adding one: remote/agent/events.py);
    # the explicit ones below rename or derive.
    # energy_j: the agent's integral of power over each batch / batch (median, with energy_j_ci),
    # never mean power x median latency (remote/agent/energy.py).
    stored = {k: summary[k] for k in SUMMARY if k in summary and k not in SUMMARY_NOT_STORED}
    return {
        **stored,
        "latency_s": latency,
        "latency_p90_s": summary.get("latency_p90_s"),
        "images_per_s": summary.get("images_per_s"),
        "latency_stats": summary.get("latency"),
        "adaptive": summary.get("adaptive"),
        **{key: summary.get(key) for key in TIMED_KEYS},
        "power_timed": {key: info[key] for key in TIMED_KEYS if key in info} or None,
        "power_w": power,
        "power_reason": summary.get("power_reason"),
        "energy_j": summary.get("energy_j"),
        "tegrastats": info.get("tegrastats"),
        "power_stats": {k: v for k, v in info.items() if k != "tegrastats"} or None,
        "timing": summary.get("timing"),
        "images": summary.get("images"),
        "weights": summary.get("weights"),
        "drop_none": summary.get("drop_none"),
        "compute": summary.get("device"),
    }
