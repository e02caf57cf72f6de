"""The Django email backend: send_mail and EmailMessage go into the outbox, byte for byte."""

from __future__ import annotations

import logging
import re
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from django.core.mail import BadHeaderError, EmailMessage, get_connection, send_mail
from django.db import transaction
from django.test import override_settings

from postroom.company.selectors import company_get
from postroom.core.errors import ValidationError
from postroom.outbox.backend import OutboxEmailBackend
from postroom.outbox.models import Lane, Message, MessageStatus, RecipientStatus, Source

BACKEND = "postroom.outbox.backend.OutboxEmailBackend"

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("outbox_backend")]


@pytest.fixture
def outbox_backend():
    with override_settings(EMAIL_BACKEND=BACKEND):
        yield


def _bare_line_feeds(raw: bytes) -> list[int]:
    return [match.start() for match in re.finditer(rb"(?<!\r)\n", raw)]


def test_send_mail_puts_one_row_in_the_outbox():
    count = send_mail(
        "Your invoice", "Please find it attached.\n", "billing@example.com", ["bob@example.org"]
    )

    assert count == 1
    message = Message.objects.get()
    assert message.status == MessageStatus.QUEUED
    assert message.source == Source.DJANGO
    assert message.lane == Lane.TRANSACTIONAL
    assert message.envelope_from == "billing@example.com"
    assert message.subject == "Your invoice"
    assert [(r.address, r.status) for r in message.recipients.all()] == [
        ("bob@example.org", RecipientStatus.QUEUED)
    ]


def test_bcc_is_in_the_envelope_but_in_no_header():
    email = EmailMessage(
        subject="Minutes",
        body="Attached.\n",
        from_email="Alice Smith <alice@example.com>",
        to=["Bob <bob@example.org>"],
        cc=["carol@example.org"],
        bcc=["dave-secret@example.net"],
    )

    assert OutboxEmailBackend().send_messages([email]) == 1

    message = Message.objects.get()
    assert message.envelope_from == "alice@example.com"
    assert sorted(message.recipients.values_list("address", flat=True)) == [
        "bob@example.org",
        "carol@example.org",
        "dave-secret@example.net",
    ]
    raw = bytes(message.raw)
    assert b"dave-secret" not in raw
    parsed = message_from_bytes(raw, policy=default_policy)
    assert parsed["To"] == "Bob <bob@example.org>"
    assert parsed["Cc"] == "carol@example.org"
    assert parsed["Bcc"] is None


def test_the_stored_bytes_are_the_messages_bytes_with_crlf_line_endings():
    email = EmailMessage(
        subject="Lines",
        body="first\nsecond\r\nthird\n.\nlast line starting with a dot below\n.hidden\n",
        from_email="app@example.com",
        to=["bob@example.org"],
        headers={
            "Message-ID": "<fixed-123@example.com>",
            "Date": "Mon, 04 Mar 2024 10:00:00 +0000",
        },
    )

    OutboxEmailBackend().send_messages([email])

    message = Message.objects.get()
    raw = bytes(message.raw)
    assert message.message_id == "<fixed-123@example.com>"
    assert message.size == len(raw)
    assert _bare_line_feeds(raw) == []
    assert b"\r\n\r\nfirst\r\nsecond\r\nthird\r\n.\r\nlast line" in raw
    # The same bytes Django's own SMTP backend would have put on the wire.
    assert raw == email.message().as_bytes(linesep="\r\n")


def test_bytes_end_with_crlf_and_lone_carriage_returns_become_line_ends():
    send_mail("Ends", "one\rtwo\nno newline at the end", "app@example.com", ["b@example.org"])

    raw = bytes(Message.objects.get().raw)
    assert raw.endswith(b"\r\n\r\none\r\ntwo\r\nno newline at the end\r\n")
    assert raw.count(b"\r") == raw.count(b"\r\n") == raw.count(b"\n")


def test_the_message_id_names_the_senders_domain_unless_the_code_set_one():
    send_mail("Ids", "body\n", "Billing <billing@acme.example>", ["b@example.org"])

    message = Message.objects.get()
    assert re.fullmatch(r"<[0-9a-f]{32}@acme\.example>", message.message_id)
    assert message_from_bytes(bytes(message.raw))["Message-ID"] == message.message_id


