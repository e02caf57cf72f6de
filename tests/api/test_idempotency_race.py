"""Two requests with one Idempotency-Key at the same moment: one message, and the request that
lost the race learns it (200 for the same message, 409 for another), never a second 202.

Runs on SQLite in `make test` and again on PostgreSQL (`make test-postgres`).

Within one process the API's writes take turns (postroom.outbox.batch.WRITE_TURN): the two
requests are stored in one group, the second a replay of the first, or one after the other,
the second finding the first's key. The hold below (on `pre_save`, which the API's multi-row
insert does not send) applies when messages are inserted one by one: after a key was stored
by another process since the lookup.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.db.models.signals import pre_save

from postroom.accounts.models import ApiScope
from postroom.outbox.models import Message
from tests.api.conftest import ApiClient, KeyMaker

pytestmark = pytest.mark.django_db(transaction=True)

SEND = "/api/v1/messages"


@pytest.fixture
def both_requests_insert_together() -> Iterator[None]:
    """Hold each request at its insert until the other one got there too, so both have looked
    the key up and found nothing: the interleaving that produced two 202s.

    On SQLite the first insert holds the database's write lock, so the second request waits
    at BEGIN instead; the barrier then times out and the first goes on alone, which is the
    same race one step later (the second request's lookup already ran).
    """
    barrier = threading.Barrier(2, timeout=2)

    def wait_for_the_other(sender: Any, instance: Message, **kwargs: Any) -> None:
        if instance.idempotency_key:
            with contextlib.suppress(threading.BrokenBarrierError):  # the SQLite case above
                barrier.wait()

    pre_save.connect(wait_for_the_other, sender=Message)
    yield
    pre_save.disconnect(wait_for_the_other, sender=Message)


def race(client: ApiClient, bodies: list[dict[str, Any]]) -> list[Any]:
    responses: list[Any] = [None] * len(bodies)

    def send(index: int) -> None:
        try:
            responses[index] = client.post(SEND, bodies[index], **{"Idempotency-Key": "inv-42"})
        finally:
            connection.close()  # each thread has its own connection

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return responses


def a_message(subject: str) -> dict[str, Any]:
    return {"to": ["bob@example.org"], "subject": subject, "text": "Hello"}


def test_the_same_message_twice_at_once_is_queued_once_and_replayed_once(
    company: Any, key_make: KeyMaker, both_requests_insert_together: None
) -> None:
    _, key = key_make([ApiScope.SEND, ApiScope.READ])
    first, second = race(ApiClient(key), [a_message("Invoice 42"), a_message("Invoice 42")])
    assert sorted([first.status_code, second.status_code]) == [200, 202]
    assert first.json()["id"] == second.json()["id"]
    assert Message.objects.count() == 1


def test_another_message_with_the_same_key_at_once_is_a_conflict(
    company: Any, key_make: KeyMaker, both_requests_insert_together: None
) -> None:
    _, key = key_make([ApiScope.SEND, ApiScope.READ])
    first, second = race(ApiClient(key), [a_message("Invoice 42"), a_message("Credit note 7")])
    assert sorted([first.status_code, second.status_code]) == [202, 409]
    assert Message.objects.count() == 1
