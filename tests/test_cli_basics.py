"""The CLI skeleton: help, version, one-line errors."""

from tests.fixtures.cli import assert_one_line_error


def test_help_lists_commands(cli):
    r = cli("--help")
    assert r.returncode == 0, r.stderr
    assert "klmtui" in r.stdout


def test_unknown_command_is_one_line(cli):
    r = cli("no-such-command")
    line = assert_one_line_error(r, 2)
    assert "no-such-command" in line


def test_triple_key_sorts_numerically():
    from core.arch import triple_key

    triples = ["4-10-4", "4-6-8", "10-2-6", "4-8-6", "junk"]
    assert sorted(triples, key=triple_key) == ["4-6-8", "4-8-6", "4-10-4", "10-2-6", "junk"]
