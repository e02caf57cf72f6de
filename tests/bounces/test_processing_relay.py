"""End to end with the real Postfix relay and the real worker: a message leaves with the
tagged return path, the relay accepts it, fails to deliver to an unknown user and sends
its own RFC 3464 bounce to the tagged address; processing that bounce fails the recipient
after the fact, suppresses it, writes its event and leaves the other recipient alone."""

from __future__ import annotations

import email
import json
from collections.abc import Iterator
from email.message import Message as EmailMessage

import pytest

from postroom.bounces.processing import BY_TAG, bounce_mail_process
from postroom.company.models import SendAsPolicy
from postroom.outbox.models import (
    Event,
    EventKind,
    MessageStatus,
    RecipientStatus,
    Suppression,
    SuppressionReason,
)
from postroom.webhooks.delivery import events_fan_out
from postroom.webhooks.models import DeliveryStatus
from postroom.webhooks.services import endpoint_create
from tests.accounts.factories import admin_make
from tests.bounces.bouncing_relay import UNKNOWN_USER, BouncingRelay
from tests.outbox.worker_harness import (
    company_on_relay,
    enqueue,
    running_worker,
    status_of,
    wait_until,
)
from tests.support.certs import CertAuthority
from tests.support.relay import RelayPrerequisiteError
from tests.webhooks.conftest import dispatch_due
from tests.webhooks.receiver import running_receiver

pytestmark = [pytest.mark.relay, pytest.mark.django_db(transaction=True)]

BOUNCES = "bounces@example.com"


@pytest.fixture(scope="module")
def bouncing_relay(test_ca: CertAuthority) -> Iterator[BouncingRelay]:
    """A Postfix relay of its own with one unknown user; fails (never skips) without
    Postfix or root, as the session's relay does."""
    instance = BouncingRelay(ca=test_ca)
    try:
        instance.start()
    except RelayPrerequisiteError as exc:
        missing = str(exc)
    else:
        missing = ""
    if missing:
        pytest.fail(missing, pytrace=False)
    yield instance
    instance.stop()


def parsed(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw)


def test_a_real_postfix_bounce_to_the_tagged_return_path_fails_only_its_recipient(
    bouncing_relay: BouncingRelay,
) -> None:
    bouncing_relay.clear()
    company = company_on_relay(
        bouncing_relay, port=bouncing_relay.starttls_port, policy=SendAsPolicy.AS_USER
    )
    company.bounce_address, company.tag_return_path = BOUNCES, True
    company.save()
    unknown = f"{UNKNOWN_USER}@example.net"
    with running_worker():
        message = enqueue(unknown, "ann@example.org", subject="Your invoice")
        wait_until(lambda: status_of(message) == MessageStatus.SENT, what="the send", timeout=20)
    # The relay took both; one is delivered, the other comes back as Postfix's own bounce.
    bouncing_relay.wait_for(2, timeout=20)
    mails = [parsed(raw) for raw in bouncing_relay.raw_messages()]
    (delivered,) = [mail for mail in mails if mail["Delivered-To"] == "ann@example.org"]
    (bounce_raw,) = [
        raw for raw in bouncing_relay.raw_messages() if parsed(raw)["Return-Path"] == "<>"
    ]
    tagged = delivered["Return-Path"].strip("<>")
    assert tagged.startswith(f"bounces+m{message.pk}-") and tagged.endswith("@example.com")
    assert parsed(bounce_raw)["Delivered-To"] == tagged

    report = bounce_mail_process(bounce_raw, mailbox_ref="imap 1:1 INBOX")

    assert (report.kind, report.message, report.matched_by) == ("hard", message, BY_TAG)
    assert (report.recipient, report.status) == (unknown, "5.1.1")
    message.refresh_from_db()
    assert message.status == MessageStatus.PARTIAL
    assert dict(message.recipients.values_list("address", "status")) == {
        unknown: RecipientStatus.FAILED,
        "ann@example.org": RecipientStatus.SENT,
    }
    (entry,) = Suppression.objects.all()
    assert (entry.address, entry.reason) == (unknown, SuppressionReason.HARD_BOUNCED)
    bounced = Event.objects.get(kind=EventKind.RECIPIENT_BOUNCED)
    assert (bounced.message_id, bounced.recipient) == (message.pk, unknown)
    assert (
        not Event.objects.filter(recipient="ann@example.org")
        .exclude(kind__in=[EventKind.MESSAGE_QUEUED, EventKind.MESSAGE_SENT])
        .exists()
    )


def test_one_dsn_for_two_unknown_recipients_fails_both(bouncing_relay: BouncingRelay) -> None:
    bouncing_relay.clear()
    company_on_relay(bouncing_relay, port=bouncing_relay.starttls_port, policy=SendAsPolicy.AS_USER)
    first, second = f"{UNKNOWN_USER}@example.net", f"{UNKNOWN_USER}@example.org"
    with running_worker():
        message = enqueue(first, second, "bob@example.org")
        wait_until(lambda: status_of(message) == MessageStatus.SENT, what="the send", timeout=20)
    bouncing_relay.wait_for(2, timeout=20)
    (bounce_raw,) = [
        raw for raw in bouncing_relay.raw_messages() if parsed(raw)["Return-Path"] == "<>"
    ]
    # Untagged this time: matched by the Message-ID Postfix returns with the bounce.
    report = bounce_mail_process(bounce_raw, mailbox_ref="uid 2")
    assert report.matched_by == "Message-ID"
    assert dict(message.recipients.values_list("address", "status")) == {
        first: RecipientStatus.FAILED,
        second: RecipientStatus.FAILED,
        "bob@example.org": RecipientStatus.SENT,
    }
    assert set(Suppression.objects.values_list("address", flat=True)) == {first, second}
    assert report.action.count("Recipient marked failed") == 2


def test_a_webhook_subscribed_to_bounces_receives_the_bounce(
    bouncing_relay: BouncingRelay,
) -> None:
    company = company_on_relay(
        bouncing_relay, port=bouncing_relay.starttls_port, policy=SendAsPolicy.AS_USER
    )
    company.bounce_address, company.tag_return_path = BOUNCES, True
    company.save()
    bouncing_relay.clear()
    with running_receiver() as receiver:
        endpoint_create(
            actor=admin_make(),
            url=receiver.url,
            all_events=False,
            event_types=[EventKind.RECIPIENT_BOUNCED],
            is_internal_allowed=True,
        )
        with running_worker():
            message = enqueue(f"{UNKNOWN_USER}@example.net")
            wait_until(lambda: status_of(message) == MessageStatus.SENT, what="send", timeout=20)
        bouncing_relay.wait_for(1, timeout=20)
        (bounce_raw,) = bouncing_relay.raw_messages()
        bounce_mail_process(bounce_raw, mailbox_ref="uid 1")
        events_fan_out()
        assert dispatch_due() == [DeliveryStatus.SUCCEEDED]
        (request,) = receiver.requests
    payload = json.loads(request.body)
    assert payload["type"] == "recipient.bounced"
    assert payload["data"]["message_id"] == message.message_id
    assert payload["data"]["status"] == "5.1.1"
