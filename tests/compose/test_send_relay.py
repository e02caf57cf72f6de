"""Compose and send as the user through the real Postfix relay (STARTTLS, AUTH), delivered
by the real outbox worker; the message then shows in the contact's history as sent."""

from __future__ import annotations

import pytest

from postroom.accounts.models import Role, User
from postroom.company.models import SendAsPolicy
from postroom.contacts.models import Contact
from postroom.contacts.selectors import contact_history
from postroom.mail.message import Attachment
from postroom.outbox.models import MessageStatus, SendAs
from tests.compose.conftest import compose_send, contact_make
from tests.outbox.worker_harness import company_on_relay, running_worker, status_of, wait_until
from tests.support.relay import PostfixRelay

pytestmark = [pytest.mark.relay, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def alice(db: None) -> User:
    return User.objects.create_user(
        username="alice", display_name="Alice Smith", email="alice@example.com", role=Role.STAFF
    )


@pytest.fixture
def ann(db: None) -> Contact:
    return contact_make("ann@globex.example", first_name="Ann", last_name="Lee")


def test_a_composed_email_goes_through_the_relay_as_the_user_and_shows_as_sent_in_history(
    relay_mailbox: PostfixRelay, alice: User, ann: Contact
) -> None:
    company_on_relay(relay_mailbox, port=relay_mailbox.starttls_port, policy=SendAsPolicy.AS_USER)
    (message,) = compose_send(
        user=alice,
        to=[ann],
        cc=["Carol <carol@partner.example>"],
        subject="Your quote, {{ contact.first_name }}",
        html="<p>Dear {{ contact.first_name }},</p><p>the quote is attached.</p>",
        attachments=[Attachment("quote.pdf", "application/pdf", b"%PDF-1.7 quote")],
    )
    assert message.send_as == SendAs.AS_USER
    with running_worker():
        wait_until(lambda: status_of(message) == MessageStatus.SENT, what="sent", timeout=20)

    delivered = {mail["Delivered-To"]: mail for mail in relay_mailbox.wait_for(2)}
    mail = delivered["ann@globex.example"]
    assert mail["From"] == "Alice Smith <alice@example.com>"
    assert mail["To"] == "Ann Lee <ann@globex.example>"
    assert mail["Cc"] == "Carol <carol@partner.example>"
    assert mail["Subject"] == "Your quote, Ann"
    assert mail["Return-Path"] == "<alice@example.com>"
    assert mail["Message-ID"] == message.message_id
    text = mail.get_body(preferencelist=("plain",))
    assert text is not None and "Dear Ann," in text.get_content()
    (attachment,) = list(mail.iter_attachments())
    assert attachment.get_filename() == "quote.pdf"
    assert "carol@partner.example" in delivered

    (item,) = contact_history(contact=ann, user=alice)
    assert item["subject"] == "Your quote, Ann"
    assert item["status"] == "sent" and item["status_label"] == "Sent"
    assert item["url"] == f"/outbox/{message.pk}/"


def test_under_auto_a_relay_refusing_the_user_gets_the_via_company_version(
    relay_mailbox: PostfixRelay, alice: User, ann: Contact
) -> None:
    company = company_on_relay(
        relay_mailbox, port=relay_mailbox.sender_check_port, policy=SendAsPolicy.AUTO
    )
    (message,) = compose_send(user=alice, to=[ann], subject="Hello", text="Hi Ann.")
    with running_worker():
        wait_until(lambda: status_of(message) == MessageStatus.SENT, what="sent", timeout=20)
    (mail,) = relay_mailbox.wait_for(1)
    assert mail["From"] == f"Alice Smith via Acme <{company.sender_email}>"
    assert mail["Reply-To"] == "Alice Smith <alice@example.com>"
    message.refresh_from_db()
    assert message.send_as == SendAs.VIA_COMPANY
    assert contact_history(contact=ann, user=alice)[0]["status_label"] == "Sent"
