"""Shared fixtures live in tests/fixtures/*, one module per area, loaded as plugins."""

pytest_plugins = [
    "tests.fixtures.leaks",  # first: its fixtures are torn down last
    "tests.fixtures.paths",
    "tests.fixtures.bytecode",
    "tests.fixtures.cli",
    "tests.fixtures.data",
    "tests.fixtures.sshd",
    "tests.fixtures.ray_cluster",
    "tests.fixtures.runs",
    "tests.fixtures.disk",
    "tests.fixtures.study",
]
