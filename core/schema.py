"""The store's vocabulary, defined once: table names, statuses and their groups, built-in names.

Every layer (core, remote, klmtui) imports these names from here instead of spelling the literals
again. `docs/architecture.md` ("Store layout") describes the file these names index.

- `TABLES`: the six record tables of `runs.json` (plus TinyDB's `_meta`, see `core.store`); `SOURCES`
  holds a manifest per imported source, whose rows live in a file of their own (`core.sources`).
- `STATUSES`: every status a training run or a benchmark can have; `ACTIVE_STATUSES` (still
  going: pending, queued, running) and `FINAL_STATUSES` (nothing more will happen unless resumed)
  partition it.
- `DEFAULT_GENOTYPE`: the cells the thesis uses (defined in the device-side `core.genotypes`,
  re-exported here so the host side has one place to import it from).
- `DEFAULT_OBJECTIVE_SPECS`: the four objectives of the thesis' front, as `NAME:max|min` specs
  (`core.pareto.DEFAULT_OBJECTIVES` holds them parsed).
- `LOCAL_DEVICE`: the id of the built-in device (the agent in a subprocess on this machine),
  `local_device_record()` its minimal record, `is_local_device(record)` the one test for it.
- `MEASURED_SOURCE` / `THESIS_SOURCE`: the figures sources every store has.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Mapping

from core.genotypes import DEFAULT_GENOTYPE

if TYPE_CHECKING:  # pragma: no cover
    from core.records import DeviceRecord

# ----------------------------------------------------------------------------- tables

ARCHITECTURES: Final = "architectures"
RUNS: Final = "runs"
BENCHMARKS: Final = "benchmarks"
DEVICES: Final = "devices"
RESULTS: Final = "results"
SOURCES: Final = "sources"  # manifests of imported sources kept in their own files (core.sources)
TABLES: Final[tuple[str, ...]] = (ARCHITECTURES, RUNS, BENCHMARKS, DEVICES, RESULTS, SOURCES)
META_TABLE: Final = "_meta"

# ----------------------------------------------------------------------------- statuses

PENDING: Final = "pending"
QUEUED: Final = "queued"
RUNNING: Final = "running"
DONE: Final = "done"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"
INTERRUPTED: Final = "interrupted"

ACTIVE_STATUSES: Final[tuple[str, ...]] = (PENDING, QUEUED, RUNNING)
FINAL_STATUSES: Final[tuple[str, ...]] = (DONE, FAILED, CANCELLED, INTERRUPTED)
STATUSES: Final[tuple[str, ...]] = ACTIVE_STATUSES + FINAL_STATUSES
# A final run/benchmark that `resume` (TUI `r`) may start again.
RESUMABLE_STATUSES: Final[tuple[str, ...]] = (FAILED, CANCELLED, INTERRUPTED)


def is_active(status: object) -> bool:
    """Still going (pending, queued, running)."""
    return status in ACTIVE_STATUSES


def is_final(status: object) -> bool:
    """Nothing more happens to it unless resumed (done, failed, cancelled, interrupted)."""
    return status in FINAL_STATUSES


# ----------------------------------------------------------------------------- built-in names

LOCAL_DEVICE: Final = "local"
MEASURED_SOURCE: Final = "measured"
THESIS_SOURCE: Final = "thesis"
DEFAULT_OBJECTIVE_SPECS: Final[tuple[str, ...]] = ("accuracy:max", "params_m:min", "latency_s:min", "power_w:min")


def local_device_record() -> DeviceRecord:
    """The built-in device's record (never stored: it exists in every store)."""
    return {"id": LOCAL_DEVICE, "name": LOCAL_DEVICE, "host": LOCAL_DEVICE}


def is_local_device(device: Mapping[str, object]) -> bool:
    """The built-in `local` device: its id, or a record without a real host."""
    return device.get("id") == LOCAL_DEVICE or device.get("host") in (None, "", LOCAL_DEVICE)


__all__ = [
    "ACTIVE_STATUSES", "ARCHITECTURES", "BENCHMARKS", "CANCELLED", "DEFAULT_GENOTYPE",
    "DEFAULT_OBJECTIVE_SPECS", "DEVICES", "DONE", "FAILED", "FINAL_STATUSES", "INTERRUPTED",
    "LOCAL_DEVICE", "MEASURED_SOURCE", "META_TABLE", "PENDING", "QUEUED", "RESULTS",
    "RESUMABLE_STATUSES", "RUNNING", "RUNS", "STATUSES", "TABLES", "THESIS_SOURCE", "is_active",
    "is_final", "is_local_device", "local_device_record",
]  # fmt: skip
