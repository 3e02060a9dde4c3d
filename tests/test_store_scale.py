"""Issue 12 item 10 (scale): what makes 100k imported rows cheap must not make the store less safe.

- A table klmtui wrote carries a sha256 digest in `_meta`: a later read trusts it (no per-record
  check, not even decoded until read), while any edit of its text (same layout, hand-edited,
  TinyDB-written) makes the whole file checked again: one line, the file untouched.
- A small write copies the tables it does not touch byte for byte, without decoding them.
- orjson (the fast decoder) reads exactly what json reads for every value klmtui writes; integers
  beyond 64 bits, which it would turn into floats, are refused on write.
- The Pareto filters (2-D sweep, blocked 3+-D) equal the every-pair definition, ties included.
Speed itself is measured in bench/store_scale.py, never asserted here.
"""

import json
import math
import random
import struct

import pytest

from core.pareto import Objective, plain_front, dominates, pareto_front
from core.store import AtomicJSONStorage, RawTable, Store, StoreError, split_blocks
from core.store_check import decode


def _result(i: int, accuracy: float = 95.0) -> dict:
    k, l = (i - 1) % 60 + 1, (i - 1) // 60 + 1
    return {"id": f"bench:{k}-{l}-1@8", "source": "bench", "arch_id": f"{k}-{l}-1@8", "K": k, "L": l, "M": 1,
            "channels": 8, "accuracy": accuracy, "latency_s": 0.5 + i / 1000, "extra": {"row": i}}


@pytest.fixture
def store_file(tmp_path):
    path = tmp_path / "runs.json"
    with Store(path).transaction() as tx:
        for i in range(1, 301):
            tx.insert("results", _result(i))
        tx.insert("runs", {"id": "t-1", "arch_id": "1-1-1@8", "status": "done", "accuracy": 90.0})
    return path


def test_a_file_klmtui_wrote_is_trusted_and_left_undecoded(store_file):
    meta = json.loads(store_file.read_text())["_meta"]["1"]
    assert set(meta["digests"]) == {"results", "runs"}
    store = Store(store_file)
    snap = store._load()
    assert snap.trusted and isinstance(snap.current("results"), RawTable)
    assert store.count("results") == 300 and isinstance(snap.current("results"), RawTable)  # counted, not decoded
    assert store.get("runs", "t-1")["accuracy"] == 90.0
    assert isinstance(snap.current("results"), RawTable)  # reading runs decoded runs only
    assert [r["K"] for r in store.view(strict=True).rows("results")][:3] == [1, 2, 3]


@pytest.mark.parametrize("edit, message", [
    (('"accuracy": 95.0, "latency_s": 0.507', '"accuracy": 195.0, "latency_s": 0.507'),
     "has a bad record 'bench:7-1-1@8' in table 'results': accuracy 195.0 is out of range [0, 100]"),
    (('"7-1-1@8", "K": 7, ', '"7-1-1@8", "K": "7", '), "has a bad record 'bench:7-1-1@8' in table 'results': K '7' is not a whole number"),
    (('"7-1-1@8", "K": 7, ', '"7-1-1@8", '), "has a results record 'bench:7-1-1@8' without K"),
])
def test_an_edit_of_a_trusted_table_is_checked_again(store_file, edit, message):
    text = store_file.read_text()
    assert text.count(edit[0]) == 1
    store_file.write_text(text.replace(*edit))  # same layout, same digests in _meta: only the text changed
    before = store_file.read_bytes()
    with pytest.raises(StoreError) as err:
        Store(store_file).view(strict=True)
    assert str(err.value).startswith(f"{store_file} {message}")
    if "without" not in message:  # a bad value: a write reads the file the same way and is refused
        with pytest.raises(StoreError):
            Store(store_file).insert("devices", {"id": "nano"})
    assert store_file.read_bytes() == before


def test_a_tinydb_write_is_not_trusted(store_file):
    from tinydb import TinyDB

    db = TinyDB(str(store_file), storage=AtomicJSONStorage)
    db.table("results").insert({"id": "bad", "source": "bench", "arch_id": "9-9-9@8", "K": 9, "L": 9, "M": 9,
                                "channels": 8, "accuracy": 101})  # TinyDB writes unchecked records ...
    assert "digests" not in json.loads(store_file.read_text())["_meta"]["1"]
    with pytest.raises(StoreError, match="accuracy 101 is out of range"):  # ... so the next read checks them all
        Store(store_file).view()


def test_a_small_write_copies_untouched_tables_byte_for_byte(store_file):
    blocks = dict(split_blocks(store_file.read_bytes()))
    store = Store(store_file)
    store.insert("devices", {"id": "nano", "host": "192.0.2.10"})
    snap = store._load()
    assert isinstance(snap.current("results"), RawTable)  # never decoded
    after = dict(split_blocks(store_file.read_bytes()))
    assert after["results"] == blocks["results"] and after["runs"] == blocks["runs"]
    assert set(after) == {"_meta", "results", "runs", "devices"}
    # the file is still what json and TinyDB read, and a fresh reader trusts all of it
    data = json.loads(store_file.read_text())
    assert data["devices"] == {"1": {"id": "nano", "host": "192.0.2.10"}} and len(data["results"]) == 300
    fresh = Store(store_file)
    assert fresh._load().trusted
    assert [r["id"] for r in fresh.all("results")] == [_result(i)["id"] for i in range(1, 301)]
    # then a write that touches results re-dumps just that record's line
    fresh.update("results", "bench:5-1-1@8", accuracy=96.5)  # row 5
    lines = [a != b for a, b in zip(bytes(blocks["results"]).split(b"\n"),
                                    bytes(dict(split_blocks(store_file.read_bytes()))["results"]).split(b"\n"))]
    assert sum(lines) == 1 and Store(store_file).get("results", "bench:5-1-1@8")["accuracy"] == 96.5


