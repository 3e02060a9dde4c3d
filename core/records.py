"""Typed records: the shape of every record in the store's five tables (`core.schema.TABLES`).

The store keeps plain JSON objects, and records travel through every layer as the dicts the store
returns. These `TypedDict`s name their fields (what a type checker and a reader need) without
changing what they are at run time: a `RunRecord` *is* the dict `store.get("runs", id)` returns.
They are `total=False` because a record grows over its life (a queued run has no `pid` yet, a
benchmark gets its figures when it ends) and because older stores lack newer fields; code reads
optional fields with `.get`. `docs/architecture.md` ("Store layout") explains each table.

`RECORD_TYPES` maps a table name to its record type; `record_fields(table)` lists the known
fields (tests/test_records.py checks that the records real code writes use no other field).
"""

from __future__ import annotations

from typing import Any, Optional, TypedDict, Union

from core.schema import ARCHITECTURES, BENCHMARKS, DEVICES, RESULTS, RUNS, SOURCES


class ArchFields(TypedDict, total=False):
    """The architecture columns every record repeats (so tables need no join): `core.reference.arch_fields`."""

    arch: str  # the K-L-M triple, e.g. "6-6-6"
    K: int
    L: int
    M: int
    channels: int
    genotype: str


class ArchitectureRecord(ArchFields, total=False):
    """Table `architectures`: one per K-L-M@C (and genotype), id = `Arch.id` (`6-6-6@36`)."""

    id: str
    params: int  # exact parameter count (core.counting)
    macs: int
    in_thesis: Optional[bool]  # None: not known (trained or imported, never sampled)
    sampled: bool


class RunRecord(ArchFields, total=False):
    """Table `runs`: one training run (one seed), id `t-` + 8 hex (`core.jobs.submit`)."""

    id: str
    arch_id: str
    seed: int
    profile: str
    epochs: int
    epoch: int
    status: str  # core.schema.STATUSES
    accuracy: Optional[float]
    best_accuracy: Optional[float]
    checkpoint: Optional[str]  # relative to the store folder
    executor: str  # core.jobs.EXECUTORS
    pid: Optional[int]
    pid_start: Optional[int]
    worker_pid: Optional[int]
    host: Optional[str]
    gpu: Optional[int]
    launching: bool
    created: str  # ISO 8601 UTC (core.store.now_iso)
    started: Optional[str]
    finished: Optional[str]
    error: Optional[str]
    config: dict[str, Any]  # core.train.TrainConfig.to_dict()
    run_dir: str  # runs/<id>, relative to the store folder
    group: str  # g- id shared by the seeds of one submit
    seeds: int
    address: Optional[str]  # Ray
    storage: Optional[str]  # Ray
    attempts: int
    resumes: int  # how often `resume` queued it again
    queue_seq: int
    device: Optional[str]  # cpu / cuda, as the training process reported it
    recipe: dict[str, Any]  # core.train.resolved_recipe: schedule, precision, determinism, torch/CUDA/cuDNN
    imported: dict[str, Any]  # core.interop.import_checkpoint: file, sha256, layout, file_genotype, note


class BenchmarkRecord(ArchFields, total=False):
    """Table `benchmarks`: one benchmark of one architecture on one device, id `b-` + 8 hex.

    Besides the fields below, every field of the agent's `summary` event (`SUMMARY` in
    remote/agent/events.py, the one event schema) is stored under its own name when it ends.
    """

    id: str
    arch_id: str
    device: Optional[str]  # the device it runs / ran on (None while queued on a pool)
    devices: list[str]  # the pool it may run on
    run_id: Optional[str]  # the training run whose checkpoint is timed
    weights: str  # "trained" or "initial"
    protocol: str
    timing: str
    batch: int
    options: dict[str, Any]
    status: str  # core.schema.STATUSES
    attempt: int
    latency_s: Optional[float]  # median seconds per batch
    latency_p90_s: Optional[float]
    images_per_s: Optional[float]
    latency_stats: Optional[dict[str, Any]]
    adaptive: Optional[dict[str, Any]]
    power_w: Optional[float]
    power_reason: Optional[str]
    energy_j: Optional[float]  # per image
    tegrastats: Optional[str]
    power_stats: Optional[dict[str, Any]]
    images: Optional[int]
    drop_none: Optional[bool]
    compute: Optional[str]
    environment: Optional[dict[str, Any]]
    error: Optional[str]
    created: str
    started: Optional[str]
    finished: Optional[str]
    runner: str
    host: Optional[str]
    pid: Optional[int]
    pid_start: Optional[int]
    run_dir: str
    queue_seq: int
    agent_pgid: Optional[int]
    progress: Optional[str]
    bad_lines: int  # event lines that broke the schema (skipped)
    dropped_fields: list[str]  # undeclared event fields dropped by validation
    events_dropped: int  # valid events left out of the capped events.jsonl (remote.bench.MAX_EVENTS_BYTES)
    busy: Optional[dict[str, Any]]  # how busy the device was at the start (remote.busy)
    warnings: list[str]  # one line each, e.g. "training runs on the device"
    launching: bool
    batches_timed: Optional[int]  # what the protocol timed (remote.bench.TIMED_KEYS)
    seconds_timed: Optional[float]
    stop_reason: Optional[str]
    power_timed: Optional[dict[str, Any]]  # the same, for the power pass
    event_counts: dict[str, int]  # events received, by kind
    params: Optional[int]  # as the agent counted them


class DeviceRecord(TypedDict, total=False):
    """Table `devices`: how to reach a Jetson (`remote.devices`); no password field exists."""

    id: str
    name: str
    host: str
    user: Optional[str]
    port: Optional[int]
    key: Optional[str]  # a private-key PATH, never key material
    python: Optional[str]
    tegrastats: Optional[str]
    workdir: Optional[str]
    added: Optional[str]


class ResultRecord(ArchFields, total=False):
    """Table `results`: one imported figure row, id `<source>:<arch id>` (`core.reference.result_record`)."""

    id: str
    source: str
    arch_id: str
    accuracy: Optional[float]
    params_m: Optional[float]
    latency_s: Optional[float]
    power_w: Optional[float]
    extra: dict[str, Any]


class SourceRecord(TypedDict, total=False):
    """Table `sources`: the manifest of one imported source whose rows live in their own file
    (`core.sources`): id = the source name."""

    id: str
    file: str  # the file's name in `<store stem>.sources/`
    previous: Optional[str]  # the file before it, kept until the source is written again
    sha256: str
    bytes: int
    rows: int
    imported: str
    csv: Optional[str]  # the CSV imported last
    reference: bool  # read-only for import-results (core.reference.is_reference_source)


AnyRecord = Union[ArchitectureRecord, RunRecord, BenchmarkRecord, DeviceRecord, ResultRecord, SourceRecord]

RECORD_TYPES: dict[str, type] = {
    ARCHITECTURES: ArchitectureRecord,
    RUNS: RunRecord,
    BENCHMARKS: BenchmarkRecord,
    DEVICES: DeviceRecord,
    RESULTS: ResultRecord,
    SOURCES: SourceRecord,
}


def record_fields(table: str) -> frozenset[str]:
    """The fields a record of `table` may have (its TypedDict's keys, inherited ones included)."""
    kind = RECORD_TYPES[table]
    return frozenset(kind.__required_keys__) | frozenset(kind.__optional_keys__)  # type: ignore[attr-defined]
