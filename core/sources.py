"""Imported result sources, each in its own file beside the store (issue 12, scale).

`runs.json` keeps what a study writes often and reads whole: architectures, runs, benchmarks,
devices, the reference results (`thesis`). An imported table (`import-results FILE --source NAME`,
e.g. NAS-Bench-sized: 100k rows) lives in a file of its own, so that a small write (`device add`, a
run's progress) no longer rewrites and fsyncs those rows, and a reader that does not need them
(`device list`, `runs`) never parses them.

Layout (docs/architecture.md, "Store layout"):
- `runs.json`'s `sources` table holds one manifest per imported source (`SourceRecord`): `id` (the
  source name), `file` (its name in `<store stem>.sources/`, beside the store file), `sha256` and
  `bytes` of that file, `rows`, `imported` (UTC time), `csv` (the file imported last), `reference`.
- The source file is JSON, column by column (`COLUMNS`, each a list of one value per row, rows in the
  order the tables show architectures: K, L, M, channels descending, genotype):
  `{"format": "klmtui-source", "version": 1, "source": NAME, "rows": N, "columns": {...}}`. The rows
  are the source's `results` records (`core.reference.result_record`) plus each architecture's exact
  `params` and `macs` (`core.counting`, so readers need not count 100k architectures again).

Commit: the file is written under the store's write lock (temp file, fsync, rename) with a fresh
name, and only then does the transaction record the manifest naming it, so a `kill -9` at any moment
leaves a store whose manifests name complete files. A source file is never changed once written; the
previous one is kept until its source is written again (a reader holding the older manifest can
still open it); older files and the leftovers of killed writers are removed under the lock.

Trust: a file whose sha256 is the manifest's is the text klmtui wrote and checked, and is decoded as
is. Any other text (edited by hand) is checked row by row as `results` records
(`core.store_check.record_problem`): a bad file is one line naming it and the row, exit 2, the file
untouched.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, cast

from core.records import ArchitectureRecord, ResultRecord, SourceRecord
from core.schema import DEFAULT_GENOTYPE, SOURCES

FORMAT = "klmtui-source"
VERSION = 1
ARCH_COLUMNS = ("arch_id", "K", "L", "M", "channels", "genotype")
VALUE_COLUMNS = ("accuracy", "params_m", "latency_s", "power_w")  # core.reference.RESULT_COLUMNS, in order
COLUMNS = (*ARCH_COLUMNS, *VALUE_COLUMNS, "params", "macs", "extra")
SUFFIX = ".json"


class SourceFileError(Exception):
    """A source file that is missing, unreadable or not what its manifest says (see `core.store`:
    raised as a StoreError, exit 2, by `load`)."""


def folder_of(store: Any) -> Path:
    """`<store stem>.sources/` beside the store file (a symlinked store: beside its target)."""
    target = Path(os.path.realpath(store.path))
    return target.parent / f"{target.stem}.sources"


@dataclass(frozen=True)
class SourceTable:
    """One imported source, column by column (`COLUMNS`); rows are materialised on demand."""

    name: str
    columns: Mapping[str, list]
    _index: dict = field(default_factory=dict, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.columns["arch_id"])

    def index(self) -> dict[str, int]:
        """arch id -> row number."""
        if not self._index:
            self._index.update(zip(self.columns["arch_id"], range(len(self))))
        return self._index

    def order(self) -> list[int]:
        """Row numbers sorted as the tables sort architectures: K, L, M, channels descending, genotype."""
        import numpy as np

        c = self.columns
        if not len(self):
            return []
        codes = {g: k for k, g in enumerate(sorted(set(c["genotype"])))}
        keys = (np.array([codes[g] for g in c["genotype"]]), -np.array(c["channels"]), np.array(c["M"]),
                np.array(c["L"]), np.array(c["K"]))
        return np.lexsort(keys).tolist()

    def in_order(self) -> "SourceTable":
        """This table with its rows in `order()` (klmtui writes them so: readers then walk the columns)."""
        order = self.order()
        if order == list(range(len(order))):
            return self
        return SourceTable(self.name, {k: [v[i] for i in order] for k, v in self.columns.items()})

    def records(self) -> list[ResultRecord]:
        """Every row as a `results` record (the shape `core.reference.result_record` builds)."""
        from core.store_check import gc_paused

        c = self.columns
        name = self.name
        with gc_paused():  # 100k new dicts that all live on
            return [cast(ResultRecord, {
                "id": f"{name}:{arch_id}", "source": name, "arch_id": arch_id, "arch": f"{k}-{l}-{m}",
                "K": k, "L": l, "M": m, "channels": ch, "genotype": g, "accuracy": acc, "params_m": pm,
                "latency_s": lat, "power_w": pw, "extra": dict(extra)})
                for arch_id, k, l, m, ch, g, acc, pm, lat, pw, extra in zip(
                    c["arch_id"], c["K"], c["L"], c["M"], c["channels"], c["genotype"], c["accuracy"],
                    c["params_m"], c["latency_s"], c["power_w"], c["extra"])]

    def record(self, i: int) -> ResultRecord:
        c = self.columns
        arch_id = c["arch_id"][i]
        return cast(ResultRecord, {
            "id": f"{self.name}:{arch_id}", "source": self.name, "arch_id": arch_id,
            "arch": f"{c['K'][i]}-{c['L'][i]}-{c['M'][i]}", **{k: c[k][i] for k in ARCH_COLUMNS[1:]},
            **{k: c[k][i] for k in VALUE_COLUMNS}, "extra": dict(c["extra"][i])})

    def architecture(self, i: int) -> ArchitectureRecord:
        """The row's architecture as an `architectures` record (not sampled, `in_thesis` unknown)."""
        c = self.columns
        return cast(ArchitectureRecord, {
            "id": c["arch_id"][i], "arch": f"{c['K'][i]}-{c['L'][i]}-{c['M'][i]}",
            **{k: c[k][i] for k in ARCH_COLUMNS[1:]}, "params": c["params"][i], "macs": c["macs"][i],
            "in_thesis": None, "sampled": False})

    def array(self, column: str) -> Any:
        """A value column as a float numpy array, NaN where the row has no value."""
        import numpy as np

        return np.array([np.nan if v is None else v for v in self.columns[column]], dtype=float)


