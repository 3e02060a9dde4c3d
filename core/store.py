"""`runs.json`: the study store, a TinyDB file made safe for several processes and for `kill -9`.

TinyDB rewrites the whole file on every write, is not process-safe and has no atomic write. So
every write here is: a file lock (`runs.json.lock`, via `filelock`), a read of the current file,
the change, a temp file in the same folder, fsync, `os.replace` over the store, fsync of the
folder. Readers take no lock: a rename is atomic, so a reader sees the old or the new file, whole.

The file keeps TinyDB's layout (`{"table": {"<doc_id>": {record}}}`), so `TinyDB(path)` reads
it and `TinyDB(path, storage=AtomicJSONStorage)` writes it with the same guarantees; one record
per line (readable diffs of the committed study); a `_meta` table naming the app, the schema
version and a revision tag renewed by every write. Every record carries a string `"id"`; TinyDB's
doc ids are an implementation detail. The Store does its record operations itself rather than
through TinyDB's `Table` (whose query cache must be off anyway, see `tinydb_table`) because it
needs copy-on-write snapshots and to know which records a transaction touched.

Speed: a process keeps the last version it read or wrote (identified by inode, mtime, size and
the `_meta` revision at the head of the file), and the text of each record. A write re-dumps only
the records it touched and reuses every other line, even right after parsing a file another
process wrote (the lines are taken from that file's text). `bench/store_update.py` measures it.

Time series never go here: they are JSON-lines files in `store.run_dir(id)`.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from core.errors import InputError, OperationFailed
from core.schema import ACTIVE_STATUSES, META_TABLE, STATUSES, TABLES

APP = "klmtui"
SCHEMA_VERSION = 1
LOCK_TIMEOUT_S = 60.0

_Tables = dict[str, dict[str, dict]]


class StoreError(InputError):
    """The store file is not a klmtui store, is corrupt, or a record is missing/duplicated."""


class RecordNotFound(StoreError, KeyError):
    """`update`/`remove` of an id that is not in the table (also a `KeyError`)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


def new_id(prefix: str) -> str:
    """`prefix` + 8 hex chars: `new_id("t-")` for training runs, `new_id("b-")` for benchmarks."""
    return f"{prefix}{secrets.token_hex(4)}"


