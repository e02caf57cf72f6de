"""Bulk mail: one template row, one small row per recipient, rendered by the worker."""

from __future__ import annotations

import email
from email.policy import default as default_policy

import pytest

from postroom.core.errors import ValidationError
from postroom.mail.addresses import parse_address
from postroom.outbox.bulk import bulk_enqueue, bulk_template_store, message_bytes
from postroom.outbox.models import BulkTemplate, Lane, Message, MessageStatus, Source
from tests.outbox.worker_harness import company_smtp_at, running_worker, wait_until
from tests.support.smtpd import ScriptedSmtpServer, SmtpdScript


def store_template(**changes: object) -> BulkTemplate:
    fields: dict[str, object] = {
        "from_": parse_address("Acme News <news@example.com>"),
        "subject": "Hello {{ first_name }}, our November news",
        "text": "Dear {{ first_name }},\n\nHere is what is new.\n",
        "html": "<p>Dear {{ first_name }},</p><p>Here is what is new.</p>",
        **changes,
    }
    return bulk_template_store(**fields)  # type: ignore[arg-type]


@pytest.mark.django_db
def test_an_identical_template_is_stored_once() -> None:
    assert store_template().pk == store_template().pk
    assert store_template(subject="Another subject").pk != store_template().pk


@pytest.mark.django_db
def test_a_template_with_a_forbidden_header_is_refused() -> None:
    with pytest.raises(ValidationError):
        store_template(headers={"Bcc": "spy@example.net"})


@pytest.mark.django_db
def test_bulk_messages_store_no_bytes_and_render_the_same_bytes_every_time() -> None:
    template = store_template()
    recipients = [
        (parse_address(f"Member {n} <m{n}@example.net>"), {"first_name": f"Ann{n}"})
        for n in range(3)
    ]
    assert bulk_enqueue(template=template, recipients=recipients, source=Source.CAMPAIGN) == 3

    message = Message.objects.get(recipients__address="m1@example.net")
    assert message.raw is None
    assert message.lane == Lane.BULK
    first, again = message_bytes(message), message_bytes(Message.objects.get(pk=message.pk))
    assert first == again
    parsed = email.message_from_bytes(first, policy=default_policy)
    assert parsed["Subject"] == "Hello Ann1, our November news"
    assert parsed["To"] == "Member 1 <m1@example.net>"
    assert parsed["Message-ID"] == message.message_id
    # The Outbox and the contact's history show the subject the recipient got, not the
    # template's "Hello {{ first_name }}".
    assert message.subject == "Hello Ann1, our November news"


@pytest.mark.django_db(transaction=True)
def test_the_worker_sends_bulk_messages_rendered_from_their_template() -> None:
    template = store_template()
    recipients = [
        (parse_address(f"m{n}@example.net"), {"first_name": f"Ann{n}"}) for n in range(40)
    ]
    with ScriptedSmtpServer(SmtpdScript()) as server:
        company_smtp_at(server.port)
        bulk_enqueue(template=template, recipients=recipients, source=Source.CAMPAIGN)
        with running_worker():
            wait_until(
                lambda: Message.objects.filter(status=MessageStatus.SENT).count() == 40,
                what="all 40 sent",
            )
        received = {m.rcpt_tos[0]: m.content for m in server.messages}

    assert len(received) == 40
    for message in Message.objects.all():
        address = message.recipients.get().address
        assert received[address] == message_bytes(message)
