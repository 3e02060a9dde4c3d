"""`python -m core.jobs.launch LOG -- CMD...`: start CMD detached and print its pid.

A double fork in two processes: this launcher starts CMD in a new session (its own process
group, no controlling terminal, stdin closed, output appended to LOG) and exits at once, so CMD
is re-parented to init. Closing the TUI or the terminal that asked for the run does not stop
it, and the asking process never accumulates zombies or `subprocess` warnings.
"""

import os
import subprocess
import sys


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m core.jobs.launch LOG -- CMD...", file=sys.stderr)
        return 2
    log_path, cmd = argv[0], argv[2:]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True, cwd=os.getcwd())
    print(proc.pid, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
