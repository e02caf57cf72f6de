"""SQLite's writers take turns (postroom/core/sqlite): a writer that commits and begins again
at once does not keep the write lock from one that waits, as it did while SQLite's busy
handler, sleeping between its tries, was all the waiting there was."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.synchronize import Event as EventType

import django
import pytest
from django.db import connection, transaction

pytestmark = pytest.mark.django_db(transaction=True)

# How long a test gives a writer that should have finished at once, and the hot writer's
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


def _scalar(sql: str, params: list[object] | None = None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


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


def _write_without_pause(database: str, stop: EventType) -> None:
    """One transaction after another, as the SMTP listener's under load, in a process of its
    own as the listener is (threads of one process would also wait for the interpreter's
    lock, which is not what is tested)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "postroom.settings")
    django.setup()
    connection.settings_dict["NAME"] = database
    give_up_at = time.monotonic() + GIVE_UP_SECONDS
    while not stop.is_set() and time.monotonic() < give_up_at:
        with transaction.atomic():
            _insert("hot")


@pytest.mark.parametrize("is_transaction", [True, False], ids=["transaction", "statement"])
def test_a_waiting_writer_is_not_overtaken_by_one_that_writes_again_at_once(
    probe_table, is_transaction
):
    spawn = multiprocessing.get_context("spawn")
    stop = spawn.Event()
    hot = spawn.Process(
        target=_write_without_pause, args=(connection.settings_dict["NAME"], stop), daemon=True
    )
    hot.start()
    try:
        give_up_at = time.monotonic() + GIVE_UP_SECONDS * 3  # the process imports Django first
        while _scalar("SELECT COUNT(*) FROM turn_probe") < 20:
            assert time.monotonic() < give_up_at, "the hot writer never started"
            time.sleep(0.05)
        last_before = _scalar("SELECT MAX(id) FROM turn_probe")
        if is_transaction:
            with transaction.atomic():
                _insert("waiting")
        else:  # a write on its own, outside a transaction, as an API key's rate count is
            _insert("waiting")
    finally:
        stop.set()
        hot.join(GIVE_UP_SECONDS)
    overtaken = _scalar(
        "SELECT COUNT(*) FROM turn_probe WHERE writer = 'hot' AND id > %s"
        " AND id < (SELECT id FROM turn_probe WHERE writer = 'waiting')",
        [last_before],
    )

    # The hot writer's transaction under way when the other asked, and any it began in the
    # instants between the other's reading MAX(id) and its asking: 1 in every run seen. A
    # lone flock let it commit up to hundreds of times first (the waiter woken, and not run
    # before the hot writer took the lock again); SQLite's busy handler alone, thousands.
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
