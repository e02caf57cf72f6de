"""Instructions a message costs, counted by valgrind: a figure other work on the machine does
not move, for telling whether a change made accepting mail cheaper.

    .venv/bin/python -m bench.instructions                     # every workload, ~10 minutes
    .venv/bin/python -m bench.instructions --only api-single   # one of them

The rates of bench.api and bench.smtpd move by 10-30% with what else the machine's cores run
(on a shared VM, even the CPU time per message does); an instruction count is the same from
run to run. valgrind's callgrind tool counts every instruction the process executes in user
space (not the kernel's: fsync and the sockets are not in it, so this is a figure beside the
rates, not instead of them). Each workload (bench/instructions_run.py) runs twice in a fresh
process, with LOW and HIGH units, and the figure is the difference divided by HIGH - LOW: the
interpreter's start, Django's setup and the first request cancel out.

Lines, each per message (or per request for the reference):

  API: JSON 404 (reference)    the same client asking for an unknown path: Django, the
                               middleware and django-ninja, no database
  API: single send             POST /api/v1/messages
  API: batch, per message      POST /api/v1/messages/batch of 100
  SMTP: aiosmtpd sink (ref.)   the same SMTP clients into aiosmtpd keeping nothing: the
                               protocol and TLS, both sides
  SMTP: listener               into Postroom's listener, STARTTLS and AUTH, stored durably;
                               the clients' instructions are in both SMTP lines

Needs valgrind (Debian's `valgrind`). Compare two versions by running this in each (a `git
worktree` of the other with the same .venv), as docs/performance.md describes.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.instructions_run import WORKLOADS
from bench.postroom_run import PROJECT_DIR

# (workload, label, units low, units high, messages a unit)
LINES = [
    ("api-404", "API: JSON 404 (reference)", 5, 45, 1),
    ("api-single", "API: single send", 5, 45, 1),
    ("api-batch", "API: batch of 100, per message", 1, 5, 100),
    ("smtpd-sink", "SMTP: aiosmtpd sink (reference)", 100, 400, 1),
    ("smtpd", "SMTP: listener, STARTTLS+AUTH", 100, 400, 1),
]
_COLLECTED = re.compile(rb"Collected : (\d+)")


def instructions(workload: str, prepared: Path, units: int) -> int:
    argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    argv += [sys.executable, "-m", "bench.instructions_run", "run", workload, str(prepared)]
    # A fixed hash seed: with a random one, the order of sets and dicts, and with it the
    # count, changes a little from run to run.
    environment = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(
        [*argv, str(units)],
        cwd=PROJECT_DIR, env=environment, capture_output=True, timeout=1800, check=False,
    )  # fmt: skip
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        tail = done.stderr.decode(errors="replace")[-3000:]
        raise RuntimeError(f"{workload} under valgrind failed ({done.returncode}):\n{tail}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=WORKLOADS, action="append", help="these workloads")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("bench.instructions needs valgrind: apt-get install valgrind", file=sys.stderr)
        return 1
    print(f"{'line':34} {'instructions a message':>24}")
    for workload, label, low, high, per_unit in LINES:
        if args.only and workload not in args.only:
            continue
        with tempfile.TemporaryDirectory(prefix="postroom-bench-instructions-") as directory:
            prepared = Path(directory) / "prepared"
            prepared.mkdir()
            subprocess.run(
                [sys.executable, "-m", "bench.instructions_run", "prepare", workload, prepared],
                cwd=PROJECT_DIR, check=True, capture_output=True, timeout=600,
            )  # fmt: skip
            counts = [instructions(workload, prepared, units) for units in (low, high)]
        per_message = (counts[1] - counts[0]) / ((high - low) * per_unit)
        print(f"{label:34} {per_message / 1e6:21.2f} M", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
