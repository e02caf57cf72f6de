"""Posting deliveries to a real HTTP receiver on 127.0.0.1: signatures, retries, giving up."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from postroom.accounts.models import User
from postroom.core.errors import ValidationError
from postroom.core.secrets import secret_encrypt
from postroom.outbox.models import Event, EventKind
from postroom.webhooks import signing
from postroom.webhooks.delivery import (
    EXCERPT_CUT_MARK,
    LEASE,
    RESPONSE_EXCERPT_CHARS,
    delivery_claim_batch,
    events_fan_out,
)
from postroom.webhooks.models import Delivery, DeliveryAttempt, DeliveryStatus, Endpoint
from postroom.webhooks.services import (
    delivery_resend,
    endpoint_create,
    endpoint_secret_rotate,
    endpoint_send_test,
)
from tests.webhooks.conftest import dispatch_due, enqueue_message, is_signed_with
from tests.webhooks.receiver import Answer, Receiver

pytestmark = pytest.mark.django_db


def seconds_until_next_attempt(delivery: Delivery, since: dt.datetime) -> float:
    assert delivery.next_attempt_at is not None
    return (delivery.next_attempt_at - since).total_seconds()


def make_due(delivery: Delivery) -> None:
    """Skip the backoff wait by editing the schedule, as time passing would."""
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())


def test_a_queued_message_reaches_the_receiver_signed(admin: User, receiver: Receiver) -> None:
    endpoint, secret = endpoint_create(actor=admin, url=receiver.url, is_internal_allowed=True)
    message = enqueue_message()
    events_fan_out()
    assert dispatch_due() == [DeliveryStatus.SUCCEEDED]

    [request] = receiver.requests
    event = Event.objects.get(kind=EventKind.MESSAGE_QUEUED)
    assert request.path == "/hooks/postroom"
    assert request.headers["webhook-id"] == f"evt_{event.pk}"
    assert request.headers["user-agent"] == "Postroom-Webhooks/1"
    assert request.headers["content-type"] == "application/json"
    assert is_signed_with(secret, request)
    assert not is_signed_with(
        endpoint_create(actor=admin, url=receiver.url, is_internal_allowed=True)[1], request
    )
    payload = json.loads(request.body)
    assert payload["type"] == "message.queued"
    assert payload["data"]["message_id"] == message.message_id
    delivery = Delivery.objects.get(endpoint=endpoint)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 1, 200)
    assert delivery.next_attempt_at is None
    endpoint.refresh_from_db()
    assert endpoint.last_attempt_ok is True and endpoint.failing_since is None


def test_a_500_is_retried_later_with_backoff_then_succeeds(admin: User, receiver: Receiver) -> None:
    receiver.script(
        Answer(status=500, body=b"database is down"), Answer(status=503, body=b"still down")
    )
    endpoint, secret = endpoint_create(actor=admin, url=receiver.url, is_internal_allowed=True)
    enqueue_message()
    events_fan_out()

    before = timezone.now()
    assert dispatch_due() == [DeliveryStatus.PENDING]
    delivery = Delivery.objects.get()
    assert delivery.attempts == 1 and delivery.last_status_code == 500
    assert delivery.last_response == "database is down"
    assert "500" in delivery.last_error
    assert 30 <= seconds_until_next_attempt(delivery, before) < 35
    assert dispatch_due() == []  # not due yet: nothing is posted early
    endpoint.refresh_from_db()
    assert endpoint.failing_since is not None and endpoint.last_attempt_ok is False

    make_due(delivery)
    before = timezone.now()
    assert dispatch_due() == [DeliveryStatus.PENDING]
    delivery.refresh_from_db()
    assert 60 <= seconds_until_next_attempt(delivery, before) < 65  # doubled

    make_due(delivery)
    assert dispatch_due() == [DeliveryStatus.SUCCEEDED]
    assert len(receiver.requests) == 3
    # The same event each time: same id and body, a fresh timestamp and signature.
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    assert len({r.body for r in receiver.requests}) == 1
    assert all(is_signed_with(secret, r) for r in receiver.requests)
    attempts = list(DeliveryAttempt.objects.order_by("id").values_list("status_code", "is_success"))
    assert attempts == [(500, False), (503, False), (200, True)]
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None


def test_a_delivery_gives_up_after_three_days(admin: User, receiver: Receiver) -> None:
    receiver.default = Answer(status=500)
    endpoint_create(actor=admin, url=receiver.url, is_internal_allowed=True)
    enqueue_message()
    events_fan_out()
    assert dispatch_due() == [DeliveryStatus.PENDING]
    delivery = Delivery.objects.get()
    Delivery.objects.filter(pk=delivery.pk).update(
        created_at=timezone.now() - dt.timedelta(days=3), next_attempt_at=timezone.now()
    )
    assert dispatch_due() == [DeliveryStatus.FAILED]
    delivery.refresh_from_db()
    assert delivery.next_attempt_at is None
    assert "Gave up" in delivery.last_error
    assert dispatch_due() == []
    assert len(receiver.requests) == 2


def test_resend_posts_a_delivered_event_again_now(admin: User, receiver: Receiver) -> None:
    endpoint, secret = endpoint_create(actor=admin, url=receiver.url, is_internal_allowed=True)
    enqueue_message()
    events_fan_out()
    dispatch_due()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.SUCCEEDED

    delivery_resend(actor=admin, delivery=delivery)
    assert dispatch_due() == [DeliveryStatus.SUCCEEDED]
    first, again = receiver.requests
    assert first.headers["webhook-id"] == again.headers["webhook-id"]
    assert is_signed_with(secret, again)
    delivery.refresh_from_db()
    assert delivery.attempts == 2


def test_resend_gives_a_failed_delivery_one_more_attempt(admin: User, receiver: Receiver) -> None:
    receiver.script(Answer(status=500))
    endpoint_create(actor=admin, url=receiver.url, is_internal_allowed=True)
    enqueue_message()
    events_fan_out()
    delivery = Delivery.objects.get()
    Delivery.objects.filter(pk=delivery.pk).update(created_at=timezone.now() - dt.timedelta(days=4))
    assert dispatch_due() == [DeliveryStatus.FAILED]

    delivery_resend(actor=admin, delivery=delivery)
    assert dispatch_due() == [DeliveryStatus.SUCCEEDED]


def test_resend_waits_for_an_attempt_in_flight(admin: User, receiver: Receiver) -> None:
    endpoint_create(actor=admin, url=receiver.url, is_internal_allowed=True)
    enqueue_message()
    events_fan_out()
    assert len(delivery_claim_batch(limit=1, per_endpoint=1)) == 1
    with pytest.raises(ValidationError, match="being posted right now"):
        delivery_resend(actor=admin, delivery=Delivery.objects.get())


def test_a_crashed_dispatchers_delivery_is_posted_again_after_its_lease(
    admin: User, receiver: Receiver
) -> None:
    endpoint_create(actor=admin, url=receiver.url, is_internal_allowed=True)
    enqueue_message()
    events_fan_out()
    assert len(delivery_claim_batch(limit=5, per_endpoint=5)) == 1  # then the process dies
    assert dispatch_due() == []  # leased: no one else takes it
    assert dispatch_due(now=timezone.now() + LEASE + dt.timedelta(seconds=1)) == [
        DeliveryStatus.SUCCEEDED
    ]
    assert len(receiver.requests) == 1


def test_retry_after_on_a_429_postpones_the_next_attempt(admin: User, receiver: Receiver) -> None:
    receiver.script(Answer(status=429, headers={"Retry-After": "600"}))
    endpoint_create(actor=admin, url=receiver.url, is_internal_allowed=True)
    enqueue_message()
    events_fan_out()
    before = timezone.now()
    dispatch_due()
    delivery = Delivery.objects.get()
    assert 600 <= seconds_until_next_attempt(delivery, before) < 605


def test_a_redirect_is_not_followed(admin: User, receiver: Receiver) -> None:
    receiver.script(Answer(status=301, headers={"Location": "https://new.example.com/hooks"}))
    endpoint_create(actor=admin, url=receiver.url, is_internal_allowed=True)
    enqueue_message()
    events_fan_out()
    assert dispatch_due() == [DeliveryStatus.PENDING]
    assert len(receiver.requests) == 1
    delivery = Delivery.objects.get()
    assert delivery.last_status_code == 301
    assert "https://new.example.com/hooks" in delivery.last_error


def test_a_receiver_slower_than_the_timeout_is_a_failure(admin: User, receiver: Receiver) -> None:
    receiver.script(Answer(delay=1.5))
    endpoint_create(actor=admin, url=receiver.url, is_internal_allowed=True)
    enqueue_message()
    events_fan_out()
    assert dispatch_due(timeout=0.5) == [DeliveryStatus.PENDING]
    attempt = DeliveryAttempt.objects.get()
    assert attempt.status_code is None
    assert "within 0.5 s" in attempt.error
    assert attempt.duration_ms < 1400


def test_an_unreachable_endpoint_is_a_failure_with_the_reason(admin: User) -> None:
    # Port 9 (discard) is closed on loopback in the test environment.
    endpoint_create(actor=admin, url="http://127.0.0.1:9/hooks", is_internal_allowed=True)
    enqueue_message()
    events_fan_out()
    assert dispatch_due() == [DeliveryStatus.PENDING]
    assert Delivery.objects.get().last_error.startswith("Could not connect")


def test_only_a_short_marked_excerpt_of_a_failing_answer_is_kept(
    admin: User, receiver: Receiver
) -> None:
    receiver.script(Answer(status=500, body="é".encode() * 100_000))
    endpoint_create(actor=admin, url=receiver.url, is_internal_allowed=True)
    enqueue_message()
    events_fan_out()
    dispatch_due()
    delivery = Delivery.objects.get()
    assert delivery.last_response == "é" * RESPONSE_EXCERPT_CHARS + EXCERPT_CUT_MARK
    assert DeliveryAttempt.objects.get().response_excerpt == delivery.last_response


def test_a_short_failing_answer_is_kept_whole_and_unmarked(admin: User, receiver: Receiver) -> None:
    receiver.script(Answer(status=500, body=b"x" * RESPONSE_EXCERPT_CHARS))
    endpoint_create(actor=admin, url=receiver.url, is_internal_allowed=True)
    enqueue_message()
    events_fan_out()
    dispatch_due()
    assert Delivery.objects.get().last_response == "x" * RESPONSE_EXCERPT_CHARS


def test_nothing_of_a_successful_answer_is_kept(admin: User, receiver: Receiver) -> None:
    receiver.script(Answer(status=200, body=b'{"secret": "what the URL serves"}'))
    endpoint_create(actor=admin, url=receiver.url, is_internal_allowed=True)
    enqueue_message()
    events_fan_out()
    assert dispatch_due() == [DeliveryStatus.SUCCEEDED]
    assert Delivery.objects.get().last_response == ""
    assert DeliveryAttempt.objects.get().response_excerpt == ""


def test_a_test_event_is_a_ping_whatever_the_endpoint_subscribes_to(
    admin: User, receiver: Receiver
) -> None:
    endpoint, secret = endpoint_create(
        actor=admin,
        url=receiver.url,
        all_events=False,
        event_types=["message.failed"],
        is_internal_allowed=True,
    )
    endpoint_send_test(actor=admin, endpoint=endpoint)
    assert dispatch_due() == [DeliveryStatus.SUCCEEDED]
    [request] = receiver.requests
    payload = json.loads(request.body)
    assert payload["type"] == "ping"
    assert payload["id"] == request.headers["webhook-id"]
    assert payload["id"].startswith("ping_")
    assert is_signed_with(secret, request)


def test_after_a_rotation_both_secrets_sign_until_the_grace_ends(
    admin: User, receiver: Receiver
) -> None:
    endpoint, old = endpoint_create(actor=admin, url=receiver.url, is_internal_allowed=True)
    new = endpoint_secret_rotate(actor=admin, endpoint=endpoint)
    endpoint_send_test(actor=admin, endpoint=endpoint)
    dispatch_due()
    assert is_signed_with(new, receiver.requests[0]) and is_signed_with(old, receiver.requests[0])

    newest = endpoint_secret_rotate(actor=admin, endpoint=endpoint, keep_previous=False)
    endpoint_send_test(actor=admin, endpoint=endpoint)
    dispatch_due()
    assert receiver.requests[1].headers["webhook-signature"].count("v1,") == 1
    assert is_signed_with(newest, receiver.requests[1])
    assert not is_signed_with(new, receiver.requests[1])


def test_an_undecryptable_secret_fails_the_delivery_with_advice(
    admin: User, receiver: Receiver
) -> None:
    endpoint, _ = endpoint_create(actor=admin, url=receiver.url, is_internal_allowed=True)
    with override_settings(SECRET_KEY="another-key-entirely-0123456789-abcdefghij"):
        Endpoint.objects.filter(pk=endpoint.pk).update(secret_encrypted=secret_encrypt("whsec_x"))
    endpoint_send_test(actor=admin, endpoint=endpoint)
    assert dispatch_due() == [DeliveryStatus.PENDING]
    assert receiver.requests == []  # nothing unsigned is ever posted
    assert "Rotate the secret" in Delivery.objects.get().last_error


def test_the_secret_is_never_in_the_database_logs_or_audit_in_plaintext(
    admin: User, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver.script(Answer(status=500))
    endpoint, secret = endpoint_create(actor=admin, url=receiver.url, is_internal_allowed=True)
    rotated = endpoint_secret_rotate(actor=admin, endpoint=endpoint)
    enqueue_message()
    events_fan_out()
    dispatch_due()
    Delivery.objects.update(next_attempt_at=timezone.now())
    dispatch_due()

    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)  # every row of every table
    for value in (secret, rotated):
        key_part = value[len("whsec_") :]
        assert key_part not in dump.getvalue()
        assert key_part not in caplog.text
    assert "webhook.endpoint.created" in dump.getvalue()  # the audit entry is there


def documented_verifier() -> Callable[[str, dict[str, str], bytes], bool]:
    """The verification function of docs/webhooks.md, run as a reader would copy it."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "webhooks.md").read_text()
    source = re.search(r"```python\n(import base64.*?)```", text, re.DOTALL)
    assert source is not None, "docs/webhooks.md lost its Python example"
    namespace: dict[str, Any] = {}
    exec(source.group(1), namespace)  # noqa: S102 - our own documentation
    return namespace["postroom_request_is_valid"]  # type: ignore[no-any-return]


def test_the_documented_verification_accepts_postrooms_requests_only(
    admin: User, receiver: Receiver
) -> None:
    is_valid = documented_verifier()
    endpoint, secret = endpoint_create(actor=admin, url=receiver.url, is_internal_allowed=True)
    endpoint_send_test(actor=admin, endpoint=endpoint)
    dispatch_due()
    [request] = receiver.requests
    assert is_valid(secret, request.headers, request.body)
    assert not is_valid(secret, request.headers, request.body.replace(b"ping", b"pong"))
    assert not is_valid(signing.secret_generate(), request.headers, request.body)
    stale = {**request.headers, "webhook-timestamp": str(int(time.time()) - 600)}
    assert not is_valid(secret, stale, request.body)
