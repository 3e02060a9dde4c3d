"""Issue 12: a fuzz pass (hypothesis) over option values, architecture strings, CSVs and store files.

The property, for every generated input: the CLI ends with exit 0 (a valid input) or exit 2 (bad
input) and one line on stderr, never a traceback; a refused command leaves the store byte-identical.
The CLI runs in-process (`klmtui.cli.run`, the console-script entry point, so the same error
handling as a subprocess) to afford hundreds of examples; nothing here can start a job: training
points at a data folder that does not exist and benchmarks at a device that is not registered.
"""

import json
import math
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from klmtui.cli import run  # noqa: E402

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("KLMTUI_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KLMTUI_DATA", raising=False)
    monkeypatch.delenv("KLMTUI_STORE", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


def invoke(capsys, store: Path, *args) -> tuple[int, str]:
    capsys.readouterr()
    try:
        run(["--store", str(store), *map(str, args)])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    err = capsys.readouterr().err
    return code, err


def check(capsys, store: Path, *args, allowed=(2,)) -> int:
    """Run; the exit code is 0 or one of `allowed`, stderr one line without traceback; refused -> untouched."""
    before = store.read_bytes() if store.exists() else None
    code, err = invoke(capsys, store, *args)
    assert "Traceback" not in err, (args, err)
    assert code in (0, *allowed), (args, code, err)
    if code != 0:
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("klmtui: "), (args, err)
        assert (store.read_bytes() if store.exists() else None) == before, (args, "store changed")
    return code


numbers = st.one_of(
    st.integers(min_value=-10**30, max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["0", "-0", "nan", "inf", "-inf", "1e999", "9" * 5000, "", " ", "0x10", "1_000", "٣"]),
    st.text(max_size=12),
)
TRAIN_OPTIONS = ["--epochs", "--seeds", "--seed", "--train-subset", "--test-subset", "--batch-size", "--lr"]
BENCH_OPTIONS = ["--batch", "--runs", "--batches", "--warmup-runs", "--warmup-batches", "--min-batches",
                 "--max-batches", "--ci", "--threads"]


@FUZZ
@given(option=st.sampled_from(TRAIN_OPTIONS), value=numbers)
def test_fuzz_train_options(env, initialised, capsys, option, value):
    store = env / "runs.json"
    store.write_bytes(initialised)
    check(capsys, store, "train", "1-1-1@8", option, value, "--data", env / "no-such-data", "--detach")


@FUZZ
@given(option=st.sampled_from(BENCH_OPTIONS), value=numbers, protocol=st.sampled_from(["thesis", "adaptive"]))
def test_fuzz_bench_options(env, initialised, capsys, option, value, protocol):
    store = env / "runs.json"
    store.write_bytes(initialised)
    check(capsys, store, "bench", "1-1-1@8", "--device", "no-such-device", "--protocol", protocol, option, value)


arch_strings = st.one_of(
    st.text(max_size=40),
    st.builds(lambda k, l, m, c, g: f"{k}-{l}-{m}@{c}{g}",
              st.integers(-5, 10**6), st.integers(-5, 10**6), st.integers(-5, 10**6), st.integers(-5, 10**9),
              st.sampled_from(["", "/DARTS_V2", "/", "/nope", "/" + "x" * 300])),
    st.sampled_from(["6-6", "6-6-6", "@36", "6-6-6@", "1-1-1@8/", "-1-1-1@8", "1--1@8", "9" * 5000 + "-1-1@8"]),
)


@FUZZ
@given(arch=arch_strings)
def test_fuzz_architecture_strings(env, initialised, capsys, arch):
    store = env / "runs.json"
    store.write_bytes(initialised)
    check(capsys, store, "train", arch, "--data", env / "no-such-data", "--detach")
    check(capsys, store, "bench", arch, "--device", "no-such-device")


cells = st.one_of(numbers, st.integers(1, 64).map(str), st.floats(0.01, 99).map(lambda x: f"{x:.3f}"))


@FUZZ
@given(header=st.sampled_from(["K,L,M,channels,accuracy,params_m,latency_s,power_w", "arch,accuracy,params_m,"
                                                                                       "latency_s,power_w", "K,L",
                               ""]),
       rows=st.lists(st.lists(cells, min_size=0, max_size=10), max_size=5),
       junk=st.sampled_from(["", '"unterminated', "\x00", "\r\n\r\n", "x" * 5000, ",,,,,,,,,,"]))
def test_fuzz_results_csv(env, initialised, capsys, header, rows, junk):
    store = env / "runs.json"
    store.write_bytes(initialised)
    csv_file = env / "fuzz.csv"
    csv_file.write_text(header + "\n" + "\n".join(",".join(r) for r in rows) + "\n" + junk, encoding="utf-8")
    check(capsys, store, "import-results", csv_file, "--source", "fuzz")


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=False, allow_infinity=False),
              st.text(max_size=10)),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=20,
)
FIELDS = ["id", "arch_id", "status", "K", "L", "M", "channels", "accuracy", "latency_s", "power_w", "params_m",
          "epoch", "epochs", "seed", "config", "extra", "source", "batch", "pid", "device", "genotype"]


@FUZZ
@given(table=st.sampled_from(["runs", "benchmarks", "results", "architectures", "devices", "other"]),
       record=st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=10),
       raw=st.sampled_from(["", "NaN", "1e999", "[" * 3000, '{"a":', "9" * 5000]))
def test_fuzz_store_files(env, initialised, capsys, table, record, raw):
    store = env / "runs.json"
    data = json.loads(initialised)
    data.setdefault(table, {})["999"] = record
    text = json.dumps(data)
    if raw:  # splice a hostile table in: {"1": {"id": "h", "x": RAW}} (RAW may be NaN, 1e999, deep, torn)
        text = text[:-1] + ', "hostile": {"1": {"id": "h", "x": ' + raw + "}}}"
    store.write_text(text)
    for args in (["status", "--json"], ["pareto", "--source", "thesis", "--json"]):
        check(capsys, store, *args)


def test_fuzz_sanity_the_property_can_fail(env, initialised, capsys):
    """The check is not vacuous: a good command passes with 0, a hostile store is refused with 2."""
    store = env / "runs.json"
    store.write_bytes(initialised)
    assert check(capsys, store, "status", "--json") == 0
    store.write_text(initialised.decode().replace('"accuracy": 96.', '"accuracy": 196.', 1))
    assert check(capsys, store, "status", "--json") == 2
    assert math.isfinite(1.0)