def test_orjson_reads_what_json_reads(tmp_path):
    rng = random.Random(12)

    def value(depth=0):
        kind = rng.randrange(8 if depth < 3 else 5)
        if kind == 0:
            return struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0] or 0.5  # any bit pattern
        if kind == 1:
            return rng.randint(-2**63, 2**63 - 1)
        if kind == 2:
            return "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0xA0, 0xD7FF), 0x1F600]))
                           for _ in range(rng.randrange(6)))
        if kind == 3:
            return rng.choice([None, True, False, 0, -0.0, 1e-308, 5e-324, 1.7976931348623157e308])
        if kind == 4:
            return rng.random() * 10 ** rng.randrange(-20, 20)
        if kind in (5, 6):
            return {f"k{n}": value(depth + 1) for n in range(rng.randrange(4))}
        return [value(depth + 1) for _ in range(rng.randrange(4))]

    records = []
    for i in range(400):
        extra = {f"f{n}": value() for n in range(4)}
        extra = {k: v for k, v in extra.items() if not (isinstance(v, float) and not math.isfinite(v))}
        records.append({"id": f"r{i}", "extra": extra, "note": value()})
    path = tmp_path / "runs.json"
    with Store(path).transaction() as tx:
        for rec in records:
            if "NaN" in json.dumps(rec) or "Infinity" in json.dumps(rec):
                continue
            tx.insert("runs", rec)
    data = path.read_bytes()
    slow, fast = decode(data), decode(data, fast=True)
    assert slow == fast and json.dumps(slow) == json.dumps(fast)  # same values, same types (1 vs 1.0), same order
    assert len(slow["runs"]) > 300


def test_integers_beyond_64_bits_are_refused_on_write(tmp_path):
    store = Store(tmp_path / "runs.json")
    store.insert("runs", {"id": "t-ok", "extra": {"n": 2**63 - 1, "m": -2**63}})
    with pytest.raises(StoreError, match="extra holds an integer beyond 64 bits"):
        store.insert("runs", {"id": "t-1", "extra": {"n": 2**64}})
    with pytest.raises(StoreError, match="note 18446744073709551616 is an integer beyond 64 bits"):
        store.insert("runs", {"id": "t-2", "note": 2**64})
    assert [r["id"] for r in Store(tmp_path / "runs.json").all("runs")] == ["t-ok"]


def test_pareto_filters_equal_the_every_pair_definition():
    rng = random.Random(3)
    for trial in range(120):
        d = rng.choice([1, 2, 2, 3, 4, 5])
        n = rng.randrange(0, 70)
        spread = rng.choice([2, 4, 50])  # few distinct values: many ties and equal coordinates
        points = [tuple(float(rng.randrange(spread)) for _ in range(d)) for _ in range(n)]
        objectives = [Objective(f"o{k}", rng.choice(["min", "max"])) for k in range(d)]
        expected = [not any(j != i and dominates(points[j], points[i], objectives) for j in range(n))
                    for i in range(n)]
        assert plain_front(points, [o.sign for o in objectives]) == expected, (trial, points)
    # several blocks (512 rows each) in 4-D, against the front found by every pair of a sample's front
    rows = [{"a": rng.random(), "b": rng.random(), "c": rng.random(), "d": rng.random()} for _ in range(3000)]
    objectives = [Objective("a", "max"), Objective("b", "min"), Objective("c", "min"), Objective("d", "min")]
    front = pareto_front(rows, objectives).front
    pts = [tuple(r[o.name] for o in objectives) for r in rows]
    on = {i for i, p in enumerate(pts) if not any(dominates(q, p, objectives) for q in pts if q is not p)}
    assert {r["a"] for r in front} == {rows[i]["a"] for i in on}


def test_a_process_keeps_the_version_it_wrote(tmp_path):
    """After its own write a process does not read (nor decode) the file again: the version it keeps
    has the signature the file has (inode, mtime, size and the `_meta` revision at its head; here
    `_meta` is shorter than that head)."""
    from core.store import file_signature

    store_file = tmp_path / "runs.json"
    store = Store(store_file)
    store.insert("runs", {"id": "t-1", "arch_id": "1-1-1@8", "status": "done"})
    for n in range(3):
        store.update("runs", "t-1", epoch=n)
        kept = store._snapshot
        assert kept is not None and kept.signature == file_signature(store_file)
        assert store._load() is kept
    assert Store(store_file).get("runs", "t-1")["epoch"] == 2


def test_without_orjson_everything_reads_the_same(store_file, monkeypatch, capsys):
    """orjson is a speed-up, not a requirement: without it the standard decoder and encoder do the work."""
    import sys

    from klmtui.cli.common import emit_json

    expected = Store(store_file).all("results")
    monkeypatch.setitem(sys.modules, "orjson", None)  # `import orjson` raises ImportError
    assert Store(store_file).all("results") == expected
    emit_json(expected * 10)  # > 2000 rows: the compact form
    assert json.loads(capsys.readouterr().out) == expected * 10
