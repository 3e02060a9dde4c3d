"""One meaning in one place: the store's vocabulary (core.schema), the settings (core.settings)
and the typed records (core.records) are the only definitions, and real records fit their types."""

import ast
from pathlib import Path

import pytest

from core import schema, settings
from core.errors import InputError
from core.records import RECORD_TYPES, record_fields
from core.store import Store
from tests.fixtures.paths import REPO

PACKAGES = ("core", "remote", "klmtui")


def _sources():
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            yield path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _literal(node):
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def test_status_groups_partition_the_statuses():
    assert set(schema.ACTIVE_STATUSES) | set(schema.FINAL_STATUSES) == set(schema.STATUSES)
    assert not set(schema.ACTIVE_STATUSES) & set(schema.FINAL_STATUSES)
    assert set(schema.RESUMABLE_STATUSES) < set(schema.FINAL_STATUSES) and schema.DONE not in schema.RESUMABLE_STATUSES
    assert set(RECORD_TYPES) == set(schema.TABLES)
    assert schema.is_local_device({"id": schema.LOCAL_DEVICE}) and not schema.is_local_device({"id": "nano", "host": "10.0.0.2"})


def test_no_module_redefines_the_schema():
    """The tables, the status groups, the default objectives are spelled once (core/schema.py)."""
    defined = {tuple(schema.TABLES): "TABLES", tuple(schema.ACTIVE_STATUSES): "ACTIVE_STATUSES",
               tuple(schema.FINAL_STATUSES): "FINAL_STATUSES", tuple(schema.STATUSES): "STATUSES",
               tuple(schema.DEFAULT_OBJECTIVE_SPECS): "DEFAULT_OBJECTIVE_SPECS"}
    found = []
    for path, tree in _sources():
        if path == REPO / "core" / "schema.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                value = _literal(node)
                if isinstance(value, (tuple, list, set)) and len(value) > 1 and all(isinstance(v, str) for v in value):
                    for spelled, name in defined.items():
                        if set(value) == set(spelled):
                            found.append(f"{path.relative_to(REPO)}:{node.lineno} spells {name} again")
    assert not found, "\n".join(found)


def test_only_core_settings_reads_the_environment():
    """`os.environ.get(...)`, `os.getenv(...)` and `os.environ[...]` reads live in core/settings.py
    (copying os.environ for a child process is fine)."""
    found = []
    for path, tree in _sources():
        if path == REPO / "core" / "settings.py":
            continue
        for node in ast.walk(tree):
            name = None
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
                target = ast.unparse(node.func)
                if target in ("os.environ.get", "os.getenv", "environ.get"):
                    name = _literal(node.args[0])
            elif isinstance(node, ast.Subscript) and ast.unparse(node.value) in ("os.environ", "environ") \
                    and isinstance(node.ctx, ast.Load):
                name = _literal(node.slice)
            if isinstance(name, str) and name in settings.ENV_VARS:
                found.append(f"{path.relative_to(REPO)}:{node.lineno} reads ${name}")
    assert not found, "\n".join(found)


def test_settings_defaults_and_bad_values():
    assert settings.home({}) == Path.home() / ".config" / "klmtui"
    assert settings.home({"KLMTUI_HOME": "~/k"}) == Path.home() / "k"
    assert settings.store_path(None, {}) == Path("runs.json")
    assert settings.store_path(None, {"KLMTUI_STORE": "/x/s.json"}) == Path("/x/s.json")
    assert settings.store_path("given.json", {"KLMTUI_STORE": "/x/s.json"}) == Path("given.json")
    assert settings.ssh_timeout(None, {}) == settings.DEFAULT_SSH_TIMEOUT_S
    assert settings.ssh_timeout(None, {"KLMTUI_SSH_TIMEOUT": "2.5"}) == 2.5
    assert settings.torch_threads({"KLMTUI_TORCH_THREADS": "3"}) == 3 and settings.max_parallel({}) is None
    for name, raw, read in [("KLMTUI_SSH_TIMEOUT", "soon", lambda e: settings.ssh_timeout(None, e)),
                            ("KLMTUI_SSH_TIMEOUT", "-1", lambda e: settings.ssh_timeout(None, e)),
                            ("KLMTUI_TORCH_THREADS", "two", settings.torch_threads),
                            ("KLMTUI_MAX_PARALLEL", "0", settings.max_parallel)]:
        with pytest.raises(InputError, match=name):
            read({name: raw})
    assert set(settings.ENV_VARS) >= {"KLMTUI_HOME", "KLMTUI_STORE", "KLMTUI_DATA", "KLMTUI_SSH_TIMEOUT"}


