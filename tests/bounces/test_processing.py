"""Processing mail from the bounce mailbox against the database: matched to Postroom's own
messages by Message-ID or tagged return path, a hard bounce failing the recipient after the
fact and suppressing it, a complaint, soft bounces counted to the limit, and what changes
nothing (a delay, an auto-reply, a stranger's bounce, the same bounce twice)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from postroom.bounces.models import BounceMailbox, BounceReport, ReportKind
from postroom.bounces.processing import BY_MESSAGE_ID, BY_TAG, bounce_mail_process
from postroom.company.selectors import company_get
from postroom.contacts.selectors import contact_history
from postroom.contacts.services import contact_create
from postroom.mail.verp import return_path_tagged
from postroom.outbox.models import (
    Event,
    EventKind,
    Message,
    MessageStatus,
    Recipient,
    RecipientStatus,
    Suppression,
    SuppressionReason,
)
from postroom.outbox.routing import return_path_keys
from tests.accounts.factories import admin_make
from tests.bounces.mails import dsn
from tests.outbox.message_factories import message_queue

pytestmark = pytest.mark.django_db

SAMPLES = Path(__file__).parent / "samples"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def sent_message(message_id: str, *to: str) -> Message:
    """A message the relay took for every recipient, with the sample's Message-ID."""
    message = message_queue(to=to)
    Message.objects.filter(pk=message.pk).update(message_id=message_id, status=MessageStatus.SENT)
    Recipient.objects.filter(message=message).update(status=RecipientStatus.SENT)
    message.refresh_from_db()
    return message


def statuses(message: Message) -> dict[str, str]:
    return dict(message.recipients.values_list("address", "status"))


def kinds(message: Message) -> Sequence[str]:
    return list(
        Event.objects.filter(message=message)
        .exclude(kind=EventKind.MESSAGE_QUEUED)
        .values_list("kind", flat=True)
    )


def test_a_hard_bounce_fails_the_recipient_after_the_fact_and_suppresses_it() -> None:
    message = sent_message(
        "<5f1c0e7a9b2d4c3e8f6a7b1c2d3e4f50@example.com>",
        "nosuchuser@example.net",
        "ann@example.org",
    )
    report = bounce_mail_process(sample("postfix_unknown_user.eml"), mailbox_ref="uid 7")

    assert (report.kind, report.message, report.matched_by) == (
        ReportKind.HARD_BOUNCE,
        message,
        BY_MESSAGE_ID,
    )
    assert (report.recipient, report.status, report.mailbox_ref) == (
        "nosuchuser@example.net",
        "5.1.1",
        "uid 7",
    )
    assert "Recipient marked failed; message now partly sent." in report.action
    assert statuses(message) == {
        "nosuchuser@example.net": RecipientStatus.FAILED,
        "ann@example.org": RecipientStatus.SENT,
    }
    message.refresh_from_db()
    assert message.status == MessageStatus.PARTIAL
    failed = message.recipients.get(address="nosuchuser@example.net")
    assert failed.last_enhanced_code == "5.1.1"
    assert failed.last_text.startswith("Bounced after it was sent: unknown user")
    entry = Suppression.objects.get()
    assert (entry.address, entry.reason) == (
        "nosuchuser@example.net",
        SuppressionReason.HARD_BOUNCED,
    )
    assert entry.source == "bounce of message <5f1c0e7a9b2d4c3e8f6a7b1c2d3e4f50@example.com>"
    assert kinds(message) == [EventKind.RECIPIENT_BOUNCED, EventKind.RECIPIENT_SUPPRESSED]
    bounced = Event.objects.get(kind=EventKind.RECIPIENT_BOUNCED)
    assert bounced.data["status"] == "5.1.1" and bounced.data["is_hard"] is True
    # The suppression's event reads like one for a hard bounce at RCPT.
    suppressed = Event.objects.get(kind=EventKind.RECIPIENT_SUPPRESSED)
    assert suppressed.data["reason"] == SuppressionReason.HARD_BOUNCED
    assert (suppressed.data["id"], suppressed.data["enhanced_code"]) == (message.pk, "5.1.1")


def test_a_single_recipients_hard_bounce_fails_the_whole_message() -> None:
    message = sent_message("<0d3f9a6c2b1e4d5f8a7b6c5d4e3f2a1b@example.com>", "j.doe@contoso.com")
    report = bounce_mail_process(
        sample("microsoft365_recipient_not_found.eml"), mailbox_ref="uid 1"
    )
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED
    recipient = message.recipients.get()
    # Final-Recipient J.Doe@ matched j.doe@ without regard to case.
    assert (recipient.status, recipient.last_code, recipient.last_enhanced_code) == (
        RecipientStatus.FAILED,
        550,
        "5.1.10",
    )
    assert report.recipient == "j.doe@contoso.com"
    assert Suppression.objects.filter(address_key="j.doe@contoso.com").exists()


