"""Results tables from elsewhere: the thesis' Appendix A (shipped) and user CSVs (`import-results`).

A results CSV has the columns `K,L,M,channels,accuracy,params_m,latency_s,power_w` (any order;
instead of K,L,M an `arch` column `K-L-M` or `K-L-M@C` works too). Other columns are kept in
each record's `extra`. Empty cells are missing values (the Pareto front excludes and counts such
rows). Every row is validated before anything is written, and all of them are written in one
transaction: a bad file is reported by line number and imports nothing.
"""

from __future__ import annotations

import csv
import io
import math
import re
from itertools import repeat
from pathlib import Path
from typing import cast

from core.arch import Arch, ArchError, parse_arch
from core.errors import InputError
from core.limits import MAX_BLOCK, MAX_CHANNELS, MAX_CSV_FIELD
from core.numbers import NotFinite, OutOfRange, finite_in, interval
from core.records import ArchFields, ResultRecord
from core.schema import DEFAULT_GENOTYPE, MEASURED_SOURCE, THESIS_SOURCE

RESULT_COLUMNS = ("accuracy", "params_m", "latency_s", "power_w")
CSV_COLUMNS = ("K", "L", "M", "channels", *RESULT_COLUMNS)
THESIS_CSV = Path(__file__).with_name("reference") / "thesis_appendix_a.csv"
THESIS_BATCH = 64  # latency and power were measured with batch 64 on the Jetson Nano

# Table 1 of the thesis: what it calls its multi-dimensional Pareto front.
THESIS_TABLE1 = (
    "3-9-6@36",
    "4-10-4@36",
    "4-10-4@24",
    "4-10-4@12",
    "5-7-6@24",
    "6-4-8@36",
    "7-7-4@36",
    "8-8-2@24",
    "9-3-6@12",
)

_SOURCE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_MAX_ERRORS_SHOWN = 3


def is_reference_source(store, source: str) -> bool:
    """A shipped source (`thesis`), or one whose stored rows (or, for a source in its own file, its
    manifest: `core.sources`) are marked `"reference": true`."""
    from core.schema import SOURCES

    return (source in REFERENCE_SOURCES or any(r.get("reference") for r in store.find("results", source=source))
            or bool((store.get(SOURCES, source) or {}).get("reference")))


def check_source_name(name: str) -> str:
    """A source is a short name; `measured` (and `measured:DEVICE`) are our own measurements."""
    if not _SOURCE_RE.match(name or ""):
        raise InputError(f"bad source name {name!r}: use letters, digits, '_', '.', '-' (e.g. thesis, snas-paper)")
    if name == MEASURED_SOURCE:
        raise InputError(f"source name {name!r} is reserved for klmtui's own measurements")
    return name


def arch_fields(arch: Arch) -> ArchFields:
    """The architecture columns every record repeats (so tables need no join)."""
    return {"arch": arch.triple, "K": arch.K, "L": arch.L, "M": arch.M, "channels": arch.channels,
            "genotype": arch.genotype}


def result_record(source: str, arch: Arch, values: dict[str, float | None], extra: dict | None = None) -> ResultRecord:
    """A `results` table record (shape fixed by the team brief)."""
    record = {
        "id": f"{source}:{arch.id}",
        "source": source,
        "arch_id": arch.id,
        **arch_fields(arch),
        **{col: values.get(col) for col in RESULT_COLUMNS},
        "extra": dict(extra or {}),
    }
    return cast(ResultRecord, record)


# column -> (low, high, low_open): accuracy in [0, 100]; params, latency and power > 0
RESULT_RANGES: dict[str, tuple[float, float, bool]] = {
    "accuracy": (0.0, 100.0, False),
    "params_m": (0.0, 1e6, True),
    "latency_s": (0.0, 1e6, True),
    "power_w": (0.0, 1e5, True),
}
# Sources shipped with klmtui: `import-results` never writes them (nor a source whose rows say `reference`).
REFERENCE_SOURCES = (THESIS_SOURCE,)