def now_iso() -> str:
    """The store's time stamp: ISO-8601 UTC, seconds precision, `Z` suffix."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- file format


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):  # numpy / torch scalars
        return obj.item()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    raise TypeError(f"store records must be JSON data, got {type(obj).__name__}")


_ENCODER = json.JSONEncoder(default=_json_default, allow_nan=False)  # = json.dumps(r, default=..., allow_nan=False)


def _dump_record(record: dict) -> str:
    return _ENCODER.encode(record)


_CONTAINERS = (dict, list, tuple)


def _copy(value: Any) -> Any:
    """A deep copy of JSON data (tuples become lists), far faster than `copy.deepcopy`."""
    if isinstance(value, dict):
        return {k: (_copy(v) if isinstance(v, _CONTAINERS) else v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [(_copy(v) if isinstance(v, _CONTAINERS) else v) for v in value]
    return value


def _table_order(names: Any) -> list[str]:
    known = [META_TABLE, *TABLES]
    return [n for n in known if n in names] + sorted(n for n in names if n not in known)


def _meta_record() -> dict:
    return {"id": "store", "app": APP, "schema": SCHEMA_VERSION, "created": now_iso()}


DIGESTS = "digests"  # `_meta` field: table -> sha256 of its text as klmtui wrote (and checked) it


def _digest(block: bytes | memoryview) -> str:
    return hashlib.sha256(block).hexdigest()


class _TableText:
    """The serialised lines of one table dict object, where each key's line is, and the digest
    of its text (`DIGESTS`; computed when first needed)."""

    __slots__ = ("table", "lines", "pos", "block", "_digest")

    def __init__(self, name: str, table: dict, lines: list[str], pos: dict[str, int],
                 block: bytes | memoryview | None = None) -> None:
        self.table, self.lines, self.pos = table, lines, pos
        if block is None:
            head = f"{json.dumps(name)}: {{"
            block = (head + ("\n" + ",\n".join(lines) + "\n}" if lines else "}")).encode("utf-8")
        self.block = block
        self._digest: str | None = None

    @property
    def digest(self) -> str:
        if self._digest is None:
            self._digest = _digest(self.block)
        return self._digest


class RawTable:
    """A table's text exactly as read from a file klmtui wrote (its digest matched), not decoded:
    a write that does not touch the table copies these bytes (`_FileVersion`)."""

    __slots__ = ("block", "digest", "lines")

    def __init__(self, block: memoryview, digest: str, lines: int) -> None:
        self.block, self.digest, self.lines = block, digest, lines  # a view into the file's bytes: no copy


def split_blocks(data: bytes) -> list[tuple[str, memoryview]] | None:
    """The tables of a file in klmtui's own layout, `[(name, text of the table)]` (views into
    `data`, not copies), or None for any other layout: see `_table_spans`."""
    spans = _table_spans(data)
    if spans is None:
        return None
    view = memoryview(data)
    return [(name, view[start:end]) for name, start, end in spans]


def _table_spans(data: bytes) -> list[tuple[str, int, int]] | None:
    """Where the tables of a file in klmtui's own layout are, `[(name, start, end)]`, found without
    decoding it (records are one line each and JSON text holds no raw newline, so a table ends at
    the first line that is `}`), or None for any other layout (TinyDB's, edited by hand)."""
    if not data.startswith(b"{\n") or not data.endswith(b"\n}\n"):
        return None
    stop = len(data) - 3
    blocks: list[tuple[str, int, int]] = []
    seen: set[str] = set()
    pos = 2
    while pos < stop:
        eol = data.find(b"\n", pos, stop)
        header = data[pos:stop if eol < 0 else eol]
        if header.endswith(b": {}"):
            end, name_text = pos + len(header), header[:-4]
        elif header.endswith(b": {"):
            close = data.find(b"\n}", pos, stop)
            if close < 0:
                return None
            end, name_text = close + 2, header[:-3]
        else:
            return None
        try:
            name = json.loads(name_text)
        except ValueError:
            return None
        if not isinstance(name, str) or name in seen or json.dumps(name).encode() != name_text:
            return None
        seen.add(name)
        blocks.append((name, pos, end))
        if end == stop:
            return blocks
        if data[end:end + 2] != b",\n":
            return None
        pos = end + 2
    return None


def _key_prefix(key: str) -> str:
    """`"key": ` as json.dumps writes it (TinyDB doc ids are digits: no escaping needed)."""
    return f'"{key}": ' if key.isdigit() else f"{json.dumps(key)}: "


def _record_line(key: str, record: dict) -> str:
    return _key_prefix(key) + _dump_record(record)


class _Serialiser:
    """Writes tables one record per line, re-serialising only what a transaction changed.

    Table dicts of a snapshot are never mutated in place (transactions copy on write), so
    identity says what is unchanged: an untouched table reuses its text; a table a transaction
    changed reuses its base's lines and redoes only the keys it touched. After a fresh parse,
    `seed` takes the lines from the file's own text, so a first write is just as cheap.
    """

    def __init__(self) -> None:
        self._tables: dict[str, _TableText] = {}

    def seed(self, tables: _Tables, text: str) -> None:
        """Learn each record's line from a file in our layout; silently skip any other layout."""
        blocks = split_blocks(text.encode("utf-8"))
        if blocks is None or [name for name, _ in blocks] != list(tables):
            return
        learned: dict[str, _TableText] = {}
        for name, block in blocks:
            known = _learn(name, tables[name], block)
            if known is None:
                return
            learned[name] = known
        self._tables = learned

    def seed_table(self, name: str, table: dict, block: bytes | memoryview) -> None:
        """Learn one table's lines from its text in the file (a table decoded from a `RawTable`)."""
        cached = self._tables.get(name)
        if cached is None or cached.table is not table:
            known = _learn(name, table, block)
            if known is not None:
                self._tables[name] = known

    def _incremental(self, name: str, table: dict, base: _TableText, touched: Iterable[str]) -> _TableText | None:
        lines, pos = base.lines.copy(), base.pos
        for key in dict.fromkeys(touched):
            line = _record_line(key, table[key])
            if key in pos:
                lines[pos[key]] = line
            else:
                if pos is base.pos:
                    pos = dict(pos)
                pos[key] = len(lines)
                lines.append(line)
        if len(lines) != len(table):
            return None
        return _TableText(name, table, lines, pos)

    def dumps(self, tables: Mapping[str, "dict | RawTable"], base: Mapping[str, Any] | None = None,
              touched: dict[str, list[str]] | None = None, removed: Iterable[str] = (),
              checked: bool = False) -> list[bytes | memoryview]:
        """The file's text in chunks. `base`/`touched`/`removed` describe a transaction. `checked`:
        every record has been checked (`core.store_check`), so `_meta` gets each table's digest
        (a later read trusts those tables' text without checking every record again)."""
        removed = set(removed)
        learned: dict[str, _TableText] = {}
        blocks: dict[str, _TableText | RawTable] = {}
        for name in _table_order(tables):
            table = tables[name]
            if isinstance(table, RawTable):
                blocks[name] = table
                continue
            if name == META_TABLE and checked and table:
                continue  # written last, with the digests of the others
            cached = self._tables.get(name)
            text = None
            if cached is not None and cached.table is table:
                text = cached
            elif (cached is not None and base is not None and touched is not None and name not in removed
                  and cached.table is base.get(name)):
                text = self._incremental(name, table, cached, touched.get(name, ()))
            if text is None:
                text = _dumped(name, table)
            learned[name] = blocks[name] = text
        if checked and tables.get(META_TABLE):
            meta = tables[META_TABLE]
            assert isinstance(meta, dict)
            key, record = next(iter(meta.items()))
            record = {k: v for k, v in record.items() if k != DIGESTS}
            record[DIGESTS] = {name: text.digest for name, text in blocks.items()}
            meta = {key: record}
            learned[META_TABLE] = _dumped(META_TABLE, meta)
            blocks = {META_TABLE: learned[META_TABLE], **blocks}
        self._tables = learned
        chunks: list[bytes | memoryview] = [b"{\n"]
        for n, written in enumerate(blocks.values()):
            if n:
                chunks.append(b",\n")
            chunks.append(written.block)
        chunks.append(b"\n}\n")
        return chunks

    def meta_table(self) -> dict | None:
        """The `_meta` table as last written (with the digests), to keep in memory."""
        cached = self._tables.get(META_TABLE)
        return None if cached is None else cached.table


def _dumped(name: str, table: dict) -> _TableText:
    keys = list(table)
    return _TableText(name, table, [_record_line(k, table[k]) for k in keys], {k: n for n, k in enumerate(keys)})


def _learn(name: str, table: dict, block: bytes | memoryview) -> _TableText | None:
    """A table's lines taken from its text in a file (None if the text is not that table's)."""
    lines = str(block, "utf-8").split("\n")
    head = f"{json.dumps(name)}: {{"
    if lines == [head + "}"]:
        return None if table else _TableText(name, table, [], {}, block)
    keys = list(table)
    if lines[0] != head or lines[-1] != "}" or len(lines) != len(keys) + 2:
        return None
    body = lines[1:-1]
    if not all(line.startswith(_key_prefix(key)) for line, key in zip(body, keys)):
        return None
    if not all(line.endswith(",") for line in body[:-1]) or (body and body[-1].endswith(",")):
        return None
    body = [line[:-1] for line in body[:-1]] + body[-1:]
    return _TableText(name, table, body, {key: n for n, key in enumerate(keys)}, block)


_HEAD_BYTES = 256  # the file's start holds the `_meta` record, with a revision tag per write


def _signature(st: os.stat_result, head: bytes) -> tuple:
    """What identifies one version of the file: inode, mtime, size, and its first bytes.

    Timestamps can be coarse and inode numbers are reused, so the `_meta` revision tag near the
    start of the file is what makes two versions differ for sure.
    """
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size, head)


