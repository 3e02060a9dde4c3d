"""`klmtui space` as a user runs it: JSON and table output, one-line errors, no torch import.
Also the `K-L-M@C` parser the train command relies on."""

import subprocess
import sys

import pytest

from core.arch import ArchError, parse_arch
from tests.fixtures.cli import assert_one_line_error
from tests.fixtures.paths import REPO

JSON_KEYS = {"arch", "K", "L", "M", "channels", "params", "macs", "in_thesis", "genotype"}


def test_space_json_lists_57_configurations(cli):
    result = cli("space", "--json")
    assert result.returncode == 0, result.stderr
    rows = result.json()
    assert len(rows) == 57
    assert all(set(row) == JSON_KEYS for row in rows)
    assert len({row["arch"] for row in rows}) == 19
    six = [row for row in rows if row["arch"] == "6-6-6" and row["channels"] == 36]
    assert six[0]["params"] == 2_663_542 and six[0]["in_thesis"] is True
    assert {row["arch"] for row in rows if not row["in_thesis"]} == {"5-5-8"}
    assert not cli.store.exists()


def test_space_table(cli):
    result = cli("space")
    assert result.returncode == 0, result.stderr
    assert "5-5-8" in result.stdout and "2,663,542" in result.stdout
    assert "57 configurations" in result.stdout


def test_space_knobs_pass_through(cli):
    result = cli("space", "--json", "--channels", "16", "--balance", "2", "--min-distance", "2",
                 "--max-params", "5e6", "--params-channels", "16", "--cells", "14", "--min-block", "3",
                 "--genotype", "SNAS_moderate")
    assert result.returncode == 0, result.stderr
    rows = result.json()
    assert rows and all(row["channels"] == 16 and row["genotype"] == "SNAS_moderate" for row in rows)
    assert all(row["K"] + row["L"] + row["M"] == 12 for row in rows)
    assert all(max(row["K"], row["L"], row["M"]) - min(row["K"], row["L"], row["M"]) <= 2 for row in rows)


@pytest.mark.parametrize("args,needle", [
    (["--balance", "-1"], "balance"),
    (["--channels", "12,x"], "channels"),
    (["--channels", "0"], "channels"),
    (["--cells", "3"], "cells"),
    (["--genotype", "Foo"], "Foo"),
    (["--min-distance", "-3"], "min-distance"),
    (["--max-params", "lots"], "max-params"),
])
def test_space_bad_input_is_one_line(cli, args, needle):
    line = assert_one_line_error(cli("space", *args), 2)
    assert needle in line


def test_space_does_not_import_torch():
    code = (
        "import sys\n"
        "from klmtui.cli import main\n"
        "try:\n"
        "    main.main(args=['space', '--json'], prog_name='klmtui', standalone_mode=False)\n"
        "finally:\n"
        "    sys.stderr.write(str('torch' in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip().endswith("False")
    assert out.stdout.lstrip().startswith("[")


@pytest.mark.parametrize("text", ["6-6", "6-6-6@0", "0-9-9@12", "6-6-6@", "a-b-c@1"])
def test_parse_arch_rejects(text):
    with pytest.raises(ArchError):
        parse_arch(text)


def test_parse_arch_accepts_any_positive_triple():
    arch = parse_arch("1-2-3@8")
    assert (arch.K, arch.L, arch.M, arch.channels, arch.id) == (1, 2, 3, 8, "1-2-3@8")
    assert parse_arch("6-6-6@36/SNAS_mild_edge_all").genotype == "SNAS_mild_edge_all"


def test_thesis_only_gives_the_54_trained_configurations(cli):
    r = cli("space", "--thesis-only", "--json", store=False)
    assert r.returncode == 0, r.stderr
    rows = r.json()
    assert len(rows) == 54
    assert all(row["in_thesis"] for row in rows)
    assert "5-5-8" not in {row["arch"] for row in rows}
