"""The data directory and the SQLite files are private to Postroom's user (issue 7, finding 6).

Started from a shell with the usual umask 022, Postroom must still create its directory 0700
and its files 0600 (the database with its -wal and -shm, the key), close a directory an
earlier version left open, and say plainly when it cannot.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.core.processes import postroom_command, postroom_env, postroom_running, read_until

USUAL_UMASK = 0o022  # what most shells have: new files readable by everyone
DATABASE = "postroom.sqlite3"
CHATTR = shutil.which("chattr")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _modes(data_dir: Path) -> dict[str, str]:
    return {path.name: f"{_mode(path):o}" for path in sorted(data_dir.iterdir())}


def _open_entries(data_dir: Path) -> dict[str, str]:
    """Entries others could use: files not 0600, anything else (the worker's wake-up
    socket, the imports directory) not 0700."""
    return {
        name: mode
        for name, mode in _modes(data_dir).items()
        if mode != ("600" if (data_dir / name).is_file() else "700")
    }


def _wait_for_site(port: str) -> None:
    for _ in range(200):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the site never answered")


def test_a_first_run_creates_the_directory_and_every_file_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    env = postroom_env(data_dir)
    with postroom_running(env, umask=USUAL_UMASK) as process:
        read_until(process, r"Press Ctrl\+C")
        _wait_for_site(env["POSTROOM_HTTP_PORT"])
        # The worker holds its connection, so SQLite's write-ahead log and shared memory
        # files exist now, next to the database.
        names = {path.name for path in data_dir.iterdir()}
        assert {DATABASE, f"{DATABASE}-wal", f"{DATABASE}-shm", "secret.key"} <= names
        assert f"{_mode(data_dir):o}" == "700"
        assert _open_entries(data_dir) == {}, _modes(data_dir)


def test_an_open_data_directory_from_an_earlier_start_is_closed(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    env = postroom_env(data_dir)
    postroom_command(env, "migrate", "--verbosity", "0", umask=USUAL_UMASK)
    data_dir.chmod(0o755)  # as an earlier version, or an administrator by hand, left them
    for path in data_dir.iterdir():
        path.chmod(0o644)

    result = postroom_command(env, "migrate", "--verbosity", "0", umask=USUAL_UMASK)

    assert result.returncode == 0, result.stderr
    assert f"{_mode(data_dir):o}" == "700"
    assert _open_entries(data_dir) == {}, _modes(data_dir)
    assert "Warning" not in result.stderr


@pytest.fixture
def immutable_open_dir(tmp_path: Path) -> Iterator[Path]:
    """A data directory open to everyone that not even root may chmod (`chattr +i`), as one
    owned by another user would be to Postroom's user."""
    if CHATTR is None:
        pytest.fail("chattr is missing: install e2fsprogs", pytrace=False)
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    data_dir.chmod(0o755)
    subprocess.run([CHATTR, "+i", str(data_dir)], check=True)
    try:
        yield data_dir
    finally:
        subprocess.run([CHATTR, "-i", str(data_dir)], check=True)


def test_a_directory_that_cannot_be_closed_is_reported_with_what_to_do(
    immutable_open_dir: Path,
) -> None:
    env = postroom_env(immutable_open_dir, POSTROOM_SECRET_KEY="a-key-from-the-environment")

    result = postroom_command(env, "check", umask=USUAL_UMASK)

    assert result.returncode == 0, result.stderr  # a warning, not a refusal to start
    assert f"The data directory {immutable_open_dir} can be read by other users" in result.stderr
    assert "(mode 755)" in result.stderr
    assert f"run `chmod 700 {immutable_open_dir}`" in result.stderr
