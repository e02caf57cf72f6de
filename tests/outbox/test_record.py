"""Recording outcomes against the real database: a server resumed while its mail was in flight."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from postroom.outbox.claim import ClaimedMessage, message_claim_batch
from postroom.outbox.models import Classification, Message, MessageStatus
from postroom.outbox.pauses import server_pause, server_resume
from postroom.outbox.record import MessageResult, RecipientResult, delivery_record
from tests.outbox.message_factories import message_queue

pytestmark = pytest.mark.django_db

SERVER = "smtp.example.com:587"


def refused_by_the_server() -> tuple[Message, ClaimedMessage]:
    """Claim a message, and pause its server as the worker does when the login is refused."""
    message = message_queue()
    [claimed] = message_claim_batch(worker="w", limit=1)
    server_pause(server=SERVER, code=535, reason="535 5.7.8 Authentication failed")
    return message, claimed


def record_config_outcome(claimed: ClaimedMessage) -> None:
    delivery_record(
        results=[
            MessageResult(
                message=claimed,
                server=SERVER,
                stage="auth",
                recipients=[
                    RecipientResult(
                        recipient=recipient, classification=Classification.CONFIG, code=535
                    )
                    for recipient in claimed.recipients
                ],
            )
        ],
        worker="w",
    )


def test_mail_held_by_a_paused_server_waits_for_the_resume() -> None:
    message, claimed = refused_by_the_server()
    record_config_outcome(claimed)
    message.refresh_from_db()
    assert message.status == MessageStatus.QUEUED
    assert message.next_attempt_at > timezone.now() + dt.timedelta(minutes=4)


def test_mail_whose_server_was_resumed_before_its_outcome_was_recorded_goes_at_once() -> None:
    message, claimed = refused_by_the_server()
    # An administrator fixed the password and resumed while the worker still held the
    # message: server_resume could not move it (it was being sent), so recording does.
    server_resume(server=SERVER)
    record_config_outcome(claimed)
    message.refresh_from_db()
    assert message.status == MessageStatus.QUEUED
    assert message.next_attempt_at <= timezone.now()