def file_signature(path: str | os.PathLike) -> tuple | None:
    """The version of the store file at `path` as the Store itself tells versions apart (inode,
    mtime, size and the `_meta` revision tag at its head), or None when it cannot be read. Equal
    signatures mean the same content: a poller may skip the re-read."""
    try:
        with open(path, "rb") as fh:
            return _signature(os.fstat(fh.fileno()), fh.read(_HEAD_BYTES))
    except OSError:
        return None


def _keep_aside(path: Path, data: bytes) -> Path | None:
    """Copy a bad store file next to it (once per content); the original is never touched."""
    for other in sorted(path.parent.glob(path.name + ".corrupt-*")):
        try:
            if other.stat().st_size == len(data) and other.read_bytes() == data:
                return other
        except OSError:
            continue
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    try:
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
    except OSError:
        return None
    return target


def _bad_file(path: Path, data: bytes, why: str) -> StoreError:
    kept = _keep_aside(path, data)
    where = f"a copy is kept at {kept}" if kept else "could not copy it aside"
    return StoreError(f"{path} {why}; the file is left untouched ({where}); move it away or pass --store")


def parse_store(path: Path, data: bytes) -> _Tables:
    """Validate and decode a store file's bytes. Empty -> an empty store.

    Hostile content (NaN, numbers overflowing to infinity, absurd nesting, wrong shapes, values
    out of range: see `core.store_check`) is a `StoreError` naming the place; the file is untouched."""
    from core.store_check import decode, record_problem

    if not data.strip():
        return {}
    try:
        tables = decode(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _bad_file(path, data, f"is not valid JSON (line {getattr(exc, 'lineno', '?')})") from None
    except RecursionError:
        raise _bad_file(path, data, "is nested too deeply to be a klmtui store") from None
    except ValueError as exc:  # NaN/Infinity, a float overflowing, an int of over 4300 digits
        raise _bad_file(path, data, f"holds a number klmtui refuses ({str(exc).split(':')[0][:80]})") from None
    if not isinstance(tables, dict) or not all(isinstance(t, dict) for t in tables.values()):
        raise _bad_file(path, data, "is JSON but not a TinyDB/klmtui store")
    if not tables:
        return {}
    meta = next(iter(tables.get(META_TABLE, {}).values()), None)
    if not isinstance(meta, dict) or meta.get("app") != APP:
        raise _bad_file(path, data, "is not a klmtui store (no _meta entry with app 'klmtui')")
    schema = meta.get("schema")
    if not isinstance(schema, int) or schema > SCHEMA_VERSION:
        raise StoreError(
            f"{path} has store schema {schema!r}, this klmtui reads up to {SCHEMA_VERSION}: upgrade klmtui"
        )
    for name, table in tables.items():
        for record in table.values():
            if not isinstance(record, dict) or not isinstance(record.get("id"), str):
                raise _bad_file(path, data, f"has a record without a string id in table {name!r}")
            problem = record_problem(name, record) if name in TABLES else None
            if problem:
                raise _bad_file(path, data, f"has a bad record {_short_id(record['id'])} in table {name!r}: {problem}")
    return tables


def _short_id(id: str) -> str:
    return repr(id) if len(id) <= 40 else repr(id[:40]) + f"... ({len(id)} characters)"


def _refuse_bad_values(table: str, record: dict) -> None:
    """A write of NaN/inf or an out-of-range value (accuracy 101, latency -1) is refused."""
    from core.store_check import record_problem

    problem = record_problem(table, record)
    if problem:
        raise StoreError(f"refused to write {table} record {_short_id(record['id'])}: {problem}")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str | Iterable[str | bytes | memoryview]) -> None:
    """Temp file in the same folder, fsync, rename over `path`, fsync the folder. Text is written
    as UTF-8; chunks may be bytes already."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp")
    try:
        with open(tmp, "wb") as fh:
            for chunk in [text] if isinstance(text, str) else text:
                fh.write(chunk.encode("utf-8") if isinstance(chunk, str) else chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)


def _lock_for(path: Path):
    from filelock import FileLock

    return FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_S, poll_interval=0.002)


@contextmanager
def _locked(lock, path: Path) -> Iterator[None]:
    from filelock import Timeout

    try:
        lock.acquire()
    except Timeout:
        raise OperationFailed(f"{path} is locked by another process for over {LOCK_TIMEOUT_S:.0f} s") from None
    except OSError as exc:
        raise OperationFailed(f"cannot lock the store {path}: {exc.strerror or exc}") from None
    try:
        yield
    finally:
        lock.release()


# --------------------------------------------------------------------------- snapshots


class _FileVersion:
    """One version of the file: its tables, decoded when first read, plus a lazily built
    `id -> doc key` index per table. Treated as immutable.

    A table klmtui wrote itself (its digest in `_meta` matches its text) stays a `RawTable` until
    something reads it: `status` never decodes a table it does not show, and `device add` copies
    the 100k-row tables it does not touch as they are."""

    def __init__(self, tables: Mapping[str, "dict | RawTable"], signature: tuple | None) -> None:
        self.names = list(tables)
        self._parsed: dict[str, dict] = {n: t for n, t in tables.items() if not isinstance(t, RawTable)}
        self._raw: dict[str, RawTable] = {n: t for n, t in tables.items() if isinstance(t, RawTable)}
        self.decoded: dict[str, RawTable] = {}  # raw tables decoded since: their text, for the serialiser
        self.signature = signature
        self.raw: bytes | None = None  # the file's bytes (an untrusted file), until a write has learnt its lines
        self._index: dict[str, dict[str, str]] = {}
        self.strict_ok: set[str] = set()  # tables Store.view(strict=True) found every required key in
        self.trusted = False  # klmtui wrote (and checked) every table: strict views check tables as they read them
        self._decoding = threading.Lock()

    def table(self, name: str) -> dict:
        """The table's records (decoded on first use); {} for a table the file does not have."""
        table = self._parsed.get(name)
        if table is not None:
            return table
        with self._decoding:
            table = self._parsed.get(name)
            if table is None:
                raw = self._raw.get(name)
                if raw is None:
                    return {}
                table = _decode_table(name, raw)
                self.decoded[name] = raw
                self._parsed[name] = table
                del self._raw[name]
            return table

    def current(self, name: str) -> "dict | RawTable":
        """The table as it is held now: decoded, or still the `RawTable`."""
        table = self._parsed.get(name)
        return table if table is not None else self._raw.get(name) or self.table(name)

    def has_table(self, name: str) -> bool:
        return name in self._parsed or name in self._raw

    def count(self, name: str) -> int:
        raw = self._raw.get(name)
        if raw is not None:  # one record per line between the table's first and last line
            return raw.lines
        return len(self.table(name))

    @property
    def tables(self) -> _Tables:
        """Every table, decoded."""
        return {name: self.table(name) for name in self.names}

    def index(self, table: str) -> dict[str, str]:
        idx = self._index.get(table)
        if idx is None:
            idx = {rec["id"]: key for key, rec in self.table(table).items()}
            self._index[table] = idx
        return idx

    def get(self, table: str, id: str) -> dict | None:
        key = self.index(table).get(id)
        return None if key is None else self.table(table)[key]


