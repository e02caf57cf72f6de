"""message_enqueue applies the send-as policy and idempotency itself, for every caller."""

from __future__ import annotations

import pytest

from postroom.accounts.models import Role, User
from postroom.company.models import Company, SendAsPolicy
from postroom.company.selectors import company_get
from postroom.mail.addresses import Address, parse_address
from postroom.mail.message import OutgoingEmail
from postroom.outbox.enqueue import (
    IdempotencyConflictError,
    message_enqueue,
    message_enqueue_raw,
)
from postroom.outbox.models import Message, SendAs, Source
from tests.outbox.message_factories import raw_email

pytestmark = pytest.mark.django_db


@pytest.fixture
def company(db: None) -> Company:
    company = company_get()
    company.name = company.sender_name = "Acme"
    company.sender_email = "office@acme.example"
    company.send_as_policy = SendAsPolicy.VIA_COMPANY
    company.save()
    return company


@pytest.fixture
def alice(db: None) -> User:
    return User.objects.create_user(
        username="alice", display_name="Alice Smith", email="alice@acme.example", role=Role.STAFF
    )


def an_email(
    sender: str, *, subject: str = "Your quote", to: str = "bob@example.org"
) -> OutgoingEmail:
    return OutgoingEmail(
        from_=parse_address(sender), to=[parse_address(to)], subject=subject, text="Hi.\n"
    )


def test_mail_from_a_users_own_address_follows_the_send_as_policy(
    company: Company, alice: User
) -> None:
    message = message_enqueue(
        email=an_email("ALICE@acme.example"), source=Source.API, sender_user=alice
    )
    assert message.send_as == SendAs.VIA_COMPANY
    assert message.from_header == "Alice Smith via Acme <office@acme.example>"
    assert message.envelope_from == "office@acme.example"


def test_other_mail_of_a_user_goes_as_written(company: Company, alice: User) -> None:
    message = message_enqueue(
        email=an_email("Billing <billing@acme.example>"), source=Source.API, sender_user=alice
    )
    assert message.send_as == ""
    assert message.from_header == "Billing <billing@acme.example>"
    no_user = message_enqueue(email=an_email("alice@acme.example"), source=Source.CLI)
    assert no_user.send_as == "" and no_user.from_header == "alice@acme.example"


def test_a_key_used_again_for_the_same_message_is_a_replay(company: Company, alice: User) -> None:
    first = message_enqueue(
        email=an_email("alice@acme.example"),
        source=Source.API,
        sender_user=alice,
        idempotency_key="k1",
    )
    # Sent "via the company" since: still the same message, as it is the same user's.
    again = message_enqueue(
        email=OutgoingEmail(
            from_=Address("Alice", "alice@acme.example"),
            to=[parse_address("BOB@example.org")],
            subject="Your quote",
        ),
        source=Source.API,
        sender_user=alice,
        idempotency_key="k1",
    )
    assert again.pk == first.pk and again.is_replay and not first.is_replay
    assert Message.objects.count() == 1


@pytest.mark.parametrize(
    "email",
    [
        an_email("alice@acme.example", subject="Another quote"),
        an_email("alice@acme.example", to="carol@example.org"),
        an_email("billing@acme.example"),
    ],
    ids=["subject", "recipients", "sender"],
)
def test_a_key_used_again_for_another_message_is_a_conflict(
    company: Company, alice: User, email: OutgoingEmail
) -> None:
    message_enqueue(
        email=an_email("alice@acme.example"),
        source=Source.API,
        sender_user=alice,
        idempotency_key="k1",
    )
    with pytest.raises(IdempotencyConflictError) as caught:
        message_enqueue(email=email, source=Source.API, sender_user=alice, idempotency_key="k1")
    assert caught.value.code == "conflict" and caught.value.http_status == 409
    assert Message.objects.count() == 1


def test_ready_bytes_follow_the_same_idempotency(db: None) -> None:
    def enqueue(subject: str) -> Message:
        return message_enqueue_raw(
            envelope_from="app@example.com",
            recipients=["bob@example.org"],
            raw=raw_email(subject=subject, to=["bob@example.org"]),
            source=Source.DJANGO,
            idempotency_key="raw-1",
        )

    first = enqueue("Invoice")
    assert enqueue("Invoice").pk == first.pk
    with pytest.raises(IdempotencyConflictError):
        enqueue("Credit note")
