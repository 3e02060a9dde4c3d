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
from pathlib import Path
from typing import cast

from core.arch import Arch, ArchError, parse_arch
from core.errors import InputError
from core.limits import MAX_CSV_FIELD
from core.numbers import NotFinite, OutOfRange, finite_in, interval
from core.records import ArchFields, ResultRecord
from core.schema import MEASURED_SOURCE, THESIS_SOURCE

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
    """A shipped source (`thesis`), or one whose stored rows are marked `"reference": true`."""
    return source in REFERENCE_SOURCES or any(r.get("reference") for r in store.find("results", source=source))


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
    """Validate a whole results CSV and return its `results` records; InputError names bad lines."""
    if not text.strip():
        raise InputError(f"{name} is empty: expected a header {','.join(CSV_COLUMNS)} and rows")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in (reader.fieldnames or [])]
    except csv.Error as exc:
        raise InputError(f"{name}: line 1: {exc}; nothing imported") from None
    if any(len(h) > MAX_CSV_FIELD for h in header):
        raise InputError(f"{name}: line 1: a header cell has over {MAX_CSV_FIELD} characters")
    reader.fieldnames = header
    has_klm = all(c in header for c in ("K", "L", "M"))
    needed = [c for c in CSV_COLUMNS if c not in header and not (c in ("K", "L", "M") and "arch" in header)]
    if "channels" not in header and "arch" in header and not has_klm:
        needed = [c for c in needed if c != "channels"]  # K-L-M@C carries it
    if needed:
        raise InputError(f"{name}: missing column(s) {', '.join(needed)} (needs {','.join(CSV_COLUMNS)})")
    known = set(CSV_COLUMNS) | {"arch", "genotype"}
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
        row_extra = {k: v for k, v in row.items() if k not in known and k and (v or "").strip()}
        records.append(result_record(source, arch, values, {**(extra or {}), **row_extra}))
    if errors:
        shown = "; ".join(errors[:_MAX_ERRORS_SHOWN])
        more = f" (and {len(errors) - _MAX_ERRORS_SHOWN} more)" if len(errors) > _MAX_ERRORS_SHOWN else ""
        raise InputError(f"{name}: {len(errors)} bad row(s), nothing imported: {shown}{more}")
    if not records:
        raise InputError(f"{name} has a header but no rows")
    return records


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