def _decode_table(name: str, raw: RawTable) -> dict:
    from core.store_check import decode

    # orjson for the tables whose every record klmtui checked on write (integers within 64 bits)
    body = raw.block[len(json.dumps(name)) + 2:]  # `"name": {...}` -> the table's own object, not copied
    table = decode(body, fast=name in TABLES)
    if not isinstance(table, dict):
        raise StoreError(f"table {name!r} is not an object")
    return table


def _trusted_version(data: bytes, signature: tuple) -> "_FileVersion | None":
    """The file as a `_FileVersion` of `RawTable`s when klmtui wrote it (its layout, and every table's
    text matches the digest `_meta` holds for it), else None (then `parse_store` checks it all)."""
    from core.store_check import decode

    spans = _table_spans(data)
    if not spans or spans[0][0] != META_TABLE or spans[0][2] - spans[0][1] > 65536:
        return None
    view = memoryview(data)
    try:
        meta_table = decode(b"{" + data[spans[0][1]:spans[0][2]] + b"}")[META_TABLE]
    except (ValueError, RecursionError, UnicodeDecodeError):
        return None
    meta = next(iter(meta_table.values()), None) if isinstance(meta_table, dict) and len(meta_table) == 1 else None
    if not isinstance(meta, dict) or meta.get("app") != APP or not isinstance(meta.get(DIGESTS), dict):
        return None
    schema = meta.get("schema")
    if not isinstance(schema, int) or isinstance(schema, bool) or not 1 <= schema <= SCHEMA_VERSION:
        return None
    digests = meta[DIGESTS]
    tables: dict[str, dict | RawTable] = {META_TABLE: meta_table}
    for name, start, end in spans[1:]:
        digest = digests.get(name)
        block = view[start:end]
        if not isinstance(digest, str) or _digest(block) != digest:
            return None
        lines = data.count(b"\n", start, end)
        tables[name] = RawTable(block, digest, max(lines - 1, 0))  # one record per line but the first and last
    version = _FileVersion(tables, signature)
    version.trusted = True
    return version


