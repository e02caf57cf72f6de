"""Postfix's smtp-sink on loopback: an SMTP server that accepts everything and keeps nothing.

It announces PIPELINING, 8BITMIME and ENHANCEDSTATUSCODES, answers every command with
success and throws the messages away (no `-d`/`-D`: writing them to disk would measure the
disk). `-c` writes a running count of received messages to a file, which lets the benchmark
check that every message a contender reports as sent did arrive.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from bench.measure import proc_cpu_seconds

SMTP_SINK = "/usr/sbin/smtp-sink"
SMTP_SOURCE = "/usr/sbin/smtp-source"
# smtp-sink's default limit (-m) is 256 simultaneous connections; the listen backlog is
# ours to give: room for every contender's connections at once (16 to 40 here).
BACKLOG = 256
_COUNTER = re.compile(rb"mesg=(\d+)")


class SinkMissingError(RuntimeError):
    pass


def postfix_tool(name: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else "")
    if not path:
        raise SinkMissingError(
            f"{name} is not installed. It comes with Debian's postfix package: run "
            "`bash scripts/test-prereqs` as root (it installs Postfix without starting it)."
        )
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class SmtpSink:
    """`with SmtpSink() as sink:` runs smtp-sink on 127.0.0.1:`sink.port` until the block ends."""

    host = "127.0.0.1"

    def __init__(self) -> None:
        self.port = free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="postroom-bench-sink-"))
        self._counter_path = self._dir / "counter"
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> SmtpSink:
        argv = [postfix_tool("smtp-sink"), "-c"]
        if os.geteuid() == 0:
            # smtp-sink refuses to run as root without dropping privileges after the bind.
            argv += ["-u", "nobody"]
        argv += [f"{self.host}:{self.port}", str(BACKLOG)]
        with self._counter_path.open("wb") as counter:
            self._process = subprocess.Popen(
                argv, stdout=counter, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self._wait_listening()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _wait_listening(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + 5  # it binds at once; 5 s covers a loaded machine
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"smtp-sink exited at start: {self._counter_path.read_text().strip()}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as probe:
                    probe.recv(512)  # the 220 greeting
                    probe.sendall(b"QUIT\r\n")
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"smtp-sink did not listen on {self.host}:{self.port} within 5 s")

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.pid)

    def received(self) -> int:
        """Messages received so far (the last `mesg=` of smtp-sink's -c counter)."""
        data = self._counter_path.read_bytes()[-200:]
        counts = _COUNTER.findall(data)
        return int(counts[-1]) if counts else 0
