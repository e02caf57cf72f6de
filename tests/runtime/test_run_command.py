"""`postroom run` as a user starts it: a real process, a real data directory, real ports."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.core.processes import (
    POSTROOM,
    children,
    is_running,
    postroom_command,
    postroom_env,
    postroom_running,
    postroom_shell,
    read_until,
)
from tests.outbox.worker_harness import wait_until


def _store_smtp_password(env: dict[str, str], password: str) -> None:
    code = (
        "from postroom.company.services import SmtpSettingsInput, company_smtp_update;"
        "company_smtp_update(actor=None, values=SmtpSettingsInput(smtp_host='smtp.example.com',"
        f" smtp_port=587, smtp_login='mailer', smtp_password={password!r}))"
    )
    postroom_shell(env, code)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "var"


def test_run_refuses_to_start_when_the_secret_key_is_wrong(data_dir: Path) -> None:
    _store_smtp_password(
        postroom_env(data_dir, POSTROOM_SECRET_KEY="the-key-that-encrypted-it"), "s3cret-Pa55"
    )

    result = subprocess.run(
        [*POSTROOM, "run"],
        env=postroom_env(data_dir, POSTROOM_SECRET_KEY="another-key"),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "SMTP Authentication Password cannot be decrypted" in result.stderr
    assert "POSTROOM_SECRET_KEY" in result.stderr
    assert "s3cret-Pa55" not in result.stdout + result.stderr


def test_run_refuses_to_start_when_the_key_file_was_lost(data_dir: Path) -> None:
    _store_smtp_password(postroom_env(data_dir), "s3cret-Pa55")  # creates var/secret.key
    (data_dir / "secret.key").unlink()

    result = subprocess.run(
        [*POSTROOM, "run"], env=postroom_env(data_dir), capture_output=True, text=True, timeout=60
    )

    assert result.returncode != 0
    assert "cannot be decrypted" in result.stderr


def test_forget_secrets_clears_unreadable_passwords_so_postroom_starts_again(
    data_dir: Path,
) -> None:
    _store_smtp_password(postroom_env(data_dir, POSTROOM_SECRET_KEY="old-key"), "s3cret-Pa55")
    env = postroom_env(data_dir, POSTROOM_SECRET_KEY="new-key")

    forgotten = subprocess.run(
        [*POSTROOM, "forget-secrets", "--yes"], env=env, capture_output=True, text=True, check=True
    )
    assert "SMTP Authentication Password" in forgotten.stdout

    check = subprocess.run(
        [
            *POSTROOM,
            "shell",
            "-c",
            "from postroom.company.services import company_verify_secrets;"
            "company_verify_secrets(); print('ok')",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert check.stdout.strip().splitlines()[-1] == "ok"


@pytest.fixture
def running_postroom(data_dir: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    env = postroom_env(data_dir)
    with postroom_running(env) as process:
        yield process, env


def test_first_run_creates_an_admin_with_a_one_time_password_and_serves_the_site(
    running_postroom: tuple[subprocess.Popen[str], dict[str, str]],
) -> None:
    process, env = running_postroom
    output = read_until(process, r"Press Ctrl\+C")
    match = re.search(r"as 'admin' with password: (\S+)", output)
    assert match, output
    password = match.group(1)
    assert len(password) >= 16
    assert (Path(env["POSTROOM_DATA_DIR"]) / "secret.key").stat().st_mode & 0o777 == 0o600

    url = f"http://127.0.0.1:{env['POSTROOM_HTTP_PORT']}/login/"
    for _ in range(100):
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                assert response.status == 200
                assert b"Log in to Postroom" in response.read()
                break
        except OSError:
            time.sleep(0.1)
    else:
        raise AssertionError("the site never answered")
    with socket.create_connection(
        ("127.0.0.1", int(env["POSTROOM_CAPTURE_PORT"])), timeout=5
    ) as smtp:
        assert smtp.recv(100).startswith(b"220")


def test_the_worker_refuses_to_start_when_the_secret_key_is_wrong(data_dir: Path) -> None:
    _store_smtp_password(postroom_env(data_dir, POSTROOM_SECRET_KEY="the-right-key"), "s3cret-Pa55")

    result = subprocess.run(
        [*POSTROOM, "worker"],
        env=postroom_env(data_dir, POSTROOM_SECRET_KEY="a-wrong-key"),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "cannot be decrypted" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "taken", ["POSTROOM_HTTP_PORT", "POSTROOM_CAPTURE_PORT", "POSTROOM_SMTPD_PORT"]
)
def test_a_taken_port_is_refused_saying_which_setting_to_change(data_dir: Path, taken: str) -> None:
    env = postroom_env(data_dir)
    with socket.create_server(("127.0.0.1", int(env[taken]))):
        result = postroom_command(env, "run")
    said = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    assert f"set {taken}" in said
    assert "needs its own POSTROOM_HTTP_PORT, POSTROOM_CAPTURE_PORT and POSTROOM_SMTPD_PORT" in said


def test_the_worker_delivers_from_its_own_process_comes_back_and_ends_with_run(
    running_postroom: tuple[subprocess.Popen[str], dict[str, str]],
) -> None:
    process, env = running_postroom
    read_until(process, r"Press Ctrl\+C")
    (worker,) = children(process.pid)
    assert "worker" in Path(f"/proc/{worker}/cmdline").read_text()
    _send(env, "From the worker's process")
    assert _delivered(env) == ["From the worker's process"]

    os.kill(worker, signal.SIGKILL)  # as the kernel's out-of-memory killer would
    read_until(process, rf"The outbox worker \(pid {worker}\) ended")
    wait_until(lambda: children(process.pid) not in ([], [worker]), timeout=30, what="a worker")
    (worker,) = children(process.pid)
    _send(env, "From the worker started again")
    assert _delivered(env, count=2)[1] == "From the worker started again"

    process.kill()
    process.wait()
    wait_until(lambda: not is_running(worker), timeout=30, what="the worker to end with run")


def _send(env: dict[str, str], subject: str) -> None:
    sent = postroom_command(
        env, "send", "--from", "erp@acme.example", "--to", "bob@example.org",
        "--subject", subject, "--body", "Hello",
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr


def _delivered(env: dict[str, str], count: int = 1) -> list[str]:
    """The subjects in the Sandbox capture, once it holds `count` messages."""
    database = Path(env["POSTROOM_DATA_DIR"]) / "postroom.sqlite3"

    def subjects() -> list[str]:
        with contextlib.closing(sqlite3.connect(database)) as read:
            query = "SELECT subject FROM inbox_capturedmessage ORDER BY id"
            return [row[0] for row in read.execute(query)]

    wait_until(lambda: len(subjects()) >= count, timeout=30, what="the worker to deliver")
    return subjects()