def _number(text: str, column: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{column} {text[:40]!r} is not a number") from None
    low, high, low_open = RESULT_RANGES.get(column, (-math.inf, math.inf, False))
    try:
        return finite_in(value, low, high, low_open=low_open)  # core.numbers: the one finite-number check
    except NotFinite:
        raise ValueError(f"{column} {text[:40]!r} is not a finite number") from None
    except OutOfRange:
        bound = f"> {low:g}" if low_open else f"in {interval(low, high)}"
        raise ValueError(f"{column} {text[:40]} is out of range (must be {bound})") from None


def _integer(text: str, column: str) -> int:
    text = text.strip()
    if 0 < len(text) <= 7 and text.isdecimal():  # what \d{1,7} matches, without the regex (100k rows x 4)
        return int(text)
    if not re.fullmatch(r"\d{1,7}", text):
        raise ValueError(f"{column} {text[:40]!r} is not a whole number (at most 7 digits)")
    return int(text)


def _row_arch(row: dict[str, str], genotype: str | None) -> Arch:
    channels_text = (row.get("channels") or "").strip()
    channels = _integer(channels_text, "channels") if channels_text else None
    arch_text = (row.get("arch") or "").strip()
    if arch_text and not all((row.get(c) or "").strip() for c in ("K", "L", "M")):
        try:
            arch = parse_arch(arch_text, channels=channels, genotype=genotype)
        except ArchError as exc:
            raise ValueError(str(exc)) from None
        if channels is not None and arch.channels != channels:
            raise ValueError(f"arch {arch_text!r} disagrees with channels {channels}")
        return arch
    k, l, m = (_integer(row.get(c) or "", c) for c in ("K", "L", "M"))
    if channels is None:
        raise ValueError("channels is empty")
    try:
        return Arch(k, l, m, channels, genotype or "SNAS_mild")
    except ArchError as exc:
        raise ValueError(str(exc)) from None


def parse_results_csv(text: str, source: str, *, name: str = "CSV", extra: dict | None = None) -> list[ResultRecord]:
    """Validate a whole results CSV and return its `results` records; InputError names bad lines.

    The common file (known columns once each, full rows, plain numbers, nothing wrong) takes the
    whole-column path (`_fast_records`, issue 12: 100k rows); anything else, and every file with a
    bad row, the row-by-row path (`_checked_records`), which decides and words the refusal."""
    header = _csv_header(text, name)
    records = _fast_records(text, header, source, extra)
    return _checked_records(text, header, source, name, extra) if records is None else records


def _csv_header(text: str, name: str) -> list[str]:
    """The header's cells, stripped; refuses an empty file, a header csv cannot read, a long header
    cell and missing columns."""
    if not text.strip():
        raise InputError(f"{name} is empty: expected a header {','.join(CSV_COLUMNS)} and rows")
    try:
        header = [h.strip() for h in next(csv.reader(io.StringIO(text, newline="")), [])]
    except csv.Error as exc:
        raise InputError(f"{name}: line 1: {exc}; nothing imported") from None
    if any(len(h) > MAX_CSV_FIELD for h in header):
        raise InputError(f"{name}: line 1: a header cell has over {MAX_CSV_FIELD} characters")
    has_klm = all(c in header for c in ("K", "L", "M"))
    needed = [c for c in CSV_COLUMNS if c not in header and not (c in ("K", "L", "M") and "arch" in header)]
    if "channels" not in header and "arch" in header and not has_klm:
        needed = [c for c in needed if c != "channels"]  # K-L-M@C carries it
    if needed:
        raise InputError(f"{name}: missing column(s) {', '.join(needed)} (needs {','.join(CSV_COLUMNS)})")
    return header


_KNOWN_COLUMNS = frozenset((*CSV_COLUMNS, "arch", "genotype"))


def _checked_records(text: str, header: list[str], source: str, name: str, extra: dict | None) -> list[ResultRecord]:
    """Row by row, as csv.DictReader reads them: every bad row is named by its line (the first
    _MAX_ERRORS_SHOWN of them), and then nothing is returned."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    reader.fieldnames  # noqa: B018  (reads the header line, as _csv_header did)
    reader.fieldnames = header
    records: list[ResultRecord] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    rows = iter(reader)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. a field over csv's own limit: nothing after it can be trusted
            raise InputError(f"{name}: after line {reader.line_num}: {exc}; nothing imported") from None
        line = reader.line_num
        if None in row:
            errors.append(f"line {line}: more cells than header columns")
            continue
        long_cell = next((k for k, v in row.items() if len(v or "") > MAX_CSV_FIELD), None)
        if long_cell is not None:
            errors.append(f"line {line}: {long_cell[:40]} has {len(row[long_cell])} characters "
                          f"(at most {MAX_CSV_FIELD})")
            continue
        if not any((v or "").strip() for v in row.values()):
            continue  # blank line
        try:
            genotype = (row.get("genotype") or "").strip() or None
            arch = _row_arch(row, genotype)
            values = {col: _number(row.get(col) or "", col) for col in RESULT_COLUMNS}
        except ValueError as exc:
            errors.append(f"line {line}: {exc}")
            continue
        if arch.id in seen:
            errors.append(f"line {line}: {arch.id} already on line {seen[arch.id]}")
            continue
        seen[arch.id] = line
        row_extra = {k: v for k, v in row.items() if k not in _KNOWN_COLUMNS and k and (v or "").strip()}
        records.append(result_record(source, arch, values, {**(extra or {}), **row_extra}))
    if errors:
        shown = "; ".join(errors[:_MAX_ERRORS_SHOWN])
        more = f" (and {len(errors) - _MAX_ERRORS_SHOWN} more)" if len(errors) > _MAX_ERRORS_SHOWN else ""
        raise InputError(f"{name}: {len(errors)} bad row(s), nothing imported: {shown}{more}")
    if not records:
        raise InputError(f"{name} has a header but no rows")
    return records


def _fast_records(text: str, header: list[str], source: str, extra: dict | None) -> list[ResultRecord] | None:
    """The records of a file with nothing to name, built a column at a time; None for anything
    else: a repeated header name, a short or long row, a cell over MAX_CSV_FIELD, a blank row, an
    empty or malformed K/L/M/channels/arch cell, a number float() or RESULT_RANGES refuses, a
    repeated architecture, a csv.Error. The records are exactly `_checked_records'` (same dicts,
    key order, floats, `extra`; tests/test_results_csv.py); the row-by-row path decides the rest."""
    if len(set(header)) != len(header):
        return None
    columns = _plain_columns(text, len(header)) or _csv_columns(text, len(header))
    if columns is None:
        return None
    at = {col: i for i, col in enumerate(header)}
    count = len(columns[0])
    genotype_cells = list(map(str.strip, columns[at["genotype"]])) if "genotype" in at else [""] * count
    if all(c in at for c in ("K", "L", "M")):
        k_col, l_col, m_col = (_whole_numbers(columns[at[c]], MAX_BLOCK) for c in ("K", "L", "M"))
        c_col = _whole_numbers(columns[at["channels"]], MAX_CHANNELS)
        if k_col is None or l_col is None or m_col is None or c_col is None:
            return None
        ks, ls, ms, channels = k_col, l_col, m_col, c_col
        genotypes = [g or DEFAULT_GENOTYPE for g in genotype_cells]
    else:  # the `arch` column: parse_arch, row by row, exactly as _row_arch
        given = zip(columns[at["arch"]], columns[at["channels"]] if "channels" in at else [""] * count, genotype_cells)
        try:
            archs = [_row_arch({"arch": a, "channels": c}, g or None) for a, c, g in given]
        except ValueError:
            return None
        ks, ls, ms = [a.K for a in archs], [a.L for a in archs], [a.M for a in archs]
        channels, genotypes = [a.channels for a in archs], [a.genotype for a in archs]
    acc, params, latency, power = (_finite_numbers(columns[at[col]], col) for col in RESULT_COLUMNS)
    if acc is None or params is None or latency is None or power is None:
        return None
    triples = [f"{k}-{l}-{m}" for k, l, m in zip(ks, ls, ms)]
    ids = [f"{t}@{c}" if g == DEFAULT_GENOTYPE else f"{t}@{c}/{g}" for t, c, g in zip(triples, channels, genotypes)]
    if len(set(ids)) != count:
        return None
    extras = [dict(extra) for _ in ids] if extra else [{} for _ in ids]
    for i, col in enumerate(header):
        if col and col not in _KNOWN_COLUMNS:
            for row_extra, cell in zip(extras, columns[i]):
                if cell.strip():
                    row_extra[col] = cell
    # result_record's shape, key for key (arch_fields, then RESULT_COLUMNS, then extra)
    return [cast(ResultRecord, {"id": f"{source}:{arch_id}", "source": source, "arch_id": arch_id, "arch": t, "K": k,
                                "L": l, "M": m, "channels": c, "genotype": g, "accuracy": a, "params_m": p,
                                "latency_s": la, "power_w": w, "extra": e})
            for arch_id, t, k, l, m, c, g, a, p, la, w, e in zip(ids, triples, ks, ls, ms, channels, genotypes, acc,
                                                                  params, latency, power, extras)]


def _plain_columns(text: str, width: int) -> list[list[str]] | None:
    """The body's columns of a text csv would read as plain `str.split`s (no quote, CR or NUL), every
    line `width` cells and at most MAX_CSV_FIELD characters (so no cell is longer); else None."""
    if '"' in text or "\r" in text or "\0" in text:
        return None
    lines = text.split("\n")
    body = lines[1:-1] if lines[-1] == "" else lines[1:]
    if "" in body:  # empty lines: csv reads [], and DictReader skips them
        body = [line for line in body if line]
    if not body or max(map(len, body)) > MAX_CSV_FIELD or set(map(str.count, body, repeat(","))) != {width - 1}:
        return None
    cells = ",".join(body).split(",")
    return [cells[i::width] for i in range(width)]


def _csv_columns(text: str, width: int) -> list[list[str]] | None:
    """The body's columns as csv reads them, if every row has `width` cells of at most MAX_CSV_FIELD
    characters (empty lines skipped, as DictReader does); else None."""
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))[1:]
    except csv.Error:
        return None
    if [] in rows:
        rows = [row for row in rows if row]
    if not rows or any(len(row) != width for row in rows):
        return None
    columns = [list(cells) for cells in zip(*rows)]
    return None if max(max(map(len, cells)) for cells in columns) > MAX_CSV_FIELD else columns


_WHOLE = {str(n): n for n in range(1, max(MAX_BLOCK, MAX_CHANNELS) + 1)}  # the plain spellings of 1..512


def _whole_numbers(cells: list[str], high: int) -> list[int] | None:
    """A column of `_integer`s all in [1, high] (what Arch accepts), or None."""
    try:
        numbers = list(map(_WHOLE.__getitem__, cells))  # plain `36`: a look-up instead of strip, checks and int()
    except KeyError:  # ` 36`, `036`, Unicode digits, or not a number at all
        cells = list(map(str.strip, cells))
        if not all(map(str.isdecimal, cells)) or max(map(len, cells)) > 7:
            return None
        numbers = list(map(int, cells))
    return numbers if min(numbers) >= 1 and max(numbers) <= high else None


def _finite_numbers(cells: list[str], column: str) -> list[float | None] | None:
    """A column of `_number`s (blank cells are None) if none of them would raise, else None.
    Where float() takes a cell as it is, it reads what `_number` reads from it stripped (checked over
    every code point); it refuses more (a blank cell; U+001C-U+001F around a number, which str.strip()
    removes): then a second pass strips."""
    try:
        numbers: list[float | None] = list(map(float, cells))
        present = cast("list[float]", numbers)
    except ValueError:
        try:
            numbers = [float(t) if t else None for t in map(str.strip, cells)]
        except ValueError:
            return None
        present = [v for v in numbers if v is not None]
    if not present:
        return numbers
    if not math.isfinite(sum(present)):  # a NaN or an infinity anywhere makes the sum one
        return None
    low, high, low_open = RESULT_RANGES[column]
    try:  # the one range check (core.numbers), on the column's two ends
        finite_in(min(present), low, high, low_open=low_open)
        finite_in(max(present), low, high, low_open=low_open)
    except ValueError:
        return None  # the row-by-row path names the cell
    return numbers


def read_results_csv(path: str | Path, source: str) -> list[ResultRecord]:
    check_source_name(source)
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path} is not a UTF-8 text CSV") from None
    from core.store_check import gc_paused

    with gc_paused():  # 100k rows of records that all live on (issue 12 scale)
        return parse_results_csv(text, source, name=str(path))


def thesis_results() -> list[ResultRecord]:
    """Appendix A of the thesis as `results` records of source `thesis`, as published.

    Params are the published figures, rounded to 0.1M (docs/architecture.md, Figures and the thesis); `extra` marks the
    9 rows of Table 1 and records the measurement batch.
    """
    records = parse_results_csv(
        THESIS_CSV.read_text(encoding="utf-8"),
        THESIS_SOURCE,
        name=str(THESIS_CSV),
        extra={"batch": THESIS_BATCH, "device": "Jetson Nano", "params_rounding": 0.1},
    )
    for rec in records:
        rec["extra"]["table1"] = rec["arch_id"] in THESIS_TABLE1
    return records
