"""Run Postroom as docs/deployment.md says: the commands of the units in deploy/systemd, with
the settings of deploy/postroom.env.example, as real processes on loopback.

The units' programs live in /opt/postroom/venv; here they are the same programs of the
virtualenv running the tests. Requests carry the example's public name in `Host`, as the
reverse proxy passes it.
"""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
INSTALLED_BIN = "/opt/postroom/venv/bin/"
PUBLIC_HOST = "mail.example.com"  # POSTROOM_ALLOWED_HOSTS in the example
LOOPBACK = "127.0.0.1"
# Starting a web process imports Django and Postroom: a second or two, more on a busy machine
# running the rest of the suite beside it.
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0

_PG = urlsplit(
    os.environ.get("POSTROOM_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postroom")
)


def unit_command(unit: str) -> list[str]:
    """The ExecStart of deploy/systemd/`unit`, with this virtualenv's programs."""
    text = (DEPLOY / "systemd" / unit).read_text().replace("\\\n", " ")
    [line] = [line for line in text.splitlines() if line.startswith("ExecStart=")]
    program, *arguments = shlex.split(line.removeprefix("ExecStart="))
    assert program.startswith(INSTALLED_BIN), f"{unit} runs {program}, not from the venv"
    return [str(Path(sys.executable).parent / program.removeprefix(INSTALLED_BIN)), *arguments]


def option_set(command: list[str], option: str, value: str) -> list[str]:
    """`command` with `option`'s value replaced (it must be there: what is tested is the unit)."""
    index = command.index(option)
    return [*command[: index + 1], value, *command[index + 2 :]]


def example_environment(**overrides: str) -> dict[str, str]:
    """This process's environment without its Postroom settings, plus the example's settings
    (deploy/postroom.env.example), plus `overrides` (POSTROOM_ included in their names)."""
    settings: dict[str, str] = {}
    for line in (DEPLOY / "postroom.env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.strip().partition("=")
            settings[name] = value
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("POSTROOM_") and name != "DJANGO_SETTINGS_MODULE"
    }
    return {**inherited, **settings, **overrides}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    port: int = 0

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"http://{LOOPBACK}:{self.port}", headers={"Host": PUBLIC_HOST}, timeout=30
        )


@dataclass
class Services:
    """The processes a test started, each writing to its own log file; all stopped at the end
    as systemd stops them (SIGTERM, then SIGKILL after the timeout)."""

    directory: Path
    started: list[Service] = field(default_factory=list)

    def start(self, name: str, command: list[str], env: dict[str, str], port: int = 0) -> Service:
        log = self.directory / f"{name}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
        service = Service(name, process, log, port)
        self.started.append(service)
        return service

    def stop_all(self) -> None:
        for service in self.started:
            if service.process.poll() is None:
                service.process.send_signal(signal.SIGTERM)
        for service in self.started:
            try:
                service.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                service.process.kill()
                service.process.wait()

    def logs(self) -> str:
        """Every process's output, for a failing assertion's message."""
        return "\n".join(f"--- {s.name} ---\n{s.output()[-3000:]}" for s in self.started)


@contextmanager
def services_running(directory: Path) -> Iterator[Services]:
    services = Services(directory)
    try:
        yield services
    finally:
        services.stop_all()


def wait_for_http(
    service: Service, path: str, *, status: int, services: Services
) -> httpx.Response:
    """GET `path` until it answers `status`; fail with every log if the process dies or the
    deadline passes."""
    deadline = time.monotonic() + START_TIMEOUT
    last = "no answer"
    with service.client() as client:
        while time.monotonic() < deadline:
            if service.process.poll() is not None:
                break
            try:
                response = client.get(path)
            except httpx.TransportError as error:
                last = repr(error)
            else:
                if response.status_code == status:
                    return response
                last = f"{response.status_code} {response.text[:500]}"
            time.sleep(0.1)
    raise AssertionError(
        f"{service.name} did not answer {status} to {path} (last: {last})\n{services.logs()}"
    )


def poll_until(condition: Callable[[], bool], *, what: str, timeout: float = 60.0) -> None:
    """Wait for `condition`; a deadline against a hang, not a measure of speed."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


MetricKey = tuple[str, tuple[tuple[str, str], ...]]


def metric_samples(text: str) -> dict[MetricKey, float]:
    """(sample name, sorted labels) -> value, from a page in the Prometheus text format."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def postgres_url(database: str) -> str:
    auth = _PG.username or "postgres"
    if _PG.password:
        auth += f":{_PG.password}"
    return f"postgres://{auth}@{_PG.hostname or LOOPBACK}:{_PG.port or 5432}/{database}"


@contextmanager
def fresh_postgres_database(prefix: str) -> Iterator[str]:
    """A new, empty database on the test PostgreSQL (POSTROOM_TEST_POSTGRES_URL), dropped at
    the end; its URL. A server that does not answer fails the test saying what to start."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        admin = psycopg.connect(postgres_url("postgres"), autocommit=True, connect_timeout=5)
    except psycopg.Error as error:
        pytest.fail(
            f"PostgreSQL at {_PG.hostname}:{_PG.port or 5432} did not answer ({error}). Start it "
            "with trust auth for 'postgres' (apt-get install postgresql), or point "
            "POSTROOM_TEST_POSTGRES_URL at one.",
            pytrace=False,
        )
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_url(name)
    finally:
        with psycopg.connect(postgres_url("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
