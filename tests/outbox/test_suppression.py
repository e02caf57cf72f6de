"""The suppression list in the outbox: its services, the pure state rules for a suppressed
recipient, and a hard bounce suppressing its address in the transaction that records it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db.models.functions import Lower
from django.utils import timezone

from postroom.audit.models import AuditEntry
from postroom.core.errors import ValidationError
from postroom.outbox import suppression
from postroom.outbox.claim import ClaimedMessage, message_claim_batch
from postroom.outbox.models import (
    LANE_PRIORITY,
    Classification,
    Event,
    EventKind,
    MessageStatus,
    Recipient,
    RecipientStatus,
    Suppression,
    SuppressionReason,
)
from postroom.outbox.record import MessageResult, RecipientResult, delivery_record
from postroom.outbox.retry import RetryPolicy
from postroom.outbox.states import message_status_for, recipient_after
from tests.outbox.message_factories import message_queue

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


# The pure rules.


def test_a_suppressed_recipient_is_final_whatever_the_classification() -> None:
    transition = recipient_after(
        Classification.PERMANENT,
        uncertain_count=0,
        failed_attempts=1,
        expires_at=NOW + dt.timedelta(days=5),
        now=NOW,
        policy=RetryPolicy(),
        is_suppressed=True,
    )
    assert (transition.status, transition.next_attempt_at) == (RecipientStatus.SUPPRESSED, None)


def test_a_message_nobody_got_because_of_the_list_is_cancelled() -> None:
    assert message_status_for([RecipientStatus.SUPPRESSED]) == MessageStatus.CANCELLED
    assert (
        message_status_for([RecipientStatus.SUPPRESSED, RecipientStatus.CANCELLED])
        == MessageStatus.CANCELLED
    )
    assert (
        message_status_for([RecipientStatus.SENT, RecipientStatus.SUPPRESSED])
        == MessageStatus.PARTIAL
    )
    assert (
        message_status_for([RecipientStatus.FAILED, RecipientStatus.SUPPRESSED])
        == MessageStatus.FAILED
    )
    assert (
        message_status_for([RecipientStatus.DEFERRED, RecipientStatus.SUPPRESSED])
        == MessageStatus.DEFERRED
    )


@pytest.mark.parametrize(
    ("classification", "stage", "code", "is_bounce"),
    [
        (Classification.PERMANENT, "rcpt", "5.1.1", True),
        (Classification.PERMANENT, "rcpt", "5.1.10", True),
        (Classification.PERMANENT, "rcpt", "5.7.1", False),  # policy, not a missing mailbox
        (Classification.PERMANENT, "end_of_data", "5.1.1", False),  # about the message
        (Classification.TEMPORARY, "rcpt", "4.1.1", False),
        (Classification.PERMANENT, "rcpt", "", False),
    ],
)
def test_a_hard_bounce_is_a_permanent_5_1_x_at_rcpt(
    classification: str, stage: str, code: str, is_bounce: bool
) -> None:
    assert (
        suppression.is_hard_bounce(classification=classification, stage=stage, enhanced_code=code)
        is is_bounce
    )


# The services.

needs_db = pytest.mark.django_db


@needs_db
def test_an_address_is_suppressed_once_without_regard_to_case() -> None:
    first = suppression.suppression_add(
        actor=None, address="Ann@Example.com", note="asked by phone"
    )
    assert first.is_new and first.reason == SuppressionReason.MANUAL
    again = suppression.suppression_add(
        actor=None, address="ann@example.COM", reason=SuppressionReason.UNSUBSCRIBED
    )
    assert not again.is_new
    assert (again.pk, again.reason) == (first.pk, SuppressionReason.MANUAL)  # the first stays
    assert suppression.is_suppressed("ANN@example.com")
    assert Suppression.objects.count() == 1
    [event] = Event.objects.filter(kind=EventKind.RECIPIENT_SUPPRESSED)
    assert event.data == {
        "recipient": "Ann@example.com",
        "reason": "manual",
        "source": "added through the API",
    }
    assert AuditEntry.objects.filter(action="suppression.added").count() == 1


@needs_db
@pytest.mark.parametrize("bad", ["ann", "ann@", "a\r\nb@example.com"])
def test_a_bad_address_is_refused(bad: str) -> None:
    with pytest.raises(ValidationError):
        suppression.suppression_add(actor=None, address=bad)
    assert not Suppression.objects.exists()


@needs_db
def test_removing_an_address_is_audited_and_lets_bulk_mail_reach_it_again() -> None:
    entry = suppression.suppression_add(actor=None, address="ann@example.com")
    suppression.suppression_remove(actor=None, suppression=entry)
    assert not suppression.is_suppressed("ann@example.com")
    assert AuditEntry.objects.filter(action="suppression.removed").exists()


@needs_db
def test_suppressed_q_finds_recipients_by_address_in_any_case() -> None:
    suppression.suppression_add(actor=None, address="ann@example.com")
    message_queue(to=["ANN@example.com", "bob@example.com"])
    found = Recipient.objects.filter(suppression.suppressed_q("address"))
    assert [r.address for r in found] == ["ANN@example.com"]
    kept = Recipient.objects.exclude(suppression.suppressed_q("address"))
    assert [r.address for r in kept] == ["bob@example.com"]


@needs_db
def test_an_import_adds_the_new_addresses_and_counts_the_others() -> None:
    suppression.suppression_add(actor=None, address="ann@example.com")
    entries = [
        suppression.entry_make(address, reason=SuppressionReason.UNSUBSCRIBED)
        for address in ("ANN@example.com", "bob@example.com", "Bob@example.com", "cy@example.com")
    ]
    outcome = suppression.suppression_import(actor=None, entries=entries, filename="old.csv")
    assert (outcome.added, outcome.already) == (2, 1)
    assert sorted(Suppression.objects.values_list(Lower("address"), flat=True)) == [
        "ann@example.com",
        "bob@example.com",
        "cy@example.com",
    ]
    assert Event.objects.filter(kind=EventKind.RECIPIENT_SUPPRESSED).count() == 3
    audit = AuditEntry.objects.get(action="suppression.imported")
    assert audit.changes == {"File": "old.csv", "Added": 2, "Already suppressed": 1}


# A hard bounce, as the worker records it.


def bounce(claimed_reply: tuple[int, str, str], *, stage: str = "rcpt") -> None:
    code, enhanced, text = claimed_reply
    [claimed] = message_claim_batch(worker="w", limit=1)
    delivery_record(
        results=[
            MessageResult(
                message=claimed,
                server="smtp.example.com:587",
                stage=stage,
                recipients=[
                    RecipientResult(
                        recipient=recipient,
                        classification=Classification.PERMANENT,
                        code=code,
                        enhanced_code=enhanced,
                        text=text,
                        stage=stage,
                    )
                    for recipient in claimed.recipients
                ],
            )
        ],
        worker="w",
    )


@needs_db
def test_a_hard_bounce_suppresses_the_address_with_an_event() -> None:
    message = message_queue(to=["Gone@example.net"])
    bounce((550, "5.1.1", "No such user"))
    entry = Suppression.objects.get()
    assert (entry.address, entry.reason) == ("Gone@example.net", SuppressionReason.HARD_BOUNCED)
    assert entry.source == f"bounce of message {message.message_id}"
    assert entry.note == "550 5.1.1 No such user"
    assert entry.created_by is None
    kinds = list(Event.objects.filter(message=message).values_list("kind", flat=True))
    assert kinds == [
        EventKind.MESSAGE_QUEUED,
        EventKind.MESSAGE_FAILED,
        EventKind.RECIPIENT_SUPPRESSED,
    ]
    event = Event.objects.get(kind=EventKind.RECIPIENT_SUPPRESSED)
    assert event.data["reason"] == "hard_bounced"
    assert event.data["enhanced_code"] == "5.1.1"
    assert event.data["message_id"] == message.message_id


@needs_db
def test_a_second_hard_bounce_of_a_suppressed_address_adds_nothing() -> None:
    suppression.suppression_add(actor=None, address="gone@example.net")
    message_queue(to=["gone@example.net"])
    bounce((550, "5.1.1", "No such user"))
    assert Suppression.objects.get().reason == SuppressionReason.MANUAL
    assert Event.objects.filter(kind=EventKind.RECIPIENT_SUPPRESSED).count() == 1


@needs_db
def test_a_refusal_that_is_not_about_the_address_suppresses_nothing() -> None:
    message_queue(to=["spam-filtered@example.net"])
    bounce((550, "5.7.1", "Message rejected as spam"))
    message_queue(to=["big@example.net"])
    bounce((552, "5.1.1", "Odd server"), stage="end_of_data")
    assert not Suppression.objects.exists()


@needs_db
def test_a_hard_bounce_is_recorded_with_its_outcome_or_not_at_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One transaction: when recording the batch fails, neither the outcome nor the
    suppression is kept (the worker records the batch again)."""
    message = message_queue(to=["gone@example.net"])

    def broken(self: object) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr("postroom.outbox.record._Rows._release_if_resumed", broken)
    with pytest.raises(RuntimeError):
        bounce((550, "5.1.1", "No such user"))
    assert not Suppression.objects.exists()
    message.refresh_from_db()
    assert message.status == MessageStatus.SENDING


@needs_db
def test_entries_keep_their_creation_time() -> None:
    before = timezone.now()
    entry = suppression.suppression_add(actor=None, address="ann@example.com")
    assert before <= entry.created_at <= timezone.now()


@pytest.mark.parametrize(
    ("source", "lane", "applies"),
    [
        ("campaign", "bulk", True),
        ("api", "bulk", True),  # a newsletter through the API
        ("report", "bulk", False),  # the company's reports to its people
        ("smtp", "bulk", False),  # a system's invoices through the SMTP listener
        ("api", "transactional", False),
    ],
)
def test_the_suppression_list_applies_to_marketing_bulk_mail_only(
    source: str, lane: str, applies: bool
) -> None:
    message = ClaimedMessage(
        id=1,
        message_id="<m@x>",
        claim_token="t",
        envelope_from="a@example.com",
        raw=b"",
        needs_smtputf8=False,
        attempt_count=0,
        expires_at=NOW,
        recipients=(),
        created_at=NOW,
        priority=LANE_PRIORITY[lane],
        source=source,
    )
    assert suppression.is_suppressible(message) is applies