@pytest.mark.parametrize(
    ("name", "message_id", "address"),
    [
        (
            "gmail_no_such_user.eml",
            "<7c2e9b1a4d3f4e6a8b5c9d0e1f2a3b4c@example.com>",
            "no.such.person@gmail.com",
        ),
        (
            "yahoo_nonstandard.eml",
            "<3e8d7c6b5a4f4e3d2c1b0a9f8e7d6c5b@example.com>",
            "gone.away@yahoo.com",
        ),
    ],
)
def test_gmail_and_yahoo_bounces_fail_and_suppress_too(
    name: str, message_id: str, address: str
) -> None:
    message = sent_message(message_id, address)
    bounce_mail_process(sample(name), mailbox_ref="uid 2")
    assert statuses(message) == {address: RecipientStatus.FAILED}
    assert Suppression.objects.filter(address_key=address).exists()


def test_a_complaint_suppresses_the_address_and_writes_its_event() -> None:
    message = sent_message(
        "<9a8b7c6d5e4f4a3b2c1d0e9f8a7b6c5d@example.com>", "happy.reader@yahoo.com"
    )
    report = bounce_mail_process(sample("yahoo_arf_complaint.eml"), mailbox_ref="uid 3")
    assert (report.kind, report.recipient) == (ReportKind.COMPLAINT, "happy.reader@yahoo.com")
    entry = Suppression.objects.get()
    assert entry.reason == SuppressionReason.COMPLAINED
    assert entry.source == "complaint about message <9a8b7c6d5e4f4a3b2c1d0e9f8a7b6c5d@example.com>"
    # The complainant got the message: it stays sent.
    assert statuses(message) == {"happy.reader@yahoo.com": RecipientStatus.SENT}
    assert kinds(message) == [EventKind.RECIPIENT_COMPLAINED, EventKind.RECIPIENT_SUPPRESSED]
    assert Event.objects.get(kind=EventKind.RECIPIENT_COMPLAINED).data["feedback"] == "abuse"


def test_soft_bounces_are_counted_and_suppress_at_the_limit() -> None:
    BounceMailbox.objects.update_or_create(
        pk=1, defaults={"soft_bounce_limit": 2, "soft_bounce_days": 30}
    )
    raw = sample("soft_mailbox_full.eml")
    first = sent_message(
        "<2f1e0d9c8b7a4f6e5d4c3b2a1f0e9d8c@example.com>", "full@fullbox.example.net"
    )
    report = bounce_mail_process(raw, mailbox_ref="uid 4")
    assert report.kind == ReportKind.SOFT_BOUNCE
    assert "1 soft bounce of full@fullbox.example.net within 30 days (limit 2)." in report.action
    assert not Suppression.objects.exists()
    assert statuses(first) == {"full@fullbox.example.net": RecipientStatus.SENT}

    # The next newsletter, a week later, bounces the same way.
    second = sent_message("<second-newsletter@example.com>", "full@fullbox.example.net")
    again = raw.replace(
        b"2f1e0d9c8b7a4f6e5d4c3b2a1f0e9d8c@example.com", b"second-newsletter@example.com"
    )
    again = again.replace(b"<E1sFull-0001Ab-2C@", b"<E1sFull-0002Cd-3D@")
    report = bounce_mail_process(again, mailbox_ref="uid 5")
    assert "2 soft bounces" in report.action
    assert "full@fullbox.example.net added to the suppression list." in report.action
    entry = Suppression.objects.get()
    assert entry.note == "2 soft bounces within 30 days (the bounce mailbox's limit)."
    assert entry.source == "bounce of message <second-newsletter@example.com>"
    assert statuses(second) == {"full@fullbox.example.net": RecipientStatus.SENT}


def test_the_same_bounce_twice_counts_once() -> None:
    message = sent_message(
        "<2f1e0d9c8b7a4f6e5d4c3b2a1f0e9d8c@example.com>", "full@fullbox.example.net"
    )
    raw = sample("soft_mailbox_full.eml")
    first = bounce_mail_process(raw, mailbox_ref="uid 4")
    second = bounce_mail_process(raw, mailbox_ref="uid 4")
    assert first.pk == second.pk
    assert BounceReport.objects.count() == 1
    assert kinds(message) == [EventKind.RECIPIENT_BOUNCED]


@pytest.mark.parametrize(
    ("name", "kind", "words"),
    [
        ("delay_notice.eml", ReportKind.DELAY, "A delay notice"),
        ("out_of_office.eml", ReportKind.NOT_A_BOUNCE, "Not a bounce or a complaint"),
    ],
)
def test_delays_and_auto_replies_change_nothing(name: str, kind: str, words: str) -> None:
    delayed = sent_message(
        "<4b3a2c1d0e9f4a8b7c6d5e4f3a2b1c0d@example.com>", "slow@partner.example.org"
    )
    replied = sent_message(
        "<0d3f9a6c2b1e4d5f8a7b6c5d4e3f2a1b@example.com>", "maria.rossi@partner.example.org"
    )
    report = bounce_mail_process(sample(name), mailbox_ref="uid 9")
    assert report.kind == kind and report.action.startswith(words)
    assert statuses(delayed) == {"slow@partner.example.org": RecipientStatus.SENT}
    assert statuses(replied) == {"maria.rossi@partner.example.org": RecipientStatus.SENT}
    assert not Suppression.objects.exists()
    assert kinds(delayed) == [] and kinds(replied) == []


