"""What /usr/bin/time reports, for processes the benchmark starts: CPU time and peak RSS.

A process run to its end is reaped with `os.wait4`, whose rusage is that one child's own
(RUSAGE_CHILDREN would merge every child reaped so far). A process that keeps running
(smtp-sink, the Postroom worker) is read from /proc: CPU time of all its threads from
`stat`, peak RSS from `VmHWM` in `status`.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a running process, all threads included."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # Fields after the command name, which is in parentheses and may hold spaces.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # stat fields 14 and 15 of proc(5)
    return (utime + stime) / _CLOCK_TICKS


def proc_tree_cpu_seconds(pid: int) -> float:
    """`proc_cpu_seconds` of a running process and of its running children, theirs included
    (`postroom run` runs its worker as a child)."""
    children = [  # each thread has its list of the children it started
        int(child) for task in Path(f"/proc/{pid}/task").iterdir() for child in _children(task)
    ]
    return proc_cpu_seconds(pid) + sum(proc_tree_cpu_seconds(child) for child in children)


def _children(task: Path) -> list[str]:
    try:
        return (task / "children").read_text().split()
    except FileNotFoundError:
        return []  # the thread ended while we looked


def proc_memory_mb(pid: int, field: str) -> float:
    """A memory line of /proc/PID/status in MB: VmHWM (peak RSS) or VmRSS (now)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024  # the kernel reports kB
    raise RuntimeError(f"/proc/{pid}/status has no {field} line")


@dataclass(frozen=True)
class Finished:
    """A child process run to its end."""

    returncode: int
    wall_seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    stdout: str
    stderr: str

    def result(self) -> dict[str, Any]:
        """The JSON object a Python contender prints as its last line of output."""
        lines = [line for line in self.stdout.splitlines() if line.startswith("{")]
        if self.returncode != 0 or not lines:
            raise ContenderError(
                f"exit code {self.returncode}; stderr ends with:\n{_tail(self.stderr)}"
            )
        result: dict[str, Any] = json.loads(lines[-1])
        return result


class ContenderError(RuntimeError):
    """A contender did not run to its end: the benchmark says so instead of a figure."""


def run_measured(
    argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Finished:
    """Run `argv` to its end and return its own CPU time and peak RSS, like /usr/bin/time."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=cwd)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        return Finished(
            returncode=process.returncode,
            wall_seconds=wall,
            cpu_seconds=usage.ru_utime + usage.ru_stime,
            peak_rss_mb=usage.ru_maxrss / 1024,  # Linux reports ru_maxrss in kB
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
        )


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:]) or "(nothing)"


def self_cpu_seconds() -> float:
    """CPU seconds of this process so far, user plus system, every thread."""
    times = os.times()
    return times.user + times.system
