"""Issue 12 item 10: `parse_results_csv`'s fast path returns exactly what the row-by-row path returns.

Two checks. (1) A corpus of CSVs (every bad input the suite feeds `import-results` /
`parse_results_csv`, plus the corner cases of csv.DictReader the row-by-row path inherits) against
outcomes recorded from the parser as it was before the fast path (commit 1320fea, fixture
tests/fixtures/results_csv_outcomes.json: the InputError message, or a digest of the records'
repr). (2) A hypothesis pass over generated CSV text: the public parser (fast path first) against
the row-by-row path alone (`core.reference._checked_records`, the old loop, kept for the messages),
same records or the same message. Re-record (a case added, or a message meant to change):
`.venv/bin/python tests/test_results_csv.py [OLD.py]` (OLD.py: the parser to record, e.g.
`git show 1320fea:core/reference.py > OLD.py`; default: the current one). The fuzz pass takes
KLMTUI_FUZZ_EXAMPLES examples (default 200, ~3 s; 4000 passed, 2026-12-01 16:12 UTC, 848 of them taking the fast path).
That each check can fail: tests/mutants_results_csv.py (18 deliberate bugs in the fast path, all caught).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
from pathlib import Path

import pytest

if __name__ == "__main__":  # re-recording: run from anywhere
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import HealthCheck, given, settings  # noqa: E402  (a test dependency: pyproject's `test` extra)
from hypothesis import strategies as st  # noqa: E402

from core.errors import InputError  # noqa: E402
from core.reference import (  # noqa: E402
    CSV_COLUMNS,
    RESULT_COLUMNS,
    THESIS_CSV,
    _checked_records,
    _csv_header,
    _fast_records,
    parse_results_csv,
    read_results_csv,
    thesis_results,
)

OUTCOMES = Path(__file__).with_name("fixtures") / "results_csv_outcomes.json"
HEADER = "K,L,M,channels,accuracy,params_m,latency_s,power_w"
ROW = "6,6,6,36,97,2.7,1.8,4.7"
EXTRA = {"batch": 64, "device": "Jetson Nano"}


def _thesis_reexport() -> str:
    from core.report import to_csv

    return to_csv(thesis_results())


@functools.lru_cache(maxsize=1)
def corpus() -> dict[str, tuple[str, dict]]:
    """name -> (CSV text, keyword arguments)."""
    h, r = HEADER, ROW
    arch_h = "arch,channels,accuracy,params_m,latency_s,power_w"
    cases: dict[str, str | tuple[str, dict]] = {
        # tests/test_report.py::test_bad_csvs_are_refused_whole
        "empty": "",
        "whitespace only": " \n\t\n",
        "missing power_w": "K,L,M,channels,accuracy,params_m,latency_s\n6,6,6,36,97,2.7,1.8\n",
        "missing several": "K,accuracy\n6,97\n",
        "not a number": f"{h}\n{r}\n6,6,6,24,abc,1.2,1.1,4.4\n",
        "L not whole": f"{h}\n6,x,6,36,97,2.7,1.8,4.7\n",
        "K zero": f"{h}\n0,6,6,36,97,2.7,1.8,4.7\n",
        "malformed arch": f"{arch_h}\n6-6@36,36,97,2.7,1.8,4.7\n",
        "duplicate": f"{h}\n{r}\n{r}\n",
        "header only": f"{h}\n",
        "inf": f"{h}\n6,6,6,36,97,2.7,1.8,inf\n",
        # tests/test_failures.py::test_import_values_validated, test_csv_fields_are_bounded
        "accuracy 101": f"{h}\n6,6,6,36,101,2.7,1.8,4.7\n",
        "accuracy -0.5": f"{h}\n6,6,6,36,-0.5,2.7,1.8,4.7\n",
        "latency -1": f"{h}\n6,6,6,36,97,2.7,-1,4.7\n",
        "power 0": f"{h}\n6,6,6,36,97,2.7,1.8,0\n",
        "params 0": f"{h}\n6,6,6,36,97,0,1.8,4.7\n",
        "params 0 after a good row": f"{h}\n{r}\n6,6,6,24,96,0,1.1,4.4\n6,6,6,12,95,0.3,1.1,4.4\n",
        "power 0 between good rows": f"{h}\n{r}\n6,6,6,24,96,1.2,1.1,0\n6,6,6,12,95,0.3,1.1,4.4\n",
        "nan": f"{h}\n6,6,6,36,nan,2.7,1.8,4.7\n",
        "1e999": f"{h}\n6,6,6,36,97,2.7,1e999,4.7\n",
        "40 digits": f"{h}\n6,6,{'9' * 40},36,97,2.7,1.8,4.7\n",
        "K 70": f"{h}\n70,6,6,36,97,2.7,1.8,4.7\n",
        "channels 513": f"{h}\n6,6,6,513,97,2.7,1.8,4.7\n",
        "channels 0": f"{h}\n6,6,6,0,97,2.7,1.8,4.7\n",
        "channels empty": f"{h}\n6,6,6,,97,2.7,1.8,4.7\n",
        "note 5000": f"{h},note\n{r},{'x' * 5000}\n",
        "note 200000": f"{h},note\n{r},{'x' * 200_000}\n",
        "long header cell": f"{h},{'n' * 5000}\n{r},1\n",
        # DictReader corners the row-by-row path inherits (line numbers, short and long rows)
        "blank lines between": f"{h}\n{r}\n\n\n6,6,6,24,abc,1.2,1.1,4.4\n",
        "blank line then duplicate": f"{h}\n{r}\n\n{r}\n",
        "whitespace line": f"{h}\n{r}\n   \n6,6,6,24,96,1.2,1.1,4.4\n",
        "commas-only line": f"{h}\n{r}\n,,,,,,,\n6,6,6,24,96,1.2,1.1,4.4\n",
        "short row": f"{h}\n6,6,6,36,97,2.7\n",
        "short row, error": f"{h}\n6,6,6,36\n",
        "long row": f"{h}\n{r},extra\n",
        "duplicate header column": f"{h},accuracy\n{r},95\n",
        "duplicate extra column, last empty": f"{h},notes,notes\n{r},a,\n",
        "duplicate extra column": f"{h},note,note\n{r},a,b\n{r.replace('36', '24')},c\n",
        "empty header name": f"{h},\n{r},x\n",
        "trailing comma rows": f"{h},\n{r},\n6,6,6,24,96,1.2,1.1,4.4,\n",
        "unterminated quote": f'{h}\n{r}\n"unterminated',
        "NUL": f"{h}\n{r}\n\x00\n",
        "NUL in cell": f"{h}\n6,6,6,36,97\x00,2.7,1.8,4.7\n",
        "CRLF": f"{h}\r\n{r}\r\n6,6,6,24,96,1.2,1.1,4.4\r\n",
        "CR only": f"{h}\r{r}\r",
        "CRLF, extra column last": f"{h},device\r\n{r},xavier\r\n6,6,6,24,96,1,1,1, nx \r\n",
        "CR only, extra column last": f"{h},device\r{r},xavier\r6,6,6,24,96,1,1,1,nx",
        "no final newline": f"{h}\n{r}",
        "leading blank line": f"\n{h}\n{r}\n",
        "quoted cells": f'{h}\n"6","6","6","36","97","2.7","1.8","4.7"\n',
        "spaces around cells": " K , L ,M,channels,accuracy,params_m,latency_s,power_w \n 6, 6 ,6,36 , 97,2.7 ,1.8,4.7\n",
        "tabs around cells": f"{h}\n6\t,6,6,36,\t97,2.7,1.8,4.7\n",
        "separators around cells": f"{h}\n6\x1c,6,6,36,\x1d97,2.7\x1e,1.8,\x1f4.7\x85\n",
        "unicode digits": f"{h}\n\u0666,6,6,36,\u0669\u0667,2.7,1.8,4.7\n",
        "underscores": f"{h}\n6,6,6,36,9_7,2.7,1.8,4.7\n6,6,6,2_4,96,1.2,1.1,4.4\n",
        "signs": f"{h}\n6,6,6,36,+97,2.7,1.8,4.7\n+6,6,6,24,96,1.2,1.1,4.4\n",
        "minus zero": f"{h}\n6,6,6,36,-0,2.7,1.8,4.7\n",
        "minus zero params": f"{h}\n6,6,6,36,97,-0.0,1.8,4.7\n",
        "exponents": f"{h}\n6,6,6,36,9.7e1,2.7E0,18e-1,.47e1\n",
        "Infinity word": f"{h}\n6,6,6,36,97,2.7,Infinity,4.7\n",
        "-inf": f"{h}\n6,6,6,36,97,2.7,1.8,-inf\n",
        "upper bounds": f"{h}\n6,6,6,36,100,1e6,1e6,1e5\n6,6,6,24,0,1000000,1000000.0,100000.0\n",
        "huge power": f"{h}\n6,6,6,36,97,2.7,1.8,1e5\n6,6,6,24,97,2.7,1.8,100000.1\n",
        "huge latency": f"{h}\n6,6,6,36,97,2.7,1e6,4.7\n6,6,6,24,97,2.7,1000000.5,4.7\n",
        "tiny positive": f"{h}\n6,6,6,36,0,5e-324,1e-300,1e-9\n",
        "accuracy bounds": f"{h}\n6,6,6,36,0,2.7,1.8,4.7\n6,6,6,24,100,2.7,1.8,4.7\n6,6,6,12,100.0000001,1,1,1\n",
        "8 digits": f"{h}\n6,6,6,00000036,97,2.7,1.8,4.7\n",
        "7 digits": f"{h}\n6,6,6,0000036,97,2.7,1.8,4.7\n0000006,6,6,24,96,1,1,1\n",
        "K 64 channels 512": f"{h}\n64,64,64,512,97,2.7,1.8,4.7\n1,1,1,1,10,0.1,0.1,0.1\n",
        "missing values": f"{h}\n{r}\n6,6,6,24,,,,\n6,6,6,12, ,1.1, ,\n",
        "empty accuracy column": f"{h}\n6,6,6,36,,2.7,1.8,4.7\n6,6,6,24,,1.2,1.1,4.4\n",
        "all errors": f"{h}\n6,6,6,36,x,2.7,1.8,4.7\n0,1,1,8,1,1,1,1\n1,1,1,8,1,1,1,nan\n1,1,1,8,1,1,1,-1\n1,1,1,8,1,1,1,q\n",
        "error after duplicates": f"{h}\n{r}\n{r}\n{r}\n6,6,6,24,bad,1,1,1\n",
        "extra columns": f"{h},device,notes\n{r},xavier,\n6,6,6,24,96,1,1,1,, ours \n",
        "extra columns first": f"notes,{h}\nfirst,{r}\n",
        "columns reordered": "power_w,latency_s,params_m,accuracy,channels,M,L,K\n4.7,1.8,2.7,97,36,6,6,6\n",
        # the `arch` column forms
        "arch with @C": "arch,accuracy,params_m,latency_s,power_w\n6-6-6@36,97,2.7,1.8,4.7\n4-10-4@12,96.1,0.3,0.53,4.0\n",
        "arch without C": "arch,accuracy,params_m,latency_s,power_w\n6-6-6,97,2.7,1.8,4.7\n",
        "arch and channels": f"{arch_h}\n6-6-6,36,97,2.7,1.8,4.7\n6-6-6@24,24,96,1,1,1\n",
        "arch disagrees": f"{arch_h}\n6-6-6@24,36,97,2.7,1.8,4.7\n",
        "arch channels empty": f"{arch_h}\n6-6-6@24,,97,2.7,1.8,4.7\n",
        "arch channels bad": f"{arch_h}\n6-6-6@24,x,97,2.7,1.8,4.7\n",
        "arch genotype": "arch,accuracy,params_m,latency_s,power_w\n6-6-6@36/DARTS_V2,97,2.7,1.8,4.7\n6-6-6@36,97,2.7,1.8,4.7\n",
        "arch empty genotype": "arch,accuracy,params_m,latency_s,power_w\n6-6-6@36/,97,2.7,1.8,4.7\n",
        "arch spaces": "arch,accuracy,params_m,latency_s,power_w\n  6-6-6@36 ,97,2.7,1.8,4.7\n",
        "arch empty": "arch,accuracy,params_m,latency_s,power_w\n,97,2.7,1.8,4.7\n",
        "arch huge": "arch,accuracy,params_m,latency_s,power_w\n%s-1-1@8,97,2.7,1.8,4.7\n" % ("9" * 5000),
        "arch 65": "arch,accuracy,params_m,latency_s,power_w\n65-1-1@8,97,2.7,1.8,4.7\n",
        "arch duplicate": "arch,accuracy,params_m,latency_s,power_w\n6-6-6@36,97,2.7,1.8,4.7\n6-6-6@36,96,2.7,1.8,4.7\n",
        "arch and K,L,M": f"arch,{h}\n9-9-9@8,{r}\n5-5-5@8,,6,6,36,97,2.7,1.8,4.7\n",
        "arch and K only": "arch,K,accuracy,params_m,latency_s,power_w\n6-6-6@36,9,97,2.7,1.8,4.7\n",
        "no channels column, K-L-M": "K,L,M,accuracy,params_m,latency_s,power_w\n6,6,6,97,2.7,1.8,4.7\n",
        "genotype column": f"{h},genotype\n{r},DARTS_V2\n{r},\n{r}, SNAS_mild \n",
        "genotype column, distinct": f"{h},genotype\n{r},DARTS_V2\n{r},\n6,6,6,24,96,1,1,1, PC_DARTS \n",
        "genotype column duplicate": f"{h},genotype\n{r},DARTS_V2\n{r},DARTS_V2\n",
        "arch and genotype column": "arch,genotype,accuracy,params_m,latency_s,power_w\n6-6-6@36,DARTS_V2,97,2.7,1.8,4.7\n"
                                    "6-6-6@36/PC_DARTS,DARTS_V2,97,2.7,1.8,4.7\n",
        # keyword arguments: `extra` merged under the row's own extras
        "extra kwarg": (f"{h},device\n{r},xavier\n6,6,6,24,96,1,1,1,\n", {"extra": EXTRA, "name": "x.csv"}),
        "extra kwarg overridden": (f"{h},batch\n{r},8\n", {"extra": EXTRA}),
        "named": (f"{h}\n6,6,6,24,abc,1.2,1.1,4.4\n", {"name": "/tmp/some file.csv"}),
        # the shipped thesis table, and its re-export (tests/test_report.py)
        "thesis appendix A": (THESIS_CSV.read_text(encoding="utf-8"), {"extra": EXTRA}),
        "thesis re-export": _thesis_reexport(),
    }
    return {k: v if isinstance(v, tuple) else (v, {}) for k, v in cases.items()}


def outcome(parse, text: str, kwargs: dict) -> list:
    """["records", sha256 of their repr, count] or ["error", the InputError message]."""
    try:
        records = parse(text, "src", **kwargs)
    except InputError as exc:
        return ["error", str(exc)]
    return ["records", hashlib.sha256(repr(records).encode()).hexdigest(), len(records)]


def _checked_only(text: str, source: str, *, name: str = "CSV", extra: dict | None = None):
    """The parser without its fast path: only the row-by-row path."""
    return _checked_records(text, _csv_header(text, name), source, name, extra)


@pytest.mark.parametrize("case", sorted(corpus()))
def test_same_outcome_as_before_the_fast_path(case):
    text, kwargs = corpus()[case]
    recorded = json.loads(OUTCOMES.read_text(encoding="utf-8"))
    assert outcome(parse_results_csv, text, kwargs) == recorded[case]
    assert outcome(_checked_only, text, kwargs) == recorded[case]


FAST_CASES = ("thesis appendix A", "thesis re-export", "upper bounds", "K 64 channels 512", "CRLF, extra column last",
              "genotype column, distinct", "extra kwarg", "extra columns", "missing values", "CRLF", "quoted cells", "spaces around cells", "unicode digits", "7 digits", "arch with @C", "arch genotype",
              "arch and channels", "trailing comma rows", "minus zero", "empty accuracy column")


@pytest.mark.parametrize("case", FAST_CASES)
def test_common_files_take_the_fast_path(case):
    """The fast path really runs (it is not a fallback that always declines), and each record has its own `extra`."""
    text, kwargs = corpus()[case]
    records = _fast_records(text, _csv_header(text, "CSV"), "src", kwargs.get("extra"))
    assert records is not None and repr(records) == repr(_checked_only(text, "src", **kwargs))
    assert len({id(r["extra"]) for r in records}) == len(records)
    assert all(r["extra"] is not kwargs.get("extra") for r in records)


def test_a_generated_study_takes_the_fast_path(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from store_scale import write_csv

    csv_file = tmp_path / "study.csv"
    write_csv(csv_file, 3000, seed=3)
    text = csv_file.read_text(encoding="utf-8")
    fast = _fast_records(text, _csv_header(text, "CSV"), "gen", None)
    assert fast is not None and len(fast) == 3000
    assert repr(fast) == repr(_checked_only(text, "gen")) == repr(read_results_csv(csv_file, "gen"))
    lines = text.splitlines()
    lines[1500] = lines[1500].rsplit(",", 1)[0] + ",nan"  # one bad cell: the whole file is refused, line named
    with pytest.raises(InputError) as info:
        parse_results_csv("\n".join(lines), "gen")
    assert str(info.value) == "CSV: 1 bad row(s), nothing imported: line 1501: power_w 'nan' is not a finite number"


# --------------------------------------------------------------------------- the fuzz pass

COLUMN_SETS = [
    list(CSV_COLUMNS),
    ["arch", *RESULT_COLUMNS],
    ["arch", "channels", *RESULT_COLUMNS],
    [*CSV_COLUMNS, "genotype"],
    ["arch", "genotype", *RESULT_COLUMNS],
    [*CSV_COLUMNS, "notes", "device"],
    [*CSV_COLUMNS, "arch"],
    [*CSV_COLUMNS, "accuracy"],
    [*CSV_COLUMNS, ""],
    [*CSV_COLUMNS, "notes", "notes"],
    ["arch", "K", *RESULT_COLUMNS],
    [*CSV_COLUMNS, "batch"],
    ["K", "L", "channels", *RESULT_COLUMNS],
]
TRICKY = ["", " ", "0", "00000006", "0000006", " 6", "6 ", "\u0666", "+6", "-6", "6.0", "1_2", "x", "65", "513", "512",
          "64", "nan", "NaN", "inf", "-inf", "Infinity", "1e999", "-0", "-0.0", "0.0", "100", "100.0001", "1e5",
          "100000.1", "1e6", "5e-324", "\t97\t", "\u00a097", "97\u2003", "9_7", "0x10", "x" * 4097, "y" * 4096,
          "6-6-6@36", "6-6-6", "6-6-6@24", "6-6-6@36/DARTS_V2", "6-6-6@36/", "6-6@36", "DARTS_V2", "SNAS_mild",
          '"a,b"', '"a\nb"', '"6"', '"', '"x""y"', "\x00", "\r", "\u2028", "\x0c", "\x1c", "\x1c97", "97\x1f", "\x85"]


@functools.lru_cache(maxsize=None)  # a strategy built once is validated once (hypothesis' cost here)
def _cell():
    return st.one_of(st.integers(1, 70).map(str), st.integers(8, 40).map(str),
                     st.floats(0.01, 120).map(lambda x: f"{x:.3f}"), st.sampled_from(TRICKY),
                     st.text(st.characters(codec="utf-8"), max_size=6))


@settings(max_examples=int(os.environ.get("KLMTUI_FUZZ_EXAMPLES", "200")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(columns=st.sampled_from(COLUMN_SETS).flatmap(st.permutations), data=st.data(),
       newline=st.sampled_from(["\n", "\r\n", "\r"]), tail=st.sampled_from(["", "\n", "\n", "\n\n", " \n", ",,,"]),
       extra=st.sampled_from([None, {}, EXTRA, {"batch": "1", "notes": "n"}]))
def test_fuzz_fast_path_agrees_with_the_row_by_row_path(columns, data, newline, tail, extra):
    """Plain full rows (the fast path's case), then a few cells swapped for tricky ones, a few rows of anything."""
    rows = [list(data.draw(_good_row(tuple(columns)))) for _ in range(data.draw(st.integers(1, 6)))]
    for _ in range(data.draw(st.sampled_from([0, 0, 0, 1, 2]))):
        row = data.draw(st.sampled_from(rows))
        row[data.draw(st.integers(0, len(row) - 1))] = data.draw(_cell())
    if data.draw(st.integers(0, 3)) == 0:
        rows += data.draw(_any_rows())
    if data.draw(st.integers(0, 3)) == 0:
        rows.append(list(data.draw(st.sampled_from(rows))))  # a repeated architecture
    text = newline.join([",".join(columns)] + [",".join(r) for r in rows]) + tail
    assert outcome(parse_results_csv, text, {"extra": extra}) == outcome(_checked_only, text, {"extra": extra})


@functools.lru_cache(maxsize=None)
def _any_rows():
    return st.lists(st.lists(_cell(), max_size=11), max_size=2)


@functools.lru_cache(maxsize=None)
def _good_row(columns: tuple[str, ...]):
    plain = {"K": st.integers(1, 64), "L": st.integers(1, 64), "M": st.integers(1, 64), "channels": st.integers(1, 512),
             "accuracy": st.floats(0, 100), "params_m": st.floats(0.001, 50), "latency_s": st.floats(1e-4, 10),
             "power_w": st.floats(0.5, 20), "genotype": st.sampled_from(["", "DARTS_V2", "SNAS_mild"]),
             "arch": st.tuples(st.integers(1, 64), st.integers(1, 64), st.integers(1, 64), st.integers(1, 512))
             .map(lambda t: "%d-%d-%d@%d" % t)}
    return st.tuples(*(plain.get(c, st.sampled_from(["", "v", " w "])).map(str) for c in columns))


def _module_from(path: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location("recorded_reference", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":  # [OLD.py]: record with another parser, e.g. `git show 1320fea:core/reference.py > OLD.py`
    parse = _module_from(sys.argv[1]).parse_results_csv if len(sys.argv) > 1 else parse_results_csv
    OUTCOMES.write_text(json.dumps({k: outcome(parse, t, kw) for k, (t, kw) in sorted(corpus().items())},
                                   indent=1, ensure_ascii=True) + "\n", encoding="utf-8")
    print(f"recorded {OUTCOMES}")
