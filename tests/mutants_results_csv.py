"""Can tests/test_results_csv.py fail? Each deliberate bug below, put into core/reference.py's fast path
in a child process only (the file on disk is never changed), must make it fail.

    .venv/bin/python tests/mutants_results_csv.py      # one line per mutant; exit 1 if one survives

Not collected by pytest (a minute of runs); 2026-12-01: all 18 caught.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MUTANTS = [  # (text in core/reference.py, what the bug writes instead)
    ("max(map(len, cells)) > 7", "max(map(len, cells)) > 8"),
    ("return None if max(max(map(len, cells)) for cells in columns) > MAX_CSV_FIELD else columns", "return columns"),
    ('f"{t}@{c}/{g}"', 'f"{t}@{c}"'),
    ("        finite_in(max(present), low, high, low_open=low_open)\n", ""),
    ("finite_in(min(present), low, high, low_open=low_open)", "finite_in(min(present), low, high)"),
    ("min(numbers) >= 1 and", "min(numbers) > 1 and"),
    ("return numbers if min(numbers) >= 1 and max(numbers) <= high else None", "return numbers"),
    ('"id": f"{source}:{arch_id}"', '"id": arch_id'),
    ('"L": l, "M": m', '"M": m, "L": l'),
    ("if len(set(ids)) != count:", "if False:"),
    ("                if cell.strip():\n                    row_extra[col] = cell", "                row_extra[col] = cell"),
    ("extras = [dict(extra) for _ in ids] if extra else [{} for _ in ids]", "extras = [extra or {} for _ in ids]"),
    ("or max(map(len, body)) > MAX_CSV_FIELD ", ""),
    ('if \'"\' in text or "\\r" in text or "\\0" in text:', 'if \'"\' in text or "\\0" in text:'),
    ("    if len(set(header)) != len(header):\n        return None\n", ""),
    ("[g or DEFAULT_GENOTYPE for g in genotype_cells]", "[DEFAULT_GENOTYPE for g in genotype_cells]"),
    ("numbers = [float(t) if t else None for t in map(str.strip, cells)]",
     "numbers = [float(t) if t else 0.5 for t in map(str.strip, cells)]"),
    ("if not math.isfinite(sum(present)):", "if False:"),
]
CHILD = """
import sys, pytest
sys.path.insert(0, {repo!r})
import core.reference as ref
src = open(ref.__file__, encoding="utf-8").read().replace({old!r}, {new!r}, 1)
exec(compile(src, ref.__file__, "exec"), ref.__dict__)
sys.exit(pytest.main(["-q", "-x", "-p", "no:cacheprovider", {test!r}]))
"""


def main() -> int:
    source = (REPO / "core" / "reference.py").read_text(encoding="utf-8")
    survivors = 0
    for old, new in MUTANTS:
        if old not in source:
            print(f"STALE    {old[:60]!r} is no longer in core/reference.py")
            survivors += 1
            continue
        code = CHILD.format(repo=str(REPO), old=old, new=new, test=str(REPO / "tests" / "test_results_csv.py"))
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=600)
        caught = run.returncode != 0 and " failed" in run.stdout
        survivors += not caught
        last = ([line for line in run.stdout.splitlines() if line.strip()] or [run.stderr[-200:]])[-1]
        print(f"{'caught' if caught else 'SURVIVED'} {old[:60]!r}: {last}", flush=True)
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