def _check_table(table: str) -> None:
    if table not in TABLES:
        raise ValueError(f"unknown store table {table!r}; tables are {', '.join(TABLES)}")


def _matches(record: dict, equal: dict) -> bool:
    return all(record.get(k) == v for k, v in equal.items())


class Tx:
    """A transaction: reads see its own writes; everything is written once, at exit.

    Copy-on-write over the snapshot it started from: the snapshot (shared with readers of the
    same process) is never mutated.
    """

    def __init__(self, base: _FileVersion) -> None:
        self._base = base
        self._tables: _Tables = {}  # the tables this transaction wrote (copied from the base on first write)
        self._copied: set[str] = set()
        self._index: dict[str, dict[str, str]] = {}
        self._next_key: dict[str, int] = {}
        self.changed = False
        self.touched: dict[str, list[str]] = {}  # doc keys written, per table (for the serialiser)
        self.removed: set[str] = set()  # tables that lost a record

    # -- internals
    def _table(self, table: str) -> dict[str, dict]:
        written = self._tables.get(table)
        return written if written is not None else self._base.table(table)

    def tables(self) -> dict[str, "dict | RawTable"]:
        """Every table as this transaction leaves it (those it did not touch as the base holds them)."""
        names = [*self._base.names, *(n for n in self._tables if not self._base.has_table(n))]
        return {n: self._tables[n] if n in self._tables else self._base.current(n) for n in names}

    def _idx(self, table: str) -> dict[str, str]:
        if table not in self._index:
            self._index[table] = dict(self._base.index(table)) if self._base.has_table(table) else {}
        return self._index[table]

    def _writable(self, table: str, key: str | None = None) -> dict[str, dict]:
        """The table, copied on first write; `key` is recorded as touched."""
        if table not in self._copied:
            self._tables[table] = dict(self._table(table))
            self._copied.add(table)
        self.changed = True
        if key is None:
            self.removed.add(table)
        else:
            self.touched.setdefault(table, []).append(key)
        return self._tables[table]

    def _new_key(self, table: str) -> str:
        if table not in self._next_key:
            keys = self._table(table).keys()
            self._next_key[table] = max((int(k) for k in keys if k.isdigit()), default=0) + 1
        key = self._next_key[table]
        self._next_key[table] = key + 1
        return str(key)

    @staticmethod
    def _checked(record: Mapping[str, Any]) -> dict:
        if not isinstance(record, dict) or not isinstance(record.get("id"), str) or not record["id"]:
            raise ValueError("a store record must be a dict with a non-empty string 'id'")
        return _copy(record)

    def _ensure_meta(self) -> None:
        """Add the `_meta` record if missing, and give this write a fresh revision tag."""
        meta = self._table(META_TABLE)
        key, record = next(iter(meta.items())) if meta else ("1", _meta_record())
        self._writable(META_TABLE, key)[key] = {**record, "rev": secrets.token_hex(6)}

    # -- reads
    def has(self, table: str, id: str) -> bool:
        """Is there a record `id` (no copy made: for checks in large imports)?"""
        _check_table(table)
        return id in self._idx(table)

    def get(self, table: str, id: str) -> dict | None:
        _check_table(table)
        key = self._idx(table).get(id)
        return None if key is None else _copy(self._table(table)[key])

    def all(self, table: str) -> list[dict]:
        _check_table(table)
        return [_copy(r) for r in self._table(table).values()]

    def find(self, table: str, **equal: Any) -> list[dict]:
        _check_table(table)
        return [_copy(r) for r in self._table(table).values() if _matches(r, equal)]

    # -- writes
    def insert(self, table: str, record: Mapping[str, Any]) -> str:
        _check_table(table)
        rec = self._checked(record)
        if rec["id"] in self._idx(table):
            raise StoreError(f"{table}: a record with id {rec['id']!r} already exists")
        _refuse_bad_values(table, rec)
        key = self._new_key(table)
        self._writable(table, key)[key] = rec
        self._idx(table)[rec["id"]] = key
        return rec["id"]

    def upsert(self, table: str, record: Mapping[str, Any]) -> str:
        """Insert, or update the existing record's fields (fields not given are kept)."""
        _check_table(table)
        rec = self._checked(record)
        key = self._idx(table).get(rec["id"])
        if key is None:
            return self.insert(table, rec)
        merged = {**self._table(table)[key], **rec}
        _refuse_bad_values(table, merged)
        self._writable(table, key)[key] = merged
        return rec["id"]

    def update(self, table: str, id: str, **fields: Any) -> dict:
        _check_table(table)
        key = self._idx(table).get(id)
        if key is None:
            raise RecordNotFound(f"{table}: no record with id {id!r}")
        if fields.get("id", id) != id:
            raise ValueError("update() cannot change a record's id")
        merged = {**self._table(table)[key], **_copy(fields)}
        _refuse_bad_values(table, merged)
        self._writable(table, key)[key] = merged
        return _copy(merged)

    def remove(self, table: str, id: str) -> None:
        _check_table(table)
        key = self._idx(table).pop(id, None)
        if key is None:
            raise RecordNotFound(f"{table}: no record with id {id!r}")
        del self._writable(table)[key]


