"""A capture is linked to the outbox message it is a delivery of, which decides who reads it."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from postroom.inbox import services
from postroom.inbox.models import CapturedMessage
from postroom.mail.addresses import parse_address
from postroom.mail.message import OutgoingEmail
from postroom.outbox.enqueue import message_enqueue
from postroom.outbox.models import Message, Source
from tests.accounts.factories import user_make

pytestmark = pytest.mark.django_db

_MIGRATION = importlib.import_module(
    "postroom.inbox.migrations.0002_captured_message_outbox_message"
)


def queued_by_alice() -> Message:
    alice = user_make("alice")
    return message_enqueue(
        email=OutgoingEmail(
            from_=parse_address(alice.email),
            to=[parse_address("bob@example.net")],
            subject="Hello",
            text="Hi.\n",
        ),
        source=Source.COMPOSE,
        sender_user=alice,
    )


def capture(message: Message, *, mail_from: str) -> CapturedMessage:
    return services.captured_message_create(
        raw=bytes(message.raw), mail_from=mail_from, rcpt_tos=["bob@example.net"], peer="x"
    )


def test_a_delivery_of_an_outbox_message_is_linked_to_it() -> None:
    message = queued_by_alice()
    assert capture(message, mail_from=message.envelope_from).outbox_message == message


def test_the_same_message_id_from_another_envelope_sender_is_not_linked() -> None:
    message = queued_by_alice()
    assert capture(message, mail_from="mallory@example.org").outbox_message is None


def test_mail_without_a_message_id_belongs_to_no_one() -> None:
    captured = services.captured_message_create(
        raw=b"Subject: no id\r\n\r\nHi.\r\n", mail_from="", rcpt_tos=["x@example.net"], peer=""
    )
    assert captured.outbox_message is None


def test_the_migration_links_what_was_captured_before_it() -> None:
    message = queued_by_alice()
    linked = capture(message, mail_from=message.envelope_from)
    foreign = capture(message, mail_from="mallory@example.org")
    CapturedMessage.objects.update(outbox_message=None)  # as the rows were before it

    _MIGRATION.link_captured_mail(apps, None)

    linked.refresh_from_db()
    foreign.refresh_from_db()
    assert (linked.outbox_message, foreign.outbox_message) == (message, None)
