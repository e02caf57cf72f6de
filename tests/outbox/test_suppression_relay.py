"""The suppression list against the real Postfix relay, through the real worker: a hard
bounce (550 5.1.1 at RCPT) suppresses its address; bulk mail to a suppressed address is
skipped when it leaves, also mail queued before the address was suppressed; transactional
mail still goes."""

from __future__ import annotations

import pytest
from django.utils import timezone

from postroom.company.models import SendAsPolicy
from postroom.mail.addresses import parse_address
from postroom.outbox.bulk import bulk_enqueue, bulk_template_store
from postroom.outbox.models import (
    Attempt,
    Event,
    EventKind,
    Lane,
    Message,
    MessageStatus,
    RecipientStatus,
    Source,
    Suppression,
    SuppressionReason,
)
from postroom.outbox.suppression import suppression_add
from tests.outbox.worker_harness import (
    company_on_relay,
    enqueue,
    running_worker,
    status_of,
    wait_until,
)
from tests.support.relay import PostfixRelay

pytestmark = [pytest.mark.relay, pytest.mark.django_db(transaction=True)]

FINISHED = (
    MessageStatus.SENT,
    MessageStatus.PARTIAL,
    MessageStatus.FAILED,
    MessageStatus.CANCELLED,
)


def campaign_to(*addresses: str) -> list[Message]:
    """Bulk mail as a campaign queues it: one template, one small message per recipient."""
    template = bulk_template_store(
        from_=parse_address("Acme News <news@example.com>"),
        subject="Our news, {{ first_name }}",
        text="Dear {{ first_name }},\n\nHere is what is new.\n",
        html=None,
    )
    bulk_enqueue(
        template=template,
        recipients=[(parse_address(address), {"first_name": "Friend"}) for address in addresses],
        source=Source.CAMPAIGN,
    )
    return list(Message.objects.filter(lane=Lane.BULK).order_by("id"))


def finished(*messages: Message) -> bool:
    return all(status_of(message) in FINISHED for message in messages)


def test_a_hard_bounce_at_the_relay_suppresses_the_address_and_stops_the_next_campaign(
    relay_mailbox: PostfixRelay,
) -> None:
    company = company_on_relay(
        relay_mailbox, port=relay_mailbox.starttls_port, policy=SendAsPolicy.AS_USER
    )
    company.sender_email = "news@example.com"
    company.save()
    with running_worker():
        # A person's email to an address that does not exist: it fails, and the address
        # goes on the list, with its event, when the failure is recorded.
        typo = enqueue("reject@example.org", subject="Your quote")
        wait_until(lambda: status_of(typo) == MessageStatus.FAILED, what="the bounce", timeout=20)
        entry = Suppression.objects.get()
        assert (entry.address, entry.reason) == (
            "reject@example.org",
            SuppressionReason.HARD_BOUNCED,
        )
        assert "550 5.1.1" in entry.note
        event = Event.objects.get(kind=EventKind.RECIPIENT_SUPPRESSED)
        assert (event.recipient, event.message_id) == ("reject@example.org", typo.pk)

        # The campaign after it never offers that address to the relay.
        gone, member = campaign_to("Reject@Example.org", "member@example.net")
        wait_until(lambda: finished(gone, member), what="the campaign", timeout=20)

    assert status_of(member) == MessageStatus.SENT
    assert status_of(gone) == MessageStatus.CANCELLED
    recipient = gone.recipients.get()
    assert recipient.status == RecipientStatus.SUPPRESSED
    assert "on the suppression list — hard bounce" in recipient.last_text
    assert list(Attempt.objects.filter(message=gone).values_list("stage", flat=True)) == ["queue"]
    assert Event.objects.filter(kind=EventKind.MESSAGE_SUPPRESSED, message=gone).exists()
    (delivered,) = relay_mailbox.wait_for(1)
    assert delivered["Delivered-To"] == "member@example.net"


def test_bulk_mail_that_waited_meets_the_list_as_it_is_when_it_leaves(
    relay_mailbox: PostfixRelay,
) -> None:
    company_on_relay(relay_mailbox, port=relay_mailbox.starttls_port, policy=SendAsPolicy.AUTO)
    # Queued while the address was fine, for later (a schedule, a retry): by the time it
    # is due, its owner has unsubscribed.
    (waiting,) = campaign_to("ann@example.net")
    Message.objects.filter(pk=waiting.pk).update(
        next_attempt_at=timezone.now() + timezone.timedelta(hours=1)
    )
    suppression_add(actor=None, address="ANN@example.net", reason=SuppressionReason.UNSUBSCRIBED)
    Message.objects.filter(pk=waiting.pk).update(next_attempt_at=timezone.now())
    with running_worker():
        wait_until(lambda: finished(waiting), what="the waiting mail", timeout=20)
    recipient = waiting.recipients.get()
    assert recipient.status == RecipientStatus.SUPPRESSED
    assert "suppression list — unsubscribed." in recipient.last_text
    assert relay_mailbox.messages() == []


def test_transactional_mail_to_a_suppressed_address_is_sent(relay_mailbox: PostfixRelay) -> None:
    company_on_relay(relay_mailbox, port=relay_mailbox.starttls_port, policy=SendAsPolicy.AUTO)
    suppression_add(actor=None, address="ann@example.net", reason=SuppressionReason.UNSUBSCRIBED)
    invoice = enqueue("ann@example.net", subject="Your invoice")
    with running_worker():
        wait_until(lambda: status_of(invoice) == MessageStatus.SENT, what="sent", timeout=20)
    (delivered,) = relay_mailbox.wait_for(1)
    assert delivered["Subject"] == "Your invoice"


def test_a_bulk_message_to_several_recipients_skips_only_the_suppressed_one(
    relay_mailbox: PostfixRelay,
) -> None:
    company_on_relay(relay_mailbox, port=relay_mailbox.starttls_port, policy=SendAsPolicy.AUTO)
    suppression_add(actor=None, address="cy@example.net", reason=SuppressionReason.COMPLAINED)
    report = enqueue("ann@example.net", "cy@example.net", subject="Monthly report", lane=Lane.BULK)
    with running_worker():
        wait_until(lambda: finished(report), what="the report", timeout=20)
    statuses = dict(report.recipients.values_list("address", "status"))
    assert statuses == {"ann@example.net": "sent", "cy@example.net": "suppressed"}
    assert status_of(report) == MessageStatus.PARTIAL
    (delivered,) = relay_mailbox.wait_for(1)
    assert delivered["Delivered-To"] == "ann@example.net"


def test_a_report_in_the_bulk_lane_reaches_a_suppressed_address(
    relay_mailbox: PostfixRelay,
) -> None:
    # Reports take the bulk lane to stay out of a person's way, not because they are
    # marketing: a colleague who unsubscribed from campaigns still gets them.
    company_on_relay(relay_mailbox, port=relay_mailbox.starttls_port, policy=SendAsPolicy.AUTO)
    suppression_add(actor=None, address="boss@example.net", reason=SuppressionReason.UNSUBSCRIBED)
    report = enqueue(
        "boss@example.net", subject="Sales by day", lane=Lane.BULK, source=Source.REPORT
    )
    with running_worker():
        wait_until(lambda: finished(report), what="the report", timeout=20)
    assert status_of(report) == MessageStatus.SENT
    (delivered,) = relay_mailbox.wait_for(1)
    assert delivered["Subject"] == "Sales by day"