# --------------------------------------------------------------------------- the store


class Store:
    """The one way to read and write `runs.json` (see the module docstring for the guarantees)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._target = Path(os.path.realpath(self.path))  # a symlinked runs.json: its target
        self._lock = _lock_for(self._target)
        self._guard = threading.RLock()
        self._snapshot: _FileVersion | None = None
        self._serialiser = _Serialiser()
        self._in_tx = threading.local()
        self._swept = False

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    def exists(self) -> bool:
        return self.path.is_file() and self.path.stat().st_size > 0

    @property
    def folder(self) -> Path:
        return self.path.parent

    def run_dir(self, id: str) -> Path:
        """`<store folder>/runs/<id>/`, created on demand: where a run's time series live."""
        if not id or "/" in id or id in (".", ".."):
            raise ValueError(f"not a record id: {id!r}")
        folder = self.folder / "runs" / id
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def relative(self, path: str | os.PathLike) -> str:
        """A path as stored in records: relative to the store folder when inside it (portable)."""
        p = Path(path)
        try:
            return str(p.resolve().relative_to(self.folder.resolve()))
        except ValueError:
            return str(p)

    def resolve(self, stored: str | os.PathLike) -> Path:
        """The inverse of `relative`: a stored path made absolute against the store folder."""
        p = Path(stored)
        return p if p.is_absolute() else self.folder / p

    # -- snapshot loading
    def _load(self) -> _FileVersion:
        """The current file, decoded (reused when inode, mtime and size are unchanged)."""
        with self._guard:
            try:
                fh = open(self.path, "rb")
            except FileNotFoundError:
                return _FileVersion({}, None)
            except OSError as exc:
                raise OperationFailed(f"cannot read the store {self.path}: {exc.strerror}") from None
            with fh:
                head = fh.read(_HEAD_BYTES)
                sig = _signature(os.fstat(fh.fileno()), head)
                if self._snapshot is not None and self._snapshot.signature == sig:
                    return self._snapshot
                data = head + fh.read()
            snap = _trusted_version(data, sig)
            if snap is None:  # not written by klmtui, or edited since: every record is checked
                snap = _FileVersion(parse_store(self.path, data), sig)
                snap.raw = data
            self._snapshot = snap
            return snap

    # -- reads (no lock: the file is only ever replaced whole)
    def rows(self, table: str) -> Iterable[dict]:
        """The records themselves, uncopied (large tables: callers must not mutate them)."""
        _check_table(table)
        return self._load().table(table).values()

    def all(self, table: str) -> list[dict]:
        _check_table(table)
        return [_copy(r) for r in self._load().table(table).values()]

    def get(self, table: str, id: str) -> dict | None:
        _check_table(table)
        rec = self._load().get(table, id)
        return None if rec is None else _copy(rec)

    def find(self, table: str, **equal: Any) -> list[dict]:
        _check_table(table)
        return [_copy(r) for r in self._load().table(table).values() if _matches(r, equal)]

    def count(self, table: str) -> int:
        _check_table(table)
        return self._load().count(table)

    def meta(self) -> dict:
        """The `_meta` record (app, schema, created, rev, digests), or {} for an empty store."""
        return _copy(next(iter(self._load().table(META_TABLE).values()), {}))

    def view(self, *, strict: bool = False) -> "StoreView":
        """Every table from ONE parse of the file (readers of several tables never mix two versions).

        `strict`: also refuse records missing the keys readers index (`core.store_check.REQUIRED`),
        one line naming them, the file untouched: each table when the view first reads it (a
        table a command does not read is not even decoded); `StoreView.check()` checks them all."""
        return StoreView(self, self._load(), strict=strict)

    # -- writes
    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """Lock, read, let the caller change things, then write once (nothing if unchanged).

        An exception inside the block writes nothing. Transactions do not nest.
        """
        if getattr(self._in_tx, "active", False):
            raise RuntimeError("Store.transaction() does not nest; use the Tx you already have")
        self._in_tx.active = True
        try:
            with self._write_lock():
                base = self._load()
                tx = Tx(base)
                yield tx
                if tx.changed:
                    tx._ensure_meta()
                    if base.raw is not None:
                        self._serialiser.seed(base.tables, base.raw.decode("utf-8", "replace"))
                        base.raw = None
                    for name, raw in list(base.decoded.items()):  # tables decoded from klmtui's own text
                        self._serialiser.seed_table(name, base.table(name), raw.block)
                    base.decoded.clear()
                    self._commit(tx.tables(), base, tx.touched, tx.removed, checked=True)
        finally:
            self._in_tx.active = False

    @contextmanager
    def _write_lock(self) -> Iterator[None]:
        """The lock of the file written: a symlink's target (re-resolved: a link may be re-pointed),
        so the target gets every write and a writer through the link and one on the target
        exclude each other."""
        with self._guard:
            target = Path(os.path.realpath(self.path))
            if target != self._target:
                self._target, self._lock, self._swept = target, _lock_for(target), False
            with _locked(self._lock, self.path):
                if not self._swept:
                    self._sweep_temp_files()
                yield

    def _sweep_temp_files(self) -> None:
        """Remove temp files left by writers killed mid-write (under the lock, any is stale)."""
        for stale in self._target.parent.glob(f".{self._target.name}.*.tmp"):
            try:
                stale.unlink()
            except OSError:
                pass
        self._swept = True

    def _commit(self, tables: Mapping[str, "dict | RawTable"], base: _FileVersion | None = None,
                touched: dict | None = None, removed: Iterable[str] = (), checked: bool = False) -> None:
        """Write `tables`. `checked`: every record was checked (a transaction: its writes, and a base
        that was checked or trusted), so the file gets each table's digest."""
        ordered = {name: tables[name] for name in _table_order(tables)}
        base_tables = None if base is None else {n: base.current(n) for n in base.names}
        try:
            chunks = self._serialiser.dumps(ordered, base_tables, touched, removed, checked)
        except (TypeError, ValueError) as exc:  # not JSON data, or a NaN that escaped the checks
            self._serialiser = _Serialiser()
            raise StoreError(f"refused to write {self.path}: {exc}") from None
        try:
            atomic_write_text(self._target, chunks)
        except OSError as exc:
            self._serialiser = _Serialiser()  # its cache may describe the unwritten state
            from core.nospace import DiskFull, is_no_space

            if is_no_space(exc):  # the temp file is gone already (atomic_write_text)
                raise DiskFull(self._target.parent, f"cannot write the store {self.path}") from None
            raise OperationFailed(f"cannot write the store {self.path}: {exc.strerror or exc}") from None
        head, size = [], 0
        for chunk in chunks:  # the file's first bytes, as `_load` reads them
            head.append(chunk)
            size += len(chunk)
            if size >= _HEAD_BYTES:
                break
        sig = _signature(os.stat(self.path), b"".join(head)[:_HEAD_BYTES])
        meta = self._serialiser.meta_table() if checked else None
        if meta is not None:
            ordered[META_TABLE] = meta  # with the digests just written
        self._snapshot = _FileVersion(ordered, sig)
        self._snapshot.trusted = checked

    def insert(self, table: str, record: Mapping[str, Any]) -> str:
        with self.transaction() as tx:
            return tx.insert(table, record)

    def upsert(self, table: str, record: Mapping[str, Any]) -> str:
        with self.transaction() as tx:
            return tx.upsert(table, record)

    def update(self, table: str, id: str, **fields: Any) -> dict:
        with self.transaction() as tx:
            return tx.update(table, id, **fields)

    def remove(self, table: str, id: str) -> None:
        with self.transaction() as tx:
            tx.remove(table, id)

    def initialise(self) -> bool:
        """Create the file with its `_meta` entry if it does not exist yet. True if created."""
        with self.transaction() as tx:
            if tx._table(META_TABLE):
                return False
            tx._ensure_meta()
            tx.changed = True
            return True

    def tinydb_table(self, table: str):
        """A read-only TinyDB `Table` (query cache off) over a snapshot, for `Query`-style searches."""
        from tinydb import TinyDB
        from tinydb.storages import MemoryStorage

        _check_table(table)
        db = TinyDB(storage=MemoryStorage)
        db.storage.write(_copy(self._load().tables))
        return db.table(table, cache_size=0)


