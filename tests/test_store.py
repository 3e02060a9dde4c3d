"""core.store: the API, the file format, bad files, and concurrent writers from several processes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.errors import InputError
from core.store import (
    STATUSES,
    TABLES,
    AtomicJSONStorage,
    RecordNotFound,
    Store,
    StoreError,
    new_id,
)

REPO = Path(__file__).resolve().parents[1]


def test_missing_file_reads_empty_and_nothing_is_written(tmp_path):
    store = Store(tmp_path / "runs.json")
    assert not store.exists()
    assert store.all("runs") == [] and store.get("runs", "t-x") is None and store.find("runs") == []
    assert not (tmp_path / "runs.json").exists()


def test_crud_and_meta(tmp_path):
    store = Store(tmp_path / "runs.json")
    rid = new_id("t-")
    assert rid.startswith("t-") and len(rid) == 10 and int(rid[2:], 16) >= 0
    assert store.insert("runs", {"id": rid, "status": "pending", "config": {"lr": 0.1}}) == rid
    assert store.exists()
    with pytest.raises(StoreError, match="already exists"):
        store.insert("runs", {"id": rid})
    new = store.update("runs", rid, status="running", epoch=1)
    assert new == {"id": rid, "status": "running", "config": {"lr": 0.1}, "epoch": 1}
    # upsert merges: fields not given are kept
    store.upsert("runs", {"id": rid, "status": "done"})
    assert store.get("runs", rid)["epoch"] == 1 and store.get("runs", rid)["status"] == "done"
    store.upsert("runs", {"id": "t-other", "status": "failed"})
    assert [r["id"] for r in store.find("runs", status="failed")] == ["t-other"]
    with pytest.raises(KeyError):
        store.update("runs", "t-missing", status="done")
    with pytest.raises(RecordNotFound):
        store.remove("runs", "t-missing")
    store.remove("runs", "t-other")
    assert [r["id"] for r in store.all("runs")] == [rid]
    # returned records are copies: mutating them changes nothing
    store.get("runs", rid)["config"]["lr"] = 99
    assert store.get("runs", rid)["config"]["lr"] == 0.1
    meta = store.meta()
    assert meta["app"] == "klmtui" and meta["schema"] >= 1
    # a second Store (another process would do the same) sees it all
    assert Store(tmp_path / "runs.json").get("runs", rid)["status"] == "done"
    assert set(TABLES) == {"architectures", "runs", "benchmarks", "devices", "results", "sources"}
    assert "interrupted" in STATUSES


def test_file_is_tinydb_layout(tmp_path):
    from tinydb import TinyDB

    store = Store(tmp_path / "runs.json")
    store.insert("devices", {"id": "nano", "host": "10.0.0.2"})
    raw = json.loads((tmp_path / "runs.json").read_text())
    assert raw["_meta"]["1"]["app"] == "klmtui"
    assert raw["devices"] == {"1": {"id": "nano", "host": "10.0.0.2"}}
    # plain TinyDB reads it; TinyDB through AtomicJSONStorage writes it safely
    assert TinyDB(tmp_path / "runs.json").table("devices").all() == [{"id": "nano", "host": "10.0.0.2"}]
    db = TinyDB(str(tmp_path / "runs.json"), storage=AtomicJSONStorage)
    db.table("devices").insert({"id": "tx2", "host": "10.0.0.3"})
    assert [d["id"] for d in Store(tmp_path / "runs.json").all("devices")] == ["nano", "tx2"]
    from tinydb import Query

    assert [d["id"] for d in store.tinydb_table("devices").search(Query().host == "10.0.0.3")] == ["tx2"]


def test_transaction_writes_once_and_rolls_back_on_error(tmp_path):
    path = tmp_path / "runs.json"
    store = Store(path)
    store.insert("runs", {"id": "t-a", "status": "pending"})
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="boom"):
        with store.transaction() as tx:
            tx.update("runs", "t-a", status="running")
            assert tx.get("runs", "t-a")["status"] == "running"  # sees its own writes
            raise RuntimeError("boom")
    assert path.read_bytes() == before
    assert store.get("runs", "t-a")["status"] == "pending"  # in-process cache not touched either
    with store.transaction() as tx:
        tx.insert("benchmarks", {"id": "b-1", "status": "queued"})
        tx.update("runs", "t-a", status="done")
        tx.remove("benchmarks", "b-1")
        tx.insert("benchmarks", {"id": "b-2", "status": "done"})
    other = Store(path)
    assert [b["id"] for b in other.all("benchmarks")] == ["b-2"]
    assert other.get("runs", "t-a")["status"] == "done"
    with store.transaction():
        pass  # unchanged: not rewritten
    assert Store(path).all("benchmarks")[0]["id"] == "b-2"


def test_run_dir_and_relative_paths(tmp_path):
    store = Store(tmp_path / "study" / "runs.json")
    d = store.run_dir("t-12345678")
    assert d == tmp_path / "study" / "runs" / "t-12345678" and d.is_dir()
    assert store.relative(d / "model.pt") == "runs/t-12345678/model.pt"
    assert store.resolve("runs/t-12345678/model.pt") == d / "model.pt"


@pytest.mark.parametrize(
    "content, why",
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2, 3]", "not a TinyDB/klmtui store"),
        (b'{"_default": {"1": {"a": 1}}}', "not a klmtui store"),
        (b'{"_meta": {"1": {"id": "store", "app": "other"}}}', "not a klmtui store"),
    ],
)
def test_bad_file_is_kept_and_never_overwritten(tmp_path, content, why):
    path = tmp_path / "runs.json"
    path.write_bytes(content)
    store = Store(path)
    with pytest.raises(StoreError, match=why) as info:
        store.all("runs")
    assert isinstance(info.value, InputError)
    assert "\n" not in str(info.value)
    with pytest.raises(StoreError):
        store.insert("runs", {"id": "t-1"})
    assert path.read_bytes() == content
    kept = list(tmp_path.glob("runs.json.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == content  # once per content, not per attempt
    assert str(kept[0].name) in str(info.value)


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "runs.json"
    path.write_text('{"_meta": {"1": {"id": "store", "app": "klmtui", "schema": 999}}}')
    with pytest.raises(StoreError, match="schema"):
        Store(path).all("runs")


def test_empty_file_is_an_empty_store(tmp_path):
    path = tmp_path / "runs.json"
    path.write_text("")
    store = Store(path)
    assert store.all("runs") == [] and not store.exists()
    store.insert("runs", {"id": "t-1"})
    assert Store(path).get("runs", "t-1") == {"id": "t-1"}


_WORKER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {repo!r})
    from core.store import Store
    store = Store(sys.argv[1])
    worker = int(sys.argv[2])
    for i in range(int(sys.argv[3])):
        with store.transaction() as tx:
            tx.insert("runs", {{"id": f"t-{{worker}}-{{i}}", "status": "done", "epoch": i}})
            counter = tx.get("devices", "counter")
            tx.update("devices", "counter", n=counter["n"] + 1)
    """
)