def table_from_records(name: str, records: Sequence[Mapping[str, Any]],
                       counts: Sequence[tuple[int, int]]) -> SourceTable:
    """A SourceTable of validated `results` records and their (params, macs)."""
    columns: dict[str, list] = {c: [r.get(c) for r in records] for c in (*ARCH_COLUMNS, *VALUE_COLUMNS)}
    columns["genotype"] = [g or DEFAULT_GENOTYPE for g in columns["genotype"]]
    columns["params"] = [p for p, _ in counts]
    columns["macs"] = [m for _, m in counts]
    columns["extra"] = [dict(r.get("extra") or {}) for r in records]
    return SourceTable(name, columns).in_order()


# --------------------------------------------------------------------------- the file


def encode(table: SourceTable) -> bytes:
    """The file's bytes: compact JSON, floats as the shortest text that reads back the same."""
    document = {"format": FORMAT, "version": VERSION, "source": table.name, "rows": len(table),
                "columns": {c: table.columns[c] for c in COLUMNS}}
    try:
        import orjson

        return orjson.dumps(document)
    except ImportError:
        pass
    except TypeError:  # an integer beyond 64 bits (refused before this point): json says which
        pass
    import json

    return json.dumps(document, allow_nan=False, separators=(",", ":")).encode("utf-8")


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _decode(path: Path, data: bytes, name: str, trusted: bool) -> SourceTable:
    from core.store_check import decode

    try:
        document = decode(data, fast=trusted)
    except (ValueError, RecursionError) as exc:
        raise SourceFileError(f"{path} is not a klmtui source file ({str(exc).splitlines()[0][:80]})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise SourceFileError(f"{path} is not a klmtui source file")
    if document.get("version") != VERSION:
        raise SourceFileError(f"{path} is a source file of version {document.get('version')!r}; "
                              f"this klmtui reads version {VERSION}")
    columns = document.get("columns")
    rows = document.get("rows")
    if not isinstance(columns, dict) or not isinstance(rows, int) or isinstance(rows, bool):
        raise SourceFileError(f"{path} has no columns")
    for column in COLUMNS:
        values = columns.get(column)
        if not isinstance(values, list) or len(values) != rows:
            raise SourceFileError(f"{path}: column {column} is missing or does not have {rows} values")
    table = SourceTable(name, {c: columns[c] for c in COLUMNS})
    if document.get("source") != name:
        raise SourceFileError(f"{path} holds source {document.get('source')!r}, not {name!r}")
    if not trusted:
        _check_rows(path, table)
        table = table.in_order()
    return table


def _check_rows(path: Path, table: SourceTable) -> None:
    """Every row of an untrusted file, as the store checks a `results` record, and its architecture."""
    from core.arch import Arch, ArchError
    from core.store_check import INT_RANGES, missing_keys, record_problem

    c = table.columns
    seen: set[str] = set()
    for i, record in enumerate(table.records() if all(isinstance(e, dict) for e in c["extra"])
                               else _raw_records(table)):
        where = f"{path}: row {i + 1} ({str(record.get('arch_id'))[:40]})"
        missing = missing_keys("results", cast(dict, record))
        problem = record_problem("results", cast(dict, record)) or (f"no {', '.join(missing)}" if missing else None)
        if problem is None:
            for key, (low, high) in (("params", INT_RANGES["params"]), ("macs", INT_RANGES["macs"])):
                value = c[key][i]
                if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high):
                    problem = f"{key} {value!r} is not a whole number in [{low}, {high}]"
        if problem is None:
            try:
                arch = Arch(record["K"], record["L"], record["M"], record["channels"], record["genotype"])
            except (ArchError, TypeError, ValueError) as exc:
                problem = str(exc).splitlines()[0]
            else:
                if arch.id != record["arch_id"]:
                    problem = f"arch_id {record['arch_id']!r} is not K-L-M@C ({arch.id})"
                elif arch.id in seen:
                    problem = f"{arch.id} appears twice"
                seen.add(arch.id)
        if problem:
            raise SourceFileError(f"{where}: {problem}; the file is left untouched; fix it or import the source again")


