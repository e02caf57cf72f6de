"""Single sends arriving together are stored together (one transaction, postroom.outbox.batch),
and each request is still answered with its own message, once it is committed."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection

from postroom.outbox.models import Message
from tests.api.conftest import ApiClient

pytestmark = pytest.mark.django_db(transaction=True)

SEND = "/api/v1/messages"
CLIENTS = 8  # as many as the benchmark's (docs/performance.md)


def test_sends_at_the_same_moment_each_get_their_own_message(api: ApiClient) -> None:
    start = threading.Barrier(CLIENTS, timeout=30)
    answers: list[Any] = [None] * CLIENTS

    def send(index: int) -> None:
        try:
            start.wait()
            answers[index] = api.post(
                SEND,
                {"to": [f"r{index}@example.org"], "subject": f"Invoice {index}", "text": "Hi"},
            )
        finally:
            connection.close()  # each thread has its own connection

    threads = [threading.Thread(target=send, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [answer.status_code for answer in answers] == [202] * CLIENTS
    bodies = [answer.json() for answer in answers]
    assert [body["subject"] for body in bodies] == [f"Invoice {i}" for i in range(CLIENTS)]
    assert [body["recipients"][0]["address"] for body in bodies] == [
        f"r{i}@example.org" for i in range(CLIENTS)
    ]
    stored = {message.pk: message.subject for message in Message.objects.all()}
    assert stored == {body["id"]: body["subject"] for body in bodies}