def test_a_bounce_of_mail_postroom_did_not_send_changes_nothing() -> None:
    other = sent_message("<some-other@example.com>", "nosuchuser@example.net")
    report = bounce_mail_process(sample("postfix_unknown_user.eml"), mailbox_ref="uid 8")
    assert (report.kind, report.message, report.recipient) == (
        ReportKind.HARD_BOUNCE,
        None,
        "nosuchuser@example.net",
    )
    assert report.action.startswith("Not matched to a message Postroom sent; nothing changed.")
    assert "only reports on mail Postroom sent change its lists" in report.action
    assert statuses(other) == {"nosuchuser@example.net": RecipientStatus.SENT}
    assert not Suppression.objects.exists()


def tagged_to(message: Message) -> bytes:
    company = company_get()
    company.bounce_address, company.tag_return_path = "bounces@example.com", True
    company.save()
    tag = return_path_tagged(
        "bounces@example.com", message_pk=message.pk, key=return_path_keys()[0]
    )
    # The Message-ID is gone (a server that returns nothing of the original): only the tag
    # can say which message bounced.
    raw = sample("postfix_unknown_user.eml").replace(
        b"<5f1c0e7a9b2d4c3e8f6a7b1c2d3e4f50@example.com>", b"<lost@elsewhere.example>"
    )
    return raw.replace(b"Delivered-To: bounces@example.com", f"Delivered-To: {tag}".encode())


def test_a_tagged_return_path_matches_without_the_message_id() -> None:
    message = sent_message("<tagged@example.com>", "nosuchuser@example.net")
    report = bounce_mail_process(tagged_to(message), mailbox_ref="uid 10")
    assert (report.message, report.matched_by) == (message, BY_TAG)
    assert statuses(message) == {"nosuchuser@example.net": RecipientStatus.FAILED}


def test_a_forged_tag_matches_nothing() -> None:
    victim = sent_message("<victim@example.com>", "nosuchuser@example.net")
    raw = tagged_to(victim).replace(f"+m{victim.pk}-".encode(), f"+m{victim.pk + 1}-".encode())
    sent_message("<next@example.com>", "nosuchuser@example.net")  # the forged tag's number
    report = bounce_mail_process(raw, mailbox_ref="uid 11")
    assert report.message is None
    assert "does not verify" in report.action
    assert not Recipient.objects.filter(status=RecipientStatus.FAILED).exists()
    assert not Suppression.objects.exists()


def test_the_contacts_history_shows_the_bounce_in_words() -> None:
    admin = admin_make()
    contact = contact_create(actor=admin, email="NoSuchUser@example.net")
    sent_message("<5f1c0e7a9b2d4c3e8f6a7b1c2d3e4f50@example.com>", "nosuchuser@example.net")
    bounce_mail_process(sample("postfix_unknown_user.eml"), mailbox_ref="uid 7")
    (item,) = contact_history(contact=contact, user=admin)
    assert item["status"] == RecipientStatus.FAILED
    assert item["later"] == (
        'Bounced after it was sent (5.1.1): unknown user: "nosuchuser@example.net"'
    )


def test_the_contacts_history_shows_a_complaint() -> None:
    admin = admin_make()
    contact = contact_create(actor=admin, email="happy.reader@yahoo.com")
    sent_message("<9a8b7c6d5e4f4a3b2c1d0e9f8a7b6c5d@example.com>", "happy.reader@yahoo.com")
    bounce_mail_process(sample("yahoo_arf_complaint.eml"), mailbox_ref="uid 3")
    (item,) = contact_history(contact=contact, user=admin)
    assert (item["status"], item["later"]) == (RecipientStatus.SENT, "Reported as spam (abuse).")


@pytest.mark.parametrize(
    ("status", "diagnostic"),
    [
        ("5.7.1", "550 5.7.1 Message rejected as spam by content filter"),
        ("5.2.2", "552 5.2.2 Mailbox full"),
    ],
)
def test_a_block_or_full_mailbox_fails_the_message_but_does_not_suppress_the_address(
    status: str, diagnostic: str
) -> None:
    message = sent_message("<blocked.1@example.com>", "ann@example.org")

    report = bounce_mail_process(
        dsn(
            "ann@example.org",
            original_message_id="<blocked.1@example.com>",
            status=status,
            diagnostic=diagnostic,
        ),
        mailbox_ref="uid 9",
    )

    assert report.kind == ReportKind.SOFT_BOUNCE  # counted: repeated ones suppress
    assert statuses(message) == {"ann@example.org": RecipientStatus.FAILED}
    assert not Suppression.objects.filter(address_key="ann@example.org").exists()
    assert "Recipient marked failed" in report.action
