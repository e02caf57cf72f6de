"""SQLite's writers take turns (postroom/core/sqlite): a writer that commits and begins again
at once does not keep the write lock from one that waits, as it did while SQLite's busy
handler, sleeping between its tries, was all the waiting there was."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from django.db import connection, transaction

pytestmark = pytest.mark.django_db(transaction=True)

# How long a test gives a thread that should have finished at once, and the hot writer's
# longest run: far more than either needs when the turn works.
GIVE_UP_SECONDS = 10


@pytest.fixture
def probe_table() -> Iterator[None]:
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE turn_probe (id INTEGER PRIMARY KEY, writer TEXT)")
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE turn_probe")


def _insert(writer: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO turn_probe (writer) VALUES (%s)", [writer])


def _in_thread(target: Callable[[], None]) -> threading.Thread:
    """`target` in a thread of its own, with its own connection, closed at the end."""

    def run() -> None:
        try:
            target()
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_waiting_writer_is_not_overtaken_by_one_that_writes_again_at_once(probe_table):
    commits: list[int] = []
    has_started = threading.Event()
    is_done = threading.Event()

    def write_without_pause() -> None:
        # As the SMTP listener does under load: one transaction after another.
        give_up_at = time.monotonic() + GIVE_UP_SECONDS
        while not is_done.is_set() and time.monotonic() < give_up_at:
            with transaction.atomic():
                _insert("hot")
            commits.append(1)
            if len(commits) == 20:
                has_started.set()

    hot = _in_thread(write_without_pause)
    assert has_started.wait(GIVE_UP_SECONDS)
    asked_at = len(commits)
    with transaction.atomic():
        overtaken = len(commits) - asked_at
        _insert("waiting")
    is_done.set()
    hot.join(GIVE_UP_SECONDS)

    # One commit may finish while the waiting writer asks; a few more on a busy machine.
    assert overtaken <= 5, f"the hot writer committed {overtaken} times first"


def test_a_rolled_back_transaction_lets_the_next_writer_in(probe_table):
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        _insert("rolled back")
        1 / 0  # noqa: B018

    def write() -> None:
        with transaction.atomic():
            _insert("next")

    other = _in_thread(write)
    other.join(GIVE_UP_SECONDS)
    assert not other.is_alive()