def test_real_records_use_only_their_typed_fields(history):
    """Every record real code wrote (a done training run and a done local benchmark, the initialised
    study, a registered device) has only fields its TypedDict names."""
    from core.study import init_study
    from remote.devices import add_device

    store = Store(history)
    init_study(store)
    add_device(store, "nano", "192.0.2.7", user="jetson", port=22)
    from core.reference import parse_results_csv
    from core.study import import_results

    import_results(store, parse_results_csv("K,L,M,channels,accuracy,params_m,latency_s,power_w\n2,2,2,8,90,0.1,,\n",
                                            "mine"), csv="mine.csv")
    seen = {table: store.all(table) for table in schema.TABLES}
    assert all(seen[t] for t in schema.TABLES), {t: len(v) for t, v in seen.items()}
    from remote.agent.events import SUMMARY  # the one event schema: its summary fields are stored as named

    known = {table: record_fields(table) | (set(SUMMARY) if table == schema.BENCHMARKS else set())
             for table in schema.TABLES}
    unknown = {table: sorted(set().union(*(set(r) for r in records)) - known[table]) for table, records in seen.items()}
    assert not any(unknown.values()), f"fields missing from core/records.py: {unknown}"
    [run] = [r for r in seen["runs"] if r["status"] == schema.DONE]
    [bench] = seen["benchmarks"]
    assert bench["status"] == schema.DONE and bench["run_id"] == run["id"] and bench["weights"] == "trained"


def test_one_export_path_for_cli_and_tui(cli, tmp_path):
    """The TUI's export writes exactly what `klmtui export -o` writes (caption and source note included)."""
    from klmtui.services import Services

    assert cli("init").returncode == 0
    r = cli("export", "--format", "md", "--source", "thesis", "-o", tmp_path / "cli.md")
    assert r.returncode == 0, r.stderr
    Services(cli.store).export("md", "thesis", str(tmp_path / "tui.md"))
    text = (tmp_path / "tui.md").read_text(encoding="utf-8")
    assert text == (tmp_path / "cli.md").read_text(encoding="utf-8")
    assert "as published (rounded to 0.1M)" in text  # the source note the TUI's own copy had lost


def test_device_side_contract_reads_the_bundle_and_can_fail():
    """The `device_side` contract (pyproject.toml) checks remote.bundle's modules; an import of
    host-side code (or of a package a Jetson lacks) from one of them breaks it."""
    import grimp

    from remote.bundle import bundle_files, device_modules
    from tests.import_contracts import DeviceSideContract

    modules = device_modules()
    assert {"core.network", "remote.agent.main", "remote.agent.tegrastats"} <= set(modules)
    assert len(modules) == len([r for _, r in bundle_files() if r.endswith(".py")])
    graph = grimp.build_graph("core", "remote", include_external_packages=True)
    contract = DeviceSideContract("device", {}, {"allowed_external": ["torch", "PIL"]})
    assert contract.check(graph, verbose=False).kept
    graph.add_import(importer="remote.agent.timing", imported="core.store", line_number=1, line_contents="import core.store")
    graph.add_import(importer="core.ops", imported="numpy", line_number=2, line_contents="import numpy")
    check = contract.check(graph, verbose=False)
    assert not check.kept
    assert {(b["importer"], b["imported"]) for b in check.metadata["bad"]} == {("remote.agent.timing", "core.store"),
                                                                              ("core.ops", "numpy")}


def test_architecture_doc_covers_every_event_and_command():
    """docs/architecture.md names every event of the one schema and every CLI command."""
    from klmtui.cli import main as group
    from remote.agent import events

    doc = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = [f"event {name}" for name in events.EVENTS if f"`{name}`" not in doc]
    missing += [f"command {name}" for name in group.commands if name not in doc]
    assert not missing, missing
    assert set(events.STATUSES) <= set(schema.STATUSES)  # the device side's own copy stays a subset


def test_docstrings_point_to_the_repository_design():
    """No module or test cites the design note that lives outside the repository."""
    cited = [f"{path.relative_to(REPO)}" for folder in (*PACKAGES, "tests") for path in (REPO / folder).rglob("*.py")
             if path.name != "test_house.py" and "design.md" in path.read_text(encoding="utf-8")]
    assert not cited, cited


def test_one_file_signature_tells_every_write_apart(tmp_path):
    """The TUI's poll and the Store use one signature; two same-size writes within one time stamp
    still differ (the revision tag), so the TUI needs no periodic full re-read."""
    from core.store import file_signature
    from klmtui.services import file_signature as tui_signature

    store = Store(tmp_path / "runs.json")
    assert file_signature(store.path) is None
    store.insert("devices", {"id": "a", "name": "a", "host": "h1"})
    first = file_signature(store.path)
    store.update("devices", "a", host="h2")  # same size
    second = file_signature(store.path)
    assert first is not None and second is not None and first != second
    assert tui_signature(store.path) == second and first[3] == second[3]
