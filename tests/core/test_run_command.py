"""`postroom run` as a user starts it: a real process, a real data directory, real ports."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

POSTROOM = [sys.executable, "-m", "postroom"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("POSTROOM_") and key != "DJANGO_SETTINGS_MODULE"
    }
    env.update(
        POSTROOM_DATA_DIR=str(data_dir),
        POSTROOM_HTTP_PORT=str(_free_port()),
        POSTROOM_CAPTURE_PORT=str(_free_port()),
        **extra,
    )
    return env


def _store_smtp_password(env: dict[str, str], password: str) -> None:
    subprocess.run([*POSTROOM, "migrate", "--verbosity", "0"], env=env, check=True)
    code = (
        "from postroom.company.services import company_smtp_update;"
        f"company_smtp_update(actor=None, smtp_host='smtp.example.com', smtp_port=587,"
        f" smtp_login='mailer', smtp_password={password!r})"
    )
    subprocess.run([*POSTROOM, "shell", "-c", code], env=env, check=True)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "var"


def test_run_refuses_to_start_when_the_secret_key_is_wrong(data_dir: Path) -> None:
    _store_smtp_password(
        _env(data_dir, POSTROOM_SECRET_KEY="the-key-that-encrypted-it"), "s3cret-Pa55"
    )

    result = subprocess.run(
        [*POSTROOM, "run"],
        env=_env(data_dir, POSTROOM_SECRET_KEY="another-key"),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "SMTP Authentication Password cannot be decrypted" in result.stderr
    assert "POSTROOM_SECRET_KEY" in result.stderr
    assert "s3cret-Pa55" not in result.stdout + result.stderr


def test_run_refuses_to_start_when_the_key_file_was_lost(data_dir: Path) -> None:
    _store_smtp_password(_env(data_dir), "s3cret-Pa55")  # creates var/secret.key
    (data_dir / "secret.key").unlink()

    result = subprocess.run(
        [*POSTROOM, "run"], env=_env(data_dir), capture_output=True, text=True, timeout=60
    )

    assert result.returncode != 0
    assert "cannot be decrypted" in result.stderr


def test_forget_secrets_clears_unreadable_passwords_so_postroom_starts_again(
    data_dir: Path,
) -> None:
    _store_smtp_password(_env(data_dir, POSTROOM_SECRET_KEY="old-key"), "s3cret-Pa55")
    env = _env(data_dir, POSTROOM_SECRET_KEY="new-key")

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
    env = _env(data_dir)
    process = subprocess.Popen(
        [*POSTROOM, "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        yield process, env
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def _read_until(process: subprocess.Popen[str], pattern: str, timeout: float = 60) -> str:
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
    raise AssertionError(f"postroom run did not print {pattern!r}; it printed:\n{seen}")


def test_first_run_creates_an_admin_with_a_one_time_password_and_serves_the_site(
    running_postroom: tuple[subprocess.Popen[str], dict[str, str]],
) -> None:
    process, env = running_postroom
    output = _read_until(process, r"Press Ctrl\+C")
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
    _store_smtp_password(_env(data_dir, POSTROOM_SECRET_KEY="the-right-key"), "s3cret-Pa55")

    result = subprocess.run(
        [*POSTROOM, "worker"],
        env=_env(data_dir, POSTROOM_SECRET_KEY="a-wrong-key"),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "cannot be decrypted" in result.stderr
    assert "Traceback" not in result.stderr
