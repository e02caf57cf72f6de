"""A campaign from Send to finished through the real outbox worker and a real SMTP server
(tests/support/smtpd.py): who gets it, with which headers, and what the page counts."""

from __future__ import annotations

import datetime as dt
import email
import zoneinfo
from email.policy import default as default_policy

import pytest
from django.utils import timezone

from postroom.campaigns import selectors, services
from postroom.campaigns.models import CampaignRecipient, CampaignStatus
from postroom.campaigns.monitor import campaign_refresh
from postroom.outbox.models import Message
from postroom.outbox.suppression import suppression_add
from tests.campaigns.conftest import campaign_make, contact_make, job_run_here, list_make
from tests.outbox.worker_harness import company_smtp_at, running_worker, wait_until
from tests.support.smtpd import ScriptedSmtpServer, SmtpdScript

pytestmark = pytest.mark.django_db(transaction=True)


def finished(campaign_pk: int) -> bool:
    campaign = selectors.campaign_get(pk=campaign_pk)
    return campaign_refresh(campaign).status == CampaignStatus.FINISHED


def test_each_consenting_unsuppressed_contact_gets_the_campaign_once_with_its_own_links() -> None:
    ann = contact_make("ann@example.net", first_name="Ann")
    bob = contact_make("bob@example.net", first_name="Bob")
    carl = contact_make("carl@example.net", consent=False)
    dora = contact_make("dora@example.net")
    eve = contact_make("eve@example.net", is_active=False)
    suppression_add(actor=None, address=dora.email, reason="manual")
    contact_list = list_make("Newsletter", [ann, bob, carl, dora, eve])
    with ScriptedSmtpServer(SmtpdScript()) as server:
        company_smtp_at(server.port)
        campaign = campaign_make(contact_list)
        services.campaign_send(actor=None, campaign=campaign)
        job_run_here(campaign)
        assert campaign.is_expanded and campaign.queued_count == 2
        with running_worker():
            wait_until(lambda: finished(campaign.pk), timeout=20, what="campaign finished")
        received = {m.rcpt_tos[0]: m for m in list(server.messages)}

    assert set(received) == {"ann@example.net", "bob@example.net"}
    tokens = set()
    for item in received.values():
        parsed = email.message_from_bytes(item.content, policy=default_policy)
        assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        # The URLs as they are on the wire: whole, never RFC 2047 encoded words (RFC 2369 §2).
        head = item.content.split(b"\r\n\r\n", 1)[0].decode()
        line = head[head.index("List-Unsubscribe:") :].split("\r\nList-Unsubscribe-Post")[0]
        assert "=?" not in line and "<http://127.0.0.1:8000/u/" in line
        https, mailto = (part.strip(" <>") for part in parsed["List-Unsubscribe"].split(","))
        assert https.startswith("http://127.0.0.1:8000/u/")
        assert mailto.startswith("mailto:office@example.com?subject=unsubscribe%20")
        tokens.add(https)
        body = parsed.get_body(("plain",))
        assert body is not None and https in body.get_content()
        html = parsed.get_body(("html",))
        assert html is not None and 'style="color: #123456;"' in html.get_content()
    assert len(tokens) == 2, "each recipient has a link of their own"
    stats = selectors.campaign_stats(campaign)
    assert (stats.sent, stats.no_consent, stats.suppressed, stats.audience) == (2, 1, 1, 4)
    assert CampaignRecipient.objects.filter(campaign=campaign).count() == 2
    assert Message.objects.filter(bulk_template=campaign.bulk_template).count() == 2


def test_a_scheduled_campaign_is_checked_and_written_now_and_due_at_its_time() -> None:
    zone = zoneinfo.ZoneInfo("America/New_York")
    at = (timezone.now() + dt.timedelta(days=2)).astimezone(zone).replace(second=0, microsecond=0)
    ann = contact_make("ann@example.net", first_name="Ann")
    company_smtp_at(2525)
    campaign = campaign_make(list_make("One", [ann]), scheduled_at=at, time_zone=zone.key)
    services.campaign_send(actor=None, campaign=campaign)
    job_run_here(campaign)
    assert campaign.status == CampaignStatus.SCHEDULED and campaign.is_expanded
    message = Message.objects.get(bulk_template=campaign.bulk_template)
    assert message.next_attempt_at == at and message.not_before_at == at
    assert campaign_refresh(campaign).status == CampaignStatus.SCHEDULED
    paused = services.campaign_pause(actor=None, campaign=campaign)
    assert paused.status == CampaignStatus.PAUSED
    resumed = services.campaign_resume(actor=None, campaign=campaign)
    assert resumed.status == CampaignStatus.SCHEDULED
    message.refresh_from_db()
    assert at <= message.next_attempt_at < at + dt.timedelta(minutes=1), "moved by the pause"