def _raw_records(table: SourceTable) -> Iterable[dict]:
    c = table.columns
    for i in range(len(table)):
        yield {k: c[k][i] for k in (*ARCH_COLUMNS, *VALUE_COLUMNS, "extra")}


# --------------------------------------------------------------------------- reading

_CACHE: dict[tuple[str, str], SourceTable] = {}  # (path, sha256) -> table: files never change once written
_CACHE_SIZE = 4
_CACHE_LOCK = threading.Lock()


def manifests(store: Any) -> dict[str, SourceRecord]:
    """source name -> manifest, for every imported source kept in its own file."""
    return {r["id"]: cast(SourceRecord, r) for r in store.rows(SOURCES)}


def load(store: Any, manifest: Mapping[str, Any]) -> SourceTable:
    """The source a manifest names (a StoreError naming the file when it is missing or bad)."""
    from core.store import StoreError

    file = manifest.get("file")
    if not isinstance(file, str) or Path(file).name != file or not file.endswith(SUFFIX):
        raise StoreError(f"{store.path}: source {manifest.get('id')!r} names a file {file!r} "
                         f"that is not in {folder_of(store)}; the file is left untouched")
    path = folder_of(store) / file
    key = (str(path), str(manifest.get("sha256")))
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
    if cached is not None:
        return cached
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise StoreError(f"{store.path}: the file of source {manifest['id']!r} is missing ({path}); "
                         f"import the source again (`klmtui import-results FILE --source {manifest['id']}`)") from None
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}") from None
    try:
        table = _decode(path, data, str(manifest["id"]), trusted=_digest(data) == manifest.get("sha256"))
    except SourceFileError as exc:
        raise StoreError(str(exc)) from None
    if len(table) != manifest.get("rows"):
        raise StoreError(f"{path} has {len(table)} rows where {store.path} says {manifest.get('rows')}; "
                         f"the file is left untouched")
    _remember(key, table)
    return table


def _remember(key: tuple[str, str], table: SourceTable) -> None:
    """Keep a decoded table for the next `load` of the same file (at most `_CACHE_SIZE`)."""
    with _CACHE_LOCK:
        while len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = table


# --------------------------------------------------------------------------- writing


def write(store: Any, tx: Any, table: SourceTable, **fields: Any) -> SourceRecord:
    """Write `table` to a new file and record its manifest in `tx` (a transaction of `store`, so the
    write lock is held); then `sweep`. If the transaction does not commit, the new file is a leftover
    that no manifest names, and the next write of any source removes it."""
    from core.nospace import DiskFull, is_no_space
    from core.store import OperationFailed, atomic_write_text, now_iso

    folder = folder_of(store)
    data = encode(table)
    name = f"{table.name}.{secrets.token_hex(4)}{SUFFIX}"
    try:
        folder.mkdir(exist_ok=True)
        atomic_write_text(folder / name, [data])
    except OSError as exc:
        if is_no_space(exc):
            raise DiskFull(folder, f"cannot write source {table.name}") from None
        raise OperationFailed(f"cannot write {folder / name}: {exc.strerror or exc}") from None
    old = tx.get(SOURCES, table.name)
    manifest = cast(SourceRecord, {
        "id": table.name, "file": name, "sha256": _digest(data), "bytes": len(data), "rows": len(table),
        "imported": now_iso(), "reference": bool((old or {}).get("reference")), **fields,
        "previous": (old or {}).get("file"),
    })
    tx.upsert(SOURCES, manifest)
    sweep(store, tx)
    _remember((str(folder / name), manifest["sha256"]), table)
    return manifest


def sweep(store: Any, tx: Any) -> list[Path]:
    """Remove the source files no manifest of `tx` names (as its current or previous file) and temp
    files of killed writers. Only under the write lock (in a transaction). Returns what went."""
    folder = folder_of(store)
    if not folder.is_dir():
        return []
    wanted = {str(m[k]) for m in tx.all(SOURCES) for k in ("file", "previous") if m.get(k)}
    gone = []
    for path in folder.iterdir():
        if path.name in wanted or not (path.name.endswith(SUFFIX) or path.name.endswith(".tmp")):
            continue
        try:
            path.unlink()
            gone.append(path)
        except OSError:
            pass
    return gone


__all__ = ["COLUMNS", "SourceTable", "folder_of", "table_from_records", "encode", "load", "manifests", "write", "sweep"]
