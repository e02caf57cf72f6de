"""Send-as policies, through the real Postfix relay and its sender-ownership check."""

from __future__ import annotations

import pytest

from postroom.accounts.models import Role, User
from postroom.company.models import Company, SendAsPolicy
from postroom.mail.addresses import parse_address
from postroom.mail.message import OutgoingEmail
from postroom.outbox.enqueue import message_enqueue
from postroom.outbox.models import (
    Attempt,
    Message,
    MessageStatus,
    SendAs,
    SenderRefusal,
    ServerPause,
    Source,
)
from tests.outbox.worker_harness import company_on_relay, running_worker, status_of, wait_until
from tests.support.relay import PostfixRelay

pytestmark = [pytest.mark.relay, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def alice(db: None) -> User:
    return User.objects.create_user(
        username="alice", display_name="Alice Smith", email="alice@example.com", role=Role.STAFF
    )


def send_from(user: User, company: Company, to: str = "contact@example.net") -> Message:
    email = OutgoingEmail(
        from_=parse_address(user.email),
        to=[parse_address(to)],
        subject="Your quote",
        text="Here it is.",
    )
    # message_enqueue applies the company's send-as policy by itself: the From is the user's.
    return message_enqueue(email=email, source=Source.COMPOSE, sender_user=user)


def test_as_user_sends_from_the_users_own_address(relay_mailbox: PostfixRelay, alice: User) -> None:
    company = company_on_relay(
        relay_mailbox, port=relay_mailbox.starttls_port, policy=SendAsPolicy.AS_USER
    )
    message = send_from(alice, company)
    with running_worker():
        wait_until(lambda: status_of(message) == MessageStatus.SENT, what="sent")
    delivered = relay_mailbox.wait_for(1)[0]
    assert delivered["From"] == "Alice Smith <alice@example.com>"
    assert delivered["Reply-To"] is None
    assert message.send_as == SendAs.AS_USER


def test_via_company_sends_from_the_company_with_reply_to_the_user(
    relay_mailbox: PostfixRelay, alice: User
) -> None:
    company = company_on_relay(
        relay_mailbox, port=relay_mailbox.sender_check_port, policy=SendAsPolicy.VIA_COMPANY
    )
    message = send_from(alice, company)
    with running_worker():
        wait_until(lambda: status_of(message) == MessageStatus.SENT, what="sent")
    delivered = relay_mailbox.wait_for(1)[0]
    assert delivered["From"] == f"Alice Smith via Acme <{company.sender_email}>"
    assert delivered["Reply-To"] == "Alice Smith <alice@example.com>"
    assert message.send_as == SendAs.VIA_COMPANY


def test_auto_falls_back_to_via_company_when_the_relay_refuses_the_user_and_remembers(
    relay_mailbox: PostfixRelay, alice: User
) -> None:
    company = company_on_relay(
        relay_mailbox, port=relay_mailbox.sender_check_port, policy=SendAsPolicy.AUTO
    )
    first = send_from(alice, company)
    assert first.send_as == SendAs.AS_USER and first.fallback_raw is not None
    with running_worker():
        wait_until(lambda: status_of(first) == MessageStatus.SENT, what="sent via company")

    delivered = relay_mailbox.wait_for(1)[0]
    assert delivered["From"] == f"Alice Smith via Acme <{company.sender_email}>"
    assert delivered["Reply-To"] == "Alice Smith <alice@example.com>"
    assert delivered["Message-ID"] == first.message_id
    first.refresh_from_db()
    assert first.send_as == SendAs.VIA_COMPANY
    assert first.envelope_from == company.sender_email
    refusal = Attempt.objects.get(message=first, code=553)
    assert "not owned" in refusal.text and "sent via the company" in refusal.text
    assert SenderRefusal.objects.filter(address="alice@example.com").exists()
    assert not ServerPause.objects.exists(), "a refused user must not stop the company's mail"

    second = send_from(alice, company, to="another@example.net")
    assert second.send_as == SendAs.VIA_COMPANY, "the refusal is remembered"
    assert second.fallback_raw is None