def test_concurrent_writers_lose_nothing(tmp_path):
    """8 processes x 200 read-modify-write transactions on one store: all 1,600 land."""
    path = tmp_path / "runs.json"
    Store(path).insert("devices", {"id": "counter", "n": 0})
    workers, per_worker = 8, 200
    script = tmp_path / "worker.py"
    script.write_text(_WORKER.format(repo=str(REPO)))
    procs = [
        subprocess.Popen([sys.executable, str(script), str(path), str(w), str(per_worker)]) for w in range(workers)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0] * workers
    raw = json.loads(path.read_text())  # valid JSON
    assert len(raw["runs"]) == workers * per_worker
    store = Store(path)
    ids = {r["id"] for r in store.all("runs")}
    assert ids == {f"t-{w}-{i}" for w in range(workers) for i in range(per_worker)}
    assert store.get("devices", "counter")["n"] == workers * per_worker
    assert not list(tmp_path.glob(".runs.json.*.tmp"))


def test_incremental_writes_equal_a_full_rewrite(tmp_path):
    """Two writers (one Store each, as two processes would have) doing random operations: after
    every write the file is exactly what serialising the whole state from scratch gives."""
    import random

    from core.store import _Serialiser, parse_store

    path = tmp_path / "runs.json"
    stores = [Store(path), Store(path)]
    rng = random.Random(7)
    model: dict[str, dict] = {}
    for step in range(300):
        store = stores[rng.randrange(2)]
        op = rng.choice(["insert", "insert", "update", "upsert", "remove", "tx"])
        ids = sorted(model)
        if op == "insert" or not ids:
            rid = f"t-{step:04d}"
            store.insert("runs", {"id": rid, "status": "pending", "note": "é\n\"q\""})
            model[rid] = {"id": rid, "status": "pending", "note": "é\n\"q\""}
        elif op == "update":
            rid = rng.choice(ids)
            store.update("runs", rid, status=rng.choice(STATUSES), epoch=step)
            model[rid].update(epoch=step)
            model[rid]["status"] = store.get("runs", rid)["status"]
        elif op == "upsert":
            rid = rng.choice(ids)
            store.upsert("runs", {"id": rid, "best": step})
            model[rid]["best"] = step
        elif op == "remove":
            rid = rng.choice(ids)
            store.remove("runs", rid)
            del model[rid]
        else:
            with store.transaction() as tx:
                rid = f"t-{step:04d}"
                tx.insert("runs", {"id": rid, "status": "queued"})
                tx.update("runs", rid, status="running")
                tx.upsert("benchmarks", {"id": f"b-{step % 5}", "step": step})
            model[rid] = {"id": rid, "status": "running"}
        text = path.read_text(encoding="utf-8")
        tables = parse_store(path, text.encode())
        assert {r["id"]: r for r in tables["runs"].values()} == model
        assert b"".join(_Serialiser().dumps(tables)).decode("utf-8") == text


