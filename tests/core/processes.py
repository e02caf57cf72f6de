"""Start `postroom` commands as a user does: real processes, a real data directory, real ports."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

POSTROOM = [sys.executable, "-m", "postroom"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postroom_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """This process's environment without its POSTROOM_* settings, pointed at `data_dir`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("POSTROOM_") and key != "DJANGO_SETTINGS_MODULE"
    }
    env.update(
        POSTROOM_DATA_DIR=str(data_dir),
        POSTROOM_HTTP_PORT=str(free_port()),
        POSTROOM_CAPTURE_PORT=str(free_port()),
        POSTROOM_SMTPD_PORT=str(free_port()),
        **extra,
    )
    return env


def postroom_shell(env: dict[str, str], code: str) -> str:
    """Run Python in `postroom shell` (migrating first); return what it printed."""
    subprocess.run([*POSTROOM, "migrate", "--verbosity", "0"], env=env, check=True)
    result = subprocess.run(
        [*POSTROOM, "shell", "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return result.stdout


def postroom_command(
    env: dict[str, str], *args: str, umask: int = -1
) -> subprocess.CompletedProcess[str]:
    """Run `postroom ARGS` to the end; `umask` as the shell that starts it has it (-1: ours)."""
    return subprocess.run(
        [*POSTROOM, *args], env=env, capture_output=True, text=True, timeout=120, umask=umask
    )


def read_until(process: subprocess.Popen[str], pattern: str, timeout: float = 60) -> str:
    """Read the process's output until `pattern` shows; fail with what it printed if not."""
    assert process.stdout is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen += line
        if re.search(pattern, seen):
            return seen
    raise AssertionError(f"postroom did not print {pattern!r}; it printed:\n{seen}")


@contextmanager
def postroom_running(
    env: dict[str, str], *args: str, umask: int = -1
) -> Iterator[subprocess.Popen[str]]:
    """`postroom run` until the block ends, then Ctrl+C (and a kill if that does not stop it).

    `umask` is the one of the shell that starts it; -1 keeps this process's.
    """
    process = subprocess.Popen(
        [*POSTROOM, "run", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        umask=umask,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def children(pid: int) -> list[int]:
    """The child processes of `pid`, started by any of its threads (each has its list)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # the thread ended while we looked
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def is_running(pid: int) -> bool:
    """Whether `pid` runs: a process that ended but whose new parent has not reaped it yet
    (a zombie) does not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"
