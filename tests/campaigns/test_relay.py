"""Campaigns through the real Postfix relay (STARTTLS, AUTH), delivered by the real outbox
worker: who gets what, the RFC 8058 headers, suppression and consent at creation and at send
time, the pre-flight, the throttle, pause, resume, cancel, auto-pause, and a person's email
sent in the middle of a campaign."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter

import pytest
from django.test import Client

from postroom.accounts.models import Role, User
from postroom.campaigns import selectors, services
from postroom.campaigns.models import Campaign, CampaignStatus
from postroom.campaigns.monitor import campaign_refresh
from postroom.company.models import SendAsPolicy
from postroom.contacts import services as contact_services
from postroom.outbox.models import Message, MessageStatus, Recipient, RecipientStatus
from postroom.outbox.suppression import suppression_add
from tests.campaigns.conftest import (
    campaign_make,
    contact_make,
    job_run_here,
    list_make,
    template_make,
)
from tests.compose.conftest import compose_send
from tests.outbox.worker_harness import (
    company_on_relay,
    enqueue,
    running_worker,
    wait_until,
)
from tests.support.relay import PostfixRelay

pytestmark = [pytest.mark.relay, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def relay_company(relay_mailbox: PostfixRelay) -> PostfixRelay:
    company_on_relay(relay_mailbox, port=relay_mailbox.starttls_port, policy=SendAsPolicy.AUTO)
    return relay_mailbox


def status(campaign: Campaign) -> str:
    return campaign_refresh(selectors.campaign_get(pk=campaign.pk)).status


def sent(campaign: Campaign) -> int:
    return selectors.campaign_stats(campaign).sent


def received_by(relay: PostfixRelay) -> Counter[str]:
    return Counter(str(message["X-Original-To"]) for message in relay.messages())


def sent_now(contacts: int, **fields: object) -> Campaign:
    people = [contact_make(f"person{n}@example.net", first_name=f"P{n}") for n in range(contacts)]
    campaign = campaign_make(list_make("People", people), **fields)
    services.campaign_send(actor=None, campaign=campaign)
    job_run_here(campaign)
    assert campaign.is_expanded, campaign.paused_reason
    return campaign


def test_campaign_messages_carry_rfc_8058_headers_and_no_other_mail_does(
    relay_company: PostfixRelay,
) -> None:
    alice = User.objects.create_user(
        username="alice", email="relayuser@example.com", display_name="Alice", role=Role.STAFF
    )
    ann = contact_make("ann@example.net", first_name="Ann")
    campaign = sent_now(3)
    compose_send(user=alice, to=[ann], subject="About your order", text="Hello Ann")
    enqueue("api@example.net", subject="Your invoice")
    with running_worker():
        wait_until(lambda: status(campaign) == CampaignStatus.FINISHED, timeout=30)
        messages = relay_company.wait_for(5, timeout=20)

    campaign_mail = [m for m in messages if m["Feedback-ID"]]
    other_mail = [m for m in messages if not m["Feedback-ID"]]
    assert len(campaign_mail) == 3 and len(other_mail) == 2
    for message in campaign_mail:
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        https, mailto = (part.strip(" <>") for part in message["List-Unsubscribe"].split(","))
        assert "/u/" in https and mailto.startswith("mailto:relayuser@example.com?")
    for message in other_mail:
        assert message["List-Unsubscribe"] is None
        assert message["List-Unsubscribe-Post"] is None


def test_suppressed_and_non_consenting_contacts_are_left_out_at_creation_and_at_send_time(
    relay_company: PostfixRelay,
) -> None:
    keep = contact_make("keep@example.net")
    early = contact_make("early@example.net")
    late = contact_make("late@example.net")
    withdrawn = contact_make("withdrawn@example.net")
    never = contact_make("never@example.net", consent=False)
    suppression_add(actor=None, address=early.email)  # before Send: never written
    campaign = campaign_make(list_make("All", [keep, early, late, withdrawn, never]))
    services.campaign_send(actor=None, campaign=campaign)
    job_run_here(campaign)
    assert campaign.queued_count == 3  # keep, late, withdrawn
    # After the messages were written, before they leave:
    suppression_add(actor=None, address=late.email, reason="unsubscribed")
    contact_services.contact_update(actor=None, contact=withdrawn, marketing_consent=False)
    with running_worker():
        wait_until(lambda: status(campaign) == CampaignStatus.FINISHED, timeout=30)
        time.sleep(0.5)  # anything wrongly sent would be in the Maildir by now
    assert received_by(relay_company) == Counter({"keep@example.net": 1})
    statuses = dict(
        Recipient.objects.filter(message__bulk_template=campaign.bulk_template).values_list(
            "address", "status"
        )
    )
    assert statuses == {
        "keep@example.net": RecipientStatus.SENT,
        "late@example.net": RecipientStatus.SUPPRESSED,
        "withdrawn@example.net": RecipientStatus.CANCELLED,
    }
    stats = selectors.campaign_stats(campaign)
    assert (stats.sent, stats.suppressed, stats.no_consent, stats.cancelled) == (1, 2, 1, 1)


def test_a_failing_row_stops_the_campaign_before_any_message_with_a_report(
    relay_company: PostfixRelay,
) -> None:
    named = [contact_make(f"named{n}@example.net", first_name=f"N{n}") for n in range(3)]
    nameless = contact_make("nameless@example.net")
    template = template_make(html="<p>Dear {{ contact.first_name[0] }}.</p>", name="Initial")
    campaign = campaign_make(list_make("Mixed", [*named, nameless]), template=template)
    services.campaign_send(actor=None, campaign=campaign)
    job_run_here(campaign)

    assert campaign.status == CampaignStatus.DRAFT
    assert (campaign.preflight_checked, campaign.preflight_failed) == (4, 1)
    [(contact_id, address, problem)] = campaign.preflight_report
    assert (contact_id, address) == (nameless.pk, "nameless@example.net")
    assert "merge field" in problem
    assert not Message.objects.filter(bulk_template=campaign.bulk_template).exists()


def test_the_throttle_spaces_the_messages(relay_company: PostfixRelay) -> None:
    campaign = sent_now(4, throttle_per_minute=60)  # one a second
    with running_worker():
        wait_until(lambda: status(campaign) == CampaignStatus.FINISHED, timeout=30)
    times = sorted(
        Recipient.objects.filter(message__bulk_template=campaign.bulk_template).values_list(
            "sent_at", flat=True
        )
    )
    assert campaign.send_from is not None
    for number, sent_at in enumerate(times):
        # Message n is due n seconds after the first (in whole seconds); never before.
        assert sent_at >= campaign.send_from.replace(microsecond=0) + dt.timedelta(seconds=number)
    assert (times[-1] - times[0]).total_seconds() >= 2.5


def test_pause_stops_within_a_second_and_resume_sends_each_remaining_contact_once(
    relay_company: PostfixRelay,
) -> None:
    campaign = sent_now(8, throttle_per_minute=120)  # two a second
    with running_worker():
        wait_until(lambda: sent(campaign) >= 2, timeout=20)
        services.campaign_pause(actor=None, campaign=campaign)
        paused_at = time.monotonic()
        time.sleep(1.0)  # the hold takes effect within a second: count after it
        at_pause = sent(campaign)
        time.sleep(2.5)  # five more would be due meanwhile without the pause
        assert sent(campaign) == at_pause, "mail left while the campaign was paused"
        assert status(campaign) == CampaignStatus.PAUSED
        assert time.monotonic() - paused_at < 10
        services.campaign_resume(actor=None, campaign=campaign)
        wait_until(lambda: status(campaign) == CampaignStatus.FINISHED, timeout=30)
        relay_company.wait_for(8, timeout=20)
    assert received_by(relay_company) == Counter({f"person{n}@example.net": 1 for n in range(8)})


def test_cancel_stops_what_waits_for_good(relay_company: PostfixRelay) -> None:
    campaign = sent_now(6, throttle_per_minute=60)
    with running_worker():
        wait_until(lambda: sent(campaign) >= 1, timeout=20)
        services.campaign_cancel(actor=None, campaign=campaign)
        time.sleep(2.5)
        delivered = sent(campaign)
    assert delivered < 6
    assert status(campaign) == CampaignStatus.CANCELLED
    stats = selectors.campaign_stats(campaign)
    assert stats.waiting == 0 and stats.cancelled == 6 - delivered
    assert len(relay_company.messages()) == delivered


def test_too_many_failures_pause_the_campaign_with_the_reason(
    relay_company: PostfixRelay,
) -> None:
    good = [contact_make(f"good{n}@example.net") for n in range(4)]
    bad = [contact_make(f"reject+{n}@example.net") for n in range(8)]
    campaign = campaign_make(
        list_make("Old list", [*bad, *good]),
        auto_pause_window=10,
        auto_pause_percent=30,
        throttle_per_minute=600,  # ten a second: the window fills before the list ends
    )
    services.campaign_send(actor=None, campaign=campaign)
    job_run_here(campaign)
    with running_worker():
        wait_until(lambda: status(campaign) == CampaignStatus.PAUSED, timeout=30)
    campaign.refresh_from_db()
    assert "of the last 10 messages failed" in campaign.paused_reason
    assert selectors.campaign_stats(campaign).failed >= 4


def test_a_contact_email_sent_during_a_campaign_leaves_at_once(
    relay_company: PostfixRelay,
) -> None:
    alice = User.objects.create_user(
        username="alice", email="relayuser@example.com", display_name="Alice", role=Role.STAFF
    )
    ann = contact_make("ann@example.net", first_name="Ann")
    campaign = sent_now(300)
    with running_worker(concurrency=8, batch_size=100):
        wait_until(lambda: sent(campaign) >= 20, timeout=30)
        started = time.monotonic()
        (message,) = compose_send(user=alice, to=[ann], subject="Quick question", text="Hi")
        wait_until(
            lambda: Message.objects.get(pk=message.pk).status == MessageStatus.SENT, timeout=10
        )
        latency = time.monotonic() - started
        campaign_still_sending = selectors.campaign_stats(campaign).waiting > 0
    assert campaign_still_sending, "the campaign ended before the email: nothing was shown"
    assert latency < 2.0, f"a person's email waited {latency:.2f} s behind the campaign"


def test_a_campaign_with_a_deferred_recipient_is_not_finished_and_its_page_says_so(
    relay_company: PostfixRelay, marketer: User, client: Client
) -> None:
    people = [contact_make("fine@example.net"), contact_make("tempfail+1@example.net")]
    campaign = campaign_make(list_make("Two", people))
    services.campaign_send(actor=None, campaign=campaign)
    job_run_here(campaign)
    with running_worker():
        wait_until(lambda: selectors.campaign_stats(campaign).deferred == 1, timeout=30)
    stats = selectors.campaign_stats(campaign)
    assert (stats.sent, stats.deferred) == (1, 1)
    assert status(campaign) == CampaignStatus.SENDING, "finished with a recipient deferred"
    client.force_login(marketer)
    page = client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert "Not finished while 1 recipient is deferred" in page
    listed = client.get(f"/campaigns/{campaign.pk}/?recipients=deferred").content.decode()
    assert "tempfail+1@example.net" in listed and "fine@example.net" not in listed