def test_threads_with_their_own_store_objects_lose_nothing(tmp_path):
    """The TUI's workers may each open a Store on the same file: the file lock covers them too."""
    import threading

    path = tmp_path / "runs.json"
    Store(path).insert("devices", {"id": "counter", "n": 0})

    def work(worker: int) -> None:
        store = Store(path) if worker % 2 else shared
        for _ in range(40):
            with store.transaction() as tx:
                tx.update("devices", "counter", n=tx.get("devices", "counter")["n"] + 1)

    shared = Store(path)
    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert Store(path).get("devices", "counter")["n"] == 160


def test_unwritable_location_is_a_clear_failure(tmp_path):
    from core.errors import OperationFailed

    (tmp_path / "afile").write_text("")
    store = Store(tmp_path / "afile" / "runs.json")
    with pytest.raises(OperationFailed, match="cannot (lock|write) the store"):
        store.insert("runs", {"id": "t-1"})
    with pytest.raises(OperationFailed, match="cannot read the store"):
        store.all("runs")


def test_hand_edited_file_is_read_and_rewritten_correctly(tmp_path):
    """A file in another layout (plain TinyDB, an editor's reformatting) is not line-seeded."""
    path = tmp_path / "runs.json"
    Store(path).insert("runs", {"id": "t-1", "status": "done"})
    raw = json.loads(path.read_text())
    for text in (json.dumps(raw), json.dumps(raw, indent=4), path.read_text().replace("},\n", "}, \n")):
        path.write_text(text)
        store = Store(path)
        store.insert("runs", {"id": "t-2", "status": "queued"})
        store.update("runs", "t-1", status="failed")
        assert {r["id"]: r["status"] for r in Store(path).all("runs")} == {"t-1": "failed", "t-2": "queued"}
        store.remove("runs", "t-2")
