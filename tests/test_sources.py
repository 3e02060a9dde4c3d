"""Imported sources in their own files beside the store (core.sources; issue 12, scale).

What a reader sees does not depend on the layout: a store whose imported rows are in the `results`
table (how klmtui stored them before) and one with the same rows in a source file give the same
`status --json`, `pareto --json`, `export` and rows. The file is committed atomically with the
store (kill -9 at any moment), a small write leaves it alone, and a bad or edited file is one line,
exit 2, untouched.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from core import sources as files
from core.pareto import DEFAULT_OBJECTIVES, Objective, pareto_front
from core.reference import parse_results_csv
from core.report import with_derived
from core.store import Store
from core.study import (architecture_of, architecture_record, arch_of, file_source_front, import_results,
                        source_names, source_rows, study_status)
from tests.fixtures.cli import assert_one_line_error
from tests.fixtures.disk import fill

HEADER = "K,L,M,channels,accuracy,params_m,latency_s,power_w"


def csv_text(rows: int, seed: int = 0, *, missing: float = 0.1, ties: bool = True, batch: bool = False,
             span: int = 9) -> str:
    """A results CSV of distinct architectures (K, L, M up to `span`), some values missing, some
    points identical."""
    rnd = random.Random(seed)
    seen: set = set()
    lines = [HEADER + (",batch" if batch else "")]
    while len(seen) < rows:
        key = (rnd.randint(1, span), rnd.randint(1, span), rnd.randint(1, span), rnd.choice((8, 16, 24, 36)))
        if key in seen:
            continue
        seen.add(key)
        values = [f"{rnd.uniform(80, 98):.2f}", f"{rnd.uniform(0.1, 3):.3f}", f"{rnd.uniform(0.01, 2):.4f}",
                  f"{rnd.uniform(2, 10):.2f}"]
        if ties and rnd.random() < 0.1:
            values = ["90.00", "1.000", "0.5000", "5.00"]  # identical points: all on the front or none
        values = ["" if rnd.random() < missing else v for v in values]
        lines.append(",".join(map(str, key)) + "," + ",".join(values) + (f",{rnd.choice((1, 32))}" if batch else ""))
    return "\n".join(lines) + "\n"


@pytest.fixture
def store(tmp_path, initialised) -> Store:
    (tmp_path / "runs.json").write_bytes(initialised)
    return Store(tmp_path / "runs.json")


def legacy_store(path, initialised, records) -> Store:
    """The same rows as klmtui stored them before source files: `results` records plus an
    `architectures` record per architecture the store did not know."""
    path.write_bytes(initialised)
    legacy = Store(path)
    with legacy.transaction() as tx:
        for rec in records:
            if not tx.has("architectures", rec["arch_id"]):
                tx.insert("architectures", architecture_record(arch_of(rec), in_thesis=None, sampled=False))
            tx.insert("results", rec)
    return legacy


def test_the_layout_changes_nothing_a_reader_sees(store, tmp_path, initialised):
    records = parse_results_csv(csv_text(300, batch=True), "mine")
    known = {a["id"] for a in store.all("architectures")}
    counts = import_results(store, records, csv="mine.csv")
    new = sum(r["arch_id"] not in known for r in records)
    assert counts == {"source": "mine", "added": 300, "updated": 0, "removed": 0, "architectures_added": new}
    assert 0 < new < 300  # some are the study's own (e.g. 6-6-6@36)
    only_here = next(r["arch_id"] for r in records if r["arch_id"] not in known)
    assert store.get("architectures", only_here) is None and architecture_of(store, only_here)["sampled"] is False
    legacy = legacy_store(tmp_path / "legacy.json", initialised, records)
    assert source_names(store) == source_names(legacy) == ["mine", "thesis", "measured"]
    assert source_rows(store, "mine") == source_rows(legacy, "mine")
    assert study_status(store) == study_status(legacy)  # the energy of rows with a batch included
    for objectives in (DEFAULT_OBJECTIVES, (Objective("latency_s", "min"), Objective("accuracy", "max")),
                       (Objective("power_w", "min"),)):
        expected = [with_derived(r) for r in pareto_front([with_derived(r) for r in source_rows(legacy, "mine")],
                                                          objectives).front]
        expected = [{k: v for k, v in r.items() if k != "on_front"} for r in expected]
        assert file_source_front(store, "mine", objectives) == expected
    # runs.json holds a manifest, the rows are in the file it names, beside the store
    [manifest] = store.all("sources")
    path = files.folder_of(store) / manifest["file"]
    assert path.parent == tmp_path / "runs.sources" and manifest["rows"] == 300 and manifest["csv"] == "mine.csv"
    assert manifest["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not store.find("results", source="mine") and b"mine:" not in store.path.read_bytes()


def test_the_cli_gives_the_same_answers_on_both_layouts(cli, tmp_path, initialised):
    csv_file = tmp_path / "mine.csv"
    csv_file.write_text(csv_text(120, seed=3))
    cli.store.write_bytes(initialised)
    r = cli("import-results", csv_file, "--source", "mine", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)[0]["added"] == 120
    new = {args: cli(*args).stdout for args in (("status", "--json"), ("pareto", "--source", "mine", "--json"),
                                                ("pareto", "--source", "mine", "--objective", "latency_s:min",
                                                 "--objective", "accuracy:max", "--json"),
                                                ("export", "--format", "csv", "--source", "mine"))}
    legacy_store(tmp_path / "legacy.json", initialised, parse_results_csv(csv_file.read_text(), "mine"))
    cli.store = tmp_path / "legacy.json"
    for args, text in new.items():
        assert cli(*args).stdout == text, args


def test_imports_merge_replace_and_keep_only_two_files(store):
    import_results(store, parse_results_csv(f"{HEADER}\n1,1,1,8,90,0.1,0.2,3\n2,2,2,8,91,0.2,0.3,4\n", "mine"))
    first = store.get("sources", "mine")["file"]
    counts = import_results(store, parse_results_csv(f"{HEADER}\n2,2,2,8,92,0.2,0.3,4\n3,3,3,8,93,0.3,0.4,5\n", "mine"))
    assert (counts["added"], counts["updated"], counts["removed"]) == (1, 1, 0)
    assert {r["arch_id"]: r["accuracy"] for r in source_rows(store, "mine")} == {
        "1-1-1@8": 90.0, "2-2-2@8": 92.0, "3-3-3@8": 93.0}
    second = store.get("sources", "mine")
    assert second["previous"] == first and (files.folder_of(store) / first).exists()  # a reader may still hold it
    counts = import_results(store, parse_results_csv(f"{HEADER}\n3,3,3,8,94,0.3,0.4,5\n", "mine"), replace=True)
    assert (counts["added"], counts["updated"], counts["removed"]) == (0, 1, 2)
    assert [r["arch_id"] for r in source_rows(store, "mine")] == ["3-3-3@8"]
    # the file two versions old goes at the next write under the lock
    import_results(store, parse_results_csv(f"{HEADER}\n3,3,3,8,95,0.3,0.4,5\n", "mine"))
    now = store.get("sources", "mine")
    assert sorted(p.name for p in files.folder_of(store).iterdir()) == sorted([now["file"], now["previous"]])


def test_a_source_stored_the_old_way_moves_to_its_file_on_the_next_import(store, tmp_path, initialised):
    old = parse_results_csv(f"{HEADER}\n1,1,1,8,90,0.1,0.2,3\n2,2,2,8,91,0.2,0.3,4\n", "mine")
    legacy = legacy_store(tmp_path / "legacy.json", initialised, old)
    assert [r["accuracy"] for r in source_rows(legacy, "mine")] == [90.0, 91.0]
    counts = import_results(legacy, parse_results_csv(f"{HEADER}\n2,2,2,8,99,0.2,0.3,4\n", "mine"))
    assert (counts["added"], counts["updated"]) == (0, 1)
    assert not legacy.find("results", source="mine") and legacy.get("sources", "mine")["rows"] == 2
    assert [r["accuracy"] for r in source_rows(legacy, "mine")] == [90.0, 99.0]


def test_a_source_marked_reference_is_read_only(cli, store, tmp_path):
    import_results(store, parse_results_csv(f"{HEADER}\n1,1,1,8,90,0.1,0.2,3\n", "paper"))
    store.update("sources", "paper", reference=True)
    before = {p: p.read_bytes() for p in [store.path, *files.folder_of(store).iterdir()]}
    csv_file = tmp_path / "x.csv"
    csv_file.write_text(f"{HEADER}\n1,1,1,8,10,0.1,0.2,3\n")
    line = assert_one_line_error(cli("import-results", csv_file, "--source", "paper"), 2)
    assert "reference source and read-only" in line
    assert {p: p.read_bytes() for p in before} == before


def test_a_small_write_leaves_the_source_file_alone(cli, store, tmp_path):
    import_results(store, parse_results_csv(csv_text(200), "mine"))
    path = files.folder_of(store) / store.get("sources", "mine")["file"]
    stat = path.stat()
    r = cli("device", "add", "nano", "--host", "192.0.2.9", "--user", "u")
    assert r.returncode == 0, r.stderr
    assert path.stat().st_ino == stat.st_ino and path.stat().st_mtime_ns == stat.st_mtime_ns
    assert store.path.stat().st_size < 64_000  # the 200 rows are not in runs.json
    r = cli("device", "list", "--json")
    assert [d["name"] for d in json.loads(r.stdout)] == ["nano"]


EDITS = {
    "accuracy 101": (lambda doc: doc["columns"]["accuracy"].__setitem__(0, 101.0), "accuracy"),
    "a column short": (lambda doc: doc["columns"]["latency_s"].pop(), "column latency_s"),
    "arch_id not K-L-M@C": (lambda doc: doc["columns"]["arch_id"].__setitem__(0, "9-9-9@8"), "arch_id"),
    "params not whole": (lambda doc: doc["columns"]["params"].__setitem__(0, 1.5), "params"),
    "not a source file": (lambda doc: doc.__setitem__("format", "zip"), "not a klmtui source file"),
}


@pytest.mark.parametrize("case", sorted(EDITS))
def test_a_bad_source_file_is_one_line_exit_2_untouched(cli, store, case):
    import_results(store, parse_results_csv(f"{HEADER}\n1,1,1,8,90,0.1,0.2,3\n2,2,2,8,91,0.2,0.3,4\n", "mine"))
    path = files.folder_of(store) / store.get("sources", "mine")["file"]
    doc = json.loads(path.read_text())
    edit, needle = EDITS[case]
    edit(doc)
    path.write_text(json.dumps(doc))
    before = {p: p.read_bytes() for p in (store.path, path)}
    for args in (("status", "--json"), ("pareto", "--source", "mine", "--json"), ("export", "--format", "csv",
                                                                                    "--source", "mine")):
        line = assert_one_line_error(cli(*args), 2)
        assert str(path) in line and needle in line, (args, line)
    assert {p: p.read_bytes() for p in before} == before


def test_an_edited_but_valid_source_file_is_checked_and_read(cli, store):
    import_results(store, parse_results_csv(f"{HEADER}\n1,1,1,8,90,0.1,0.2,3\n2,2,2,8,91,0.2,0.3,4\n", "mine"))
    path = files.folder_of(store) / store.get("sources", "mine")["file"]
    doc = json.loads(path.read_text())
    doc["columns"]["accuracy"][1] = 99.5  # by hand, in a text editor
    path.write_text(json.dumps(doc, indent=1))
    r = cli("pareto", "--source", "mine", "--objective", "accuracy:max", "--json")
    assert r.returncode == 0, r.stderr
    assert [(row["arch_id"], row["accuracy"]) for row in json.loads(r.stdout)] == [("2-2-2@8", 99.5)]


def test_a_missing_source_file_names_it(cli, store):
    import_results(store, parse_results_csv(f"{HEADER}\n1,1,1,8,90,0.1,0.2,3\n", "mine"))
    path = files.folder_of(store) / store.get("sources", "mine")["file"]
    path.unlink()
    line = assert_one_line_error(cli("status", "--json"), 2)
    assert f"the file of source 'mine' is missing ({path})" in line and "import-results" in line


def _consistent(store_path) -> dict:
    """Every manifest names a complete file with its digest; returns source -> rows."""
    store = Store(store_path)
    out = {}
    for manifest in store.all("sources"):
        data = (files.folder_of(store) / manifest["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == manifest["sha256"]
        out[manifest["id"]] = len(source_rows(store, manifest["id"]))
    return out


def test_kill_9_during_an_import_leaves_a_consistent_store(cli, store, tmp_path):
    big = tmp_path / "big.csv"
    big.write_text(csv_text(20_000, seed=5, span=40))
    rows = len(big.read_text().splitlines()) - 1
    argv = [sys.executable, "-m", "klmtui", "--store", str(store.path), "import-results", str(big), "--source"]
    start = time.monotonic()
    assert subprocess.run(argv + ["big1"], env=cli.env, capture_output=True).returncode == 0
    whole = time.monotonic() - start  # kills land across the whole import: parse, count, write, commit
    killed = 0
    for fraction in (0.3, 0.5, 0.7, 0.8, 0.9, 0.95):
        proc = subprocess.Popen(argv + [f"big{killed % 2}"], env=cli.env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(whole * fraction)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            killed += 1
        proc.wait()
        assert set(_consistent(store.path).values()) <= {rows}
    assert killed >= 3
    r = cli("import-results", big, "--source", "big0")
    assert r.returncode == 0, r.stderr
    assert _consistent(store.path) == {"big0": rows, "big1": rows}
    wanted = {m[k] for m in Store(store.path).all("sources") for k in ("file", "previous") if m.get(k)}
    assert {p.name for p in files.folder_of(store).iterdir()} <= wanted  # leftovers of killed writers swept


def test_a_full_disk_during_an_import_is_one_line_and_loses_nothing(cli, small_disk, initialised, tmp_path):
    cli.store = small_disk / "runs.json"
    cli.store.write_bytes(initialised)
    csv_file = tmp_path / "mine.csv"
    csv_file.write_text(csv_text(300, seed=7))
    assert cli("import-results", csv_file, "--source", "mine").returncode == 0
    before = {p: p.read_bytes() for p in small_disk.rglob("*") if p.is_file()}
    filler = fill(small_disk)
    csv_file.write_text(csv_text(400, seed=8))
    line = assert_one_line_error(cli("import-results", csv_file, "--source", "mine"), 1)
    assert line.endswith(f"no space left on device ({small_disk / 'runs.sources'}): cannot write source mine"), line
    filler.unlink()
    assert {p: p.read_bytes() for p in small_disk.rglob("*") if p.is_file() and p.name != "runs.json.lock"} == {
        p: b for p, b in before.items() if p.name != "runs.json.lock"}
    assert _consistent(cli.store) == {"mine": 300}


def test_without_orjson_a_source_is_written_and_read_the_same(store, monkeypatch):
    import_results(store, parse_results_csv(csv_text(50), "fast"))
    expected = source_rows(store, "fast")
    files._CACHE.clear()
    monkeypatch.setitem(sys.modules, "orjson", None)  # `import orjson` raises ImportError
    assert source_rows(Store(store.path), "fast") == expected
    import_results(store, parse_results_csv(csv_text(50), "plain"))  # encoded by json
    files._CACHE.clear()
    monkeypatch.undo()
    assert [{**r, "id": "", "source": ""} for r in source_rows(Store(store.path), "plain")] == [
        {**r, "id": "", "source": ""} for r in expected]
