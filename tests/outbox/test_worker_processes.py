"""Crash safety with real processes: `postroom worker` subprocesses on the test database.

These are the outbox's promises: nothing accepted is lost, several workers never send a
message twice, and a `kill -9` duplicates at most the messages that were in flight, each
with its own Message-ID unchanged.
"""

from __future__ import annotations

import collections
import email
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from email.policy import default as default_policy

import pytest
from django.db import transaction

from postroom.outbox.models import Message, MessageStatus
from tests.outbox.worker_harness import (
    company_smtp_at,
    enqueue,
    wait_until,
    worker_process_env,
    worker_process_start,
)
from tests.support.smtpd import ScriptedSmtpServer, SmtpdScript

pytestmark = pytest.mark.django_db(transaction=True)

CONNECTIONS = 4


def start_worker(name: str) -> subprocess.Popen[bytes]:
    return worker_process_start(name, "--batch", "50")


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in started:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def sent_count() -> int:
    return Message.objects.filter(status=MessageStatus.SENT).count()


def message_ids(server: ScriptedSmtpServer) -> collections.Counter[str]:
    return collections.Counter(
        email.message_from_bytes(m.content, policy=default_policy)["Message-ID"]
        for m in list(server.messages)
    )


def test_two_workers_racing_send_each_message_exactly_once(
    workers: list[subprocess.Popen[bytes]],
) -> None:
    with ScriptedSmtpServer(SmtpdScript()) as server:
        company_smtp_at(server.port, smtp_max_connections=CONNECTIONS)
        with transaction.atomic():
            queued = {enqueue(f"user{n}@example.net").message_id for n in range(400)}
        workers.extend([start_worker("racer-1"), start_worker("racer-2")])
        wait_until(lambda: sent_count() == 400, timeout=60, what="all 400 sent")
        received = message_ids(server)

    assert set(received) == queued
    assert max(received.values()) == 1, "a message was sent twice"
    claimed_by = set(Message.objects.values_list("attempts__worker", flat=True))
    assert claimed_by == {"racer-1", "racer-2"}, "both workers should have taken a share"


@pytest.mark.parametrize("connections", [1, CONNECTIONS])
def test_kill_9_in_the_middle_loses_nothing_and_duplicates_only_messages_in_flight(
    workers: list[subprocess.Popen[bytes]], connections: int
) -> None:
    total = 2000
    with ScriptedSmtpServer(SmtpdScript()) as server:
        company_smtp_at(server.port, smtp_max_connections=connections)
        with transaction.atomic():  # one commit for the lot: the test is not about enqueueing
            queued = {enqueue(f"user{n}@example.net").message_id for n in range(total)}
        first = start_worker("doomed")
        workers.append(first)
        wait_until(lambda: len(server.messages) >= total // 3, timeout=60, what="a third sent")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        assert len(server.messages) < total, "the worker finished before it could be killed"

        # The dead worker's lease must run out before its messages are claimable again;
        # shorten it for the test instead of waiting ten minutes.
        Message.objects.filter(status=MessageStatus.SENDING).update(
            next_attempt_at=Message.objects.order_by("id").values("created_at")[:1]
        )
        workers.append(start_worker("successor"))
        wait_until(lambda: sent_count() == total, timeout=90, what="all sent after restart")
        received = message_ids(server)

    assert set(received) == queued, "a message was lost"
    duplicates = {message_id: n for message_id, n in received.items() if n > 1}
    # Each connection has at most one message the server took but whose "sent" the worker
    # had not yet committed; those go again, with their Message-ID unchanged.
    assert len(duplicates) <= connections, duplicates
    assert all(n == 2 for n in duplicates.values())


def test_a_message_is_on_disk_once_enqueue_returns_even_if_the_process_is_killed() -> None:
    script = (
        "import django, os, sys; django.setup();"
        "from tests.outbox.worker_harness import enqueue;"
        "message = enqueue('bob@example.net', subject='Survives kill -9');"
        "print(message.message_id, flush=True);"
        "import time; time.sleep(60)"
    )
    env = worker_process_env()
    env["DJANGO_SETTINGS_MODULE"] = "postroom.settings"
    env["PYTHONPATH"] = os.getcwd()
    process = subprocess.Popen(
        [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    message_id = process.stdout.readline().strip()
    process.send_signal(signal.SIGKILL)  # the instant enqueue returned
    process.wait(timeout=10)

    assert message_id, "the enqueueing process printed nothing"
    message = Message.objects.get(message_id=message_id)
    assert message.status == MessageStatus.QUEUED
    assert message.recipients.get().address == "bob@example.net"
    time.sleep(0)  # nothing else to wait for: the row was durable before the print


def test_sigterm_finishes_what_is_in_flight_and_releases_the_rest(
    workers: list[subprocess.Popen[bytes]],
) -> None:
    total = 1000
    with ScriptedSmtpServer(SmtpdScript()) as server:
        company_smtp_at(server.port, smtp_max_connections=CONNECTIONS)
        with transaction.atomic():
            queued = {enqueue(f"user{n}@example.net").message_id for n in range(total)}
        worker = start_worker("graceful")
        workers.append(worker)
        wait_until(lambda: len(server.messages) >= 100, timeout=60, what="sending to start")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
        sent_before_restart = len(server.messages)

        assert not Message.objects.filter(status=MessageStatus.SENDING).exists(), (
            "a stopped worker must leave no message claimed"
        )
        assert sent_count() == sent_before_restart, "every message sent was recorded as sent"
        workers.append(start_worker("after-restart"))
        wait_until(lambda: sent_count() == total, timeout=90, what="all sent after restart")
        received = message_ids(server)

    assert set(received) == queued
    assert max(received.values()) == 1, "a graceful stop must not cause a duplicate"