class StoreView:
    """A read-only view of one version of the store (see `Store.view`): the read API of `Store`.

    `rows(table)` iterates the records themselves, uncopied (for large tables: callers must not
    mutate them); `all`/`get`/`find` return copies like the Store's."""

    def __init__(self, store: Store, snapshot: _FileVersion, strict: bool = False) -> None:
        self.store = store
        self.path = store.path
        self._snap = snapshot
        self._strict = strict
        if strict and not snapshot.trusted:  # decoded whole anyway: report a bad record before anything else
            self.check()

    def _table(self, table: str) -> dict[str, dict]:
        _check_table(table)
        records = self._snap.table(table)
        if self._strict and table not in self._snap.strict_ok:
            from operator import itemgetter

            from core.store_check import REQUIRED, missing_keys

            required = REQUIRED.get(table, ())
            present = itemgetter(*required) if len(required) > 1 else None  # a tuple of the values, in C
            for record in records.values():
                if present is not None:
                    try:
                        if None not in present(record):
                            continue
                    except KeyError:
                        pass
                missing = missing_keys(table, record)
                if missing:
                    raise StoreError(f"{self.path} has a {table} record {_short_id(record['id'])} without "
                                     f"{', '.join(missing)}; the file is left untouched; fix or remove it")
            self._snap.strict_ok.add(table)
        return records

    def check(self) -> "StoreView":
        """Decode and (strict) check every table now."""
        for table in TABLES:
            self._table(table)
        return self

    def __repr__(self) -> str:
        return f"StoreView({str(self.path)!r})"

    @property
    def folder(self) -> Path:
        return self.store.folder

    def exists(self) -> bool:
        return bool(self._snap.names)

    def relative(self, path: str | os.PathLike) -> str:
        return self.store.relative(path)

    def resolve(self, stored: str | os.PathLike) -> Path:
        return self.store.resolve(stored)

    def run_dir(self, id: str) -> Path:
        return self.store.run_dir(id)

    def rows(self, table: str) -> Iterable[dict]:
        return self._table(table).values()

    def all(self, table: str) -> list[dict]:
        return [_copy(r) for r in self.rows(table)]

    def get(self, table: str, id: str) -> dict | None:
        self._table(table)
        rec = self._snap.get(table, id)
        return None if rec is None else _copy(rec)

    def find(self, table: str, **equal: Any) -> list[dict]:
        return [_copy(r) for r in self.rows(table) if _matches(r, equal)]

    def count(self, table: str) -> int:
        if self._strict:
            return len(self._table(table))
        _check_table(table)
        return self._snap.count(table)

    def meta(self) -> dict:
        return _copy(next(iter(self._snap.table(META_TABLE).values()), {}))