def test_an_html_alternative_and_an_attachment_survive_intact():
    from django.core.mail import EmailMultiAlternatives

    email = EmailMultiAlternatives(
        subject="Report", body="Text version\n", from_email="app@example.com", to=["b@example.org"]
    )
    email.attach_alternative("<p>HTML version</p>", "text/html")
    email.attach("report.csv", "a,b\n1,2\n", "text/csv")

    OutboxEmailBackend().send_messages([email])

    parsed = message_from_bytes(bytes(Message.objects.get().raw), policy=default_policy)
    parts = {part.get_content_type(): part for part in parsed.walk() if not part.is_multipart()}

    def text(content_type: str) -> list[str]:
        # Parsed from the wire form, text keeps its CRLF line ends.
        return parts[content_type].get_content().splitlines()

    assert text("text/plain") == ["Text version"]
    assert text("text/html") == ["<p>HTML version</p>"]
    assert parts["text/csv"].get_filename() == "report.csv"
    assert text("text/csv") == ["a,b", "1,2"]


def test_several_messages_are_counted():
    emails = [
        EmailMessage(f"n{i}", "body\n", "app@example.com", [f"r{i}@example.org"]) for i in range(3)
    ]

    assert get_connection().send_messages(emails) == 3
    assert Message.objects.count() == 3


def test_an_invalid_recipient_raises_and_queues_nothing():
    with pytest.raises(ValidationError):
        send_mail("Hi", "body\n", "app@example.com", ["not an address"])
    assert not Message.objects.exists()


def test_a_line_break_in_the_subject_is_refused():
    with pytest.raises(BadHeaderError):
        send_mail("Hi\r\nBcc: victim@example.org", "body\n", "app@example.com", ["b@example.org"])
    assert not Message.objects.exists()


def test_fail_silently_logs_the_error_and_queues_the_valid_ones(caplog):
    emails = [
        EmailMessage("bad", "body\n", "app@example.com", ["nope"]),
        EmailMessage("good", "body\n", "app@example.com", ["b@example.org"]),
    ]
    with caplog.at_level(logging.ERROR, logger="postroom.outbox.backend"):
        count = OutboxEmailBackend(fail_silently=True).send_messages(emails)

    assert count == 1
    assert list(Message.objects.values_list("subject", flat=True)) == ["good"]
    assert "Could not queue the email 'bad'" in caplog.text


def test_without_fail_silently_the_first_error_stops_the_batch():
    emails = [
        EmailMessage("good", "body\n", "app@example.com", ["b@example.org"]),
        EmailMessage("bad", "body\n", "app@example.com", ["nope"]),
    ]
    with pytest.raises(ValidationError):
        OutboxEmailBackend().send_messages(emails)
    # The one before the error was accepted: it is in the outbox and will be sent.
    assert list(Message.objects.values_list("subject", flat=True)) == ["good"]


def test_a_message_without_recipients_is_refused():
    with pytest.raises(ValidationError, match="no recipients"):
        OutboxEmailBackend().send_messages([EmailMessage("x", "y", "app@example.com")])


def test_mail_queued_inside_a_rolled_back_transaction_is_not_sent():
    class OrderFailed(Exception):
        pass

    with pytest.raises(OrderFailed), transaction.atomic():
        send_mail("Order confirmed", "body\n", "shop@example.com", ["b@example.org"])
        raise OrderFailed

    assert not Message.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_send_mail_returns_after_the_row_is_committed():
    # No test transaction around this one: autocommit, as in production.
    assert transaction.get_autocommit()
    send_mail("Committed", "body\n", "app@example.com", ["b@example.org"])
    assert transaction.get_autocommit()
    assert Message.objects.filter(subject="Committed").exists()


@override_settings(DEFAULT_FROM_EMAIL="webmaster@localhost")
def test_mail_without_a_sender_comes_from_the_company_address():
    company = company_get()
    company.sender_email = "office@acme.example"
    company.sender_name = "Acme Office"
    company.save()

    email = EmailMessage("Password reset", "body\n", None, ["b@example.org"])
    OutboxEmailBackend().send_messages([email])

    message = Message.objects.get()
    assert email.from_email == "webmaster@localhost"  # the caller's object is left alone
    assert message.envelope_from == "office@acme.example"
    parsed = message_from_bytes(bytes(message.raw), policy=default_policy)
    assert parsed["From"] == "Acme Office <office@acme.example>"


@override_settings(DEFAULT_FROM_EMAIL="webmaster@localhost")
def test_mail_without_any_sender_says_where_to_set_one():
    with pytest.raises(ValidationError, match="set the company email address"):
        send_mail("Password reset", "body\n", None, ["b@example.org"])
    assert not Message.objects.exists()
