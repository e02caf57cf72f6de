"""Webhook test helpers: a real receiver, an independent signature check, one dispatch round."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import threading
import time
from collections.abc import Iterator

import pytest

from postroom.accounts.models import User
from postroom.mail.addresses import parse_address
from postroom.mail.message import OutgoingEmail
from postroom.outbox.enqueue import message_enqueue
from postroom.outbox.models import Message, Source
from postroom.webhooks.delivery import delivery_claim_batch, delivery_record
from postroom.webhooks.dispatcher import http_client, post_delivery
from postroom.webhooks.targets import IPAddress, Resolve, system_resolve
from tests.accounts.factories import admin_make
from tests.webhooks.receiver import ReceivedRequest, Receiver, running_receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as started:
        yield started


@pytest.fixture
def admin() -> User:
    return admin_make("root", email="root@acme.example")


def expected_signature(secret: str, request: ReceivedRequest) -> str:
    """The documented scheme, computed here without Postroom's code: HMAC-SHA256 with the
    base64-decoded part after `whsec_`, over `{webhook-id}.{webhook-timestamp}.{body}`."""
    key = base64.b64decode(secret[len("whsec_") :])
    signed = b".".join(
        [
            request.headers["webhook-id"].encode(),
            request.headers["webhook-timestamp"].encode(),
            request.body,
        ]
    )
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def is_signed_with(secret: str, request: ReceivedRequest) -> bool:
    """What a receiver checks: one of the signatures matches and the timestamp is fresh."""
    fresh = abs(int(request.headers["webhook-timestamp"]) - time.time()) < 5 * 60
    signatures = request.headers["webhook-signature"].split(" ")
    return fresh and expected_signature(secret, request) in signatures


def enqueue_message(to: str = "bob@example.net") -> Message:
    email = OutgoingEmail(
        from_=parse_address("Alice Smith <alice@example.com>"),
        to=[parse_address(to)],
        subject="Hello",
        text="Hello there.\r\n",
    )
    return message_enqueue(email=email, source=Source.API)


class ScriptedResolver:
    """A DNS server that changes its mind: each question gets the next answer, the last one
    for ever after. It records the questions, so a test can count the lookups."""

    def __init__(self, *answers: list[str]) -> None:
        self._answers = [[ipaddress.ip_address(a) for a in answer] for answer in answers]
        self.questions: list[tuple[str, int]] = []
        self._lock = threading.Lock()  # lookups run on worker threads

    def __call__(self, host: str, port: int) -> list[IPAddress]:
        with self._lock:
            self.questions.append((host, port))
            return self._answers.pop(0) if len(self._answers) > 1 else self._answers[0]


def dispatch_due(
    *, now: dt.datetime | None = None, timeout: float = 5.0, resolve: Resolve = system_resolve
) -> list[str | None]:
    """One dispatch round without the loop: claim what is due, post it for real, record it.

    It runs in the test's thread and transaction (the dispatcher's own loop, with its
    database thread, is tested in test_dispatcher.py).
    """
    claimed = delivery_claim_batch(limit=50, per_endpoint=50, now=now)

    async def post_all() -> list:  # type: ignore[type-arg]
        async with http_client(timeout=timeout, resolve=resolve) as client:
            return list(
                await asyncio.gather(*(post_delivery(client, c, timeout=timeout) for c in claimed))
            )

    outcomes = asyncio.run(post_all()) if claimed else []
    return [
        delivery_record(claimed=item, outcome=outcome)
        for item, outcome in zip(claimed, outcomes, strict=True)
    ]