# --------------------------------------------------------------------------- TinyDB storage


class AtomicJSONStorage:
    """A TinyDB storage with this module's guarantees: `TinyDB(path, storage=AtomicJSONStorage)`.

    TinyDB duck-types storages (read/write/close), so this needs no TinyDB import. Each TinyDB
    write = lock + atomic replace, and keeps the `_meta` entry so the file stays a klmtui store;
    reads take no lock. Records written this way must carry a string `"id"` too. For scripts
    and inspection: TinyDB reads before this lock is taken, so concurrent writers belong in
    `Store.transaction()`, which holds the lock across its read-modify-write.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self._store = Store(path)

    def read(self) -> _Tables | None:
        tables = self._store._load().tables
        return _copy(tables) if tables else None

    def write(self, data: _Tables) -> None:
        for name, rows in data.items():
            if any(not isinstance(r.get("id"), str) for r in rows.values()):
                raise ValueError(f"klmtui store records need a string 'id' (table {name!r})")
        store = self._store
        with store._write_lock():
            tables = {name: dict(rows) for name, rows in data.items()}
            meta = next(iter(tables.get(META_TABLE, {}).values()), None) or _meta_record()
            meta = {k: v for k, v in meta.items() if k != DIGESTS}  # records unchecked: the next read checks them all
            tables[META_TABLE] = {"1": {**meta, "rev": secrets.token_hex(6)}}
            store._commit(tables)
            store._snapshot = None  # not checked: the next read (and write) checks every record

    def close(self) -> None:
        pass


__all__ = [
    "APP",
    "SCHEMA_VERSION",
    "TABLES",
    "STATUSES",
    "ACTIVE_STATUSES",
    "Store",
    "StoreView",
    "StoreError",
    "RecordNotFound",
    "Tx",
    "file_signature",
    "new_id",
    "now_iso",
    "parse_store",
    "atomic_write_text",
    "AtomicJSONStorage",
]
