"""Crash safety of a campaign with real processes: `postroom worker` (which runs both the
campaign's job and the outbox) killed with SIGKILL twice in a 20,000-recipient campaign,
once while the job writes the messages and once while the outbox sends them, then a new
worker. Every contact gets the campaign exactly once, except at most the one message per
connection that was in flight at a kill, which comes again with its Message-ID unchanged."""

from __future__ import annotations

import collections
import signal
import subprocess
from collections.abc import Callable, Iterator
from email.parser import BytesHeaderParser
from email.policy import default as default_policy

import pytest
from django.db import transaction
from django.utils import timezone

from postroom.audiences.services import list_members_insert
from postroom.campaigns import selectors, services
from postroom.campaigns.models import Campaign, CampaignRecipient, CampaignStatus
from postroom.campaigns.monitor import campaign_refresh
from postroom.company.models import SendAsPolicy
from postroom.contacts.models import Contact
from postroom.outbox.models import Message, MessageStatus
from postroom.queue.models import Job, JobState
from tests.campaigns.conftest import campaign_make, list_make
from tests.outbox.worker_harness import company_on_relay, wait_until, worker_process_start
from tests.support.relay import PostfixRelay

pytestmark = [pytest.mark.relay, pytest.mark.django_db(transaction=True)]

RECIPIENTS = 20_000
CONNECTIONS = 4


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in started:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def audience_of(count: int) -> list[int]:
    """`count` consenting contacts, written in bulk (the contacts are not under test)."""
    now = timezone.now()
    with transaction.atomic():
        created = Contact.objects.bulk_create(
            Contact(
                email=f"member{n}@example.net",
                email_key=f"member{n}@example.net",
                first_name=f"M{n}",
                marketing_consent=True,
                marketing_consent_at=now,
            )
            for n in range(count)
        )
    return [contact.pk for contact in created]


def written(campaign: Campaign) -> int:
    return Campaign.objects.get(pk=campaign.pk).queued_count


def sent(campaign: Campaign) -> int:
    return selectors.campaign_stats(campaign).sent


def ended(campaign: Campaign) -> bool:
    return campaign_refresh(selectors.campaign_get(pk=campaign.pk)).status in (
        CampaignStatus.FINISHED,
        CampaignStatus.PAUSED,
    )


def kill_when(
    workers: list[subprocess.Popen[bytes]], name: str, condition: Callable[[], bool], what: str
) -> None:
    """Start a worker, SIGKILL it once `condition` holds, and end its leases at once (the
    job's a minute, the messages' ten: their ends are what a successor waits for)."""
    worker = worker_process_start(name, "--batch", "200")
    workers.append(worker)
    wait_until(condition, timeout=300, what=what)
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    Job.objects.filter(state=JobState.RUNNING).update(lease_until=timezone.now())
    Message.objects.filter(status=MessageStatus.SENDING).update(next_attempt_at=timezone.now())


def test_kill_9_during_a_20000_recipient_campaign_then_restart_mails_every_contact_once(
    relay_mailbox: PostfixRelay, workers: list[subprocess.Popen[bytes]]
) -> None:
    company = company_on_relay(
        relay_mailbox, port=relay_mailbox.starttls_port, policy=SendAsPolicy.AUTO
    )
    company.smtp_max_connections = CONNECTIONS
    company.save()
    contact_list = list_make("Everyone", [])
    list_members_insert(contact_list, audience_of(RECIPIENTS))
    campaign = campaign_make(contact_list)
    services.campaign_send(actor=None, campaign=campaign)

    # First kill: while the job writes the messages (the checkpoint must hold).
    kill_when(workers, "doomed-1", lambda: written(campaign) >= 3000, what="half written")
    killed_at = Campaign.objects.get(pk=campaign.pk)
    assert killed_at.queued_count < RECIPIENTS and not killed_at.is_expanded, (
        "the job had written everything before the kill: the resume was not exercised"
    )
    # Second kill: while the outbox sends them (in-flight messages may repeat).
    kill_when(workers, "doomed-2", lambda: sent(campaign) >= 5000, what="a quarter sent")
    workers.append(worker_process_start("successor", "--batch", "200"))
    wait_until(lambda: ended(campaign), timeout=600, what="the campaign finished")

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.FINISHED, campaign.paused_reason
    assert campaign.queued_count == RECIPIENTS
    assert CampaignRecipient.objects.filter(campaign=campaign).count() == RECIPIENTS
    assert Message.objects.filter(bulk_template=campaign.bulk_template).count() == RECIPIENTS
    relay_mailbox.wait_for(RECIPIENTS, timeout=120)
    per_address: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    parser = BytesHeaderParser(policy=default_policy)
    for raw in relay_mailbox.raw_messages():
        headers = parser.parsebytes(raw)
        per_address[str(headers["X-Original-To"])][str(headers["Message-ID"])] += 1
    assert set(per_address) == {f"member{n}@example.net" for n in range(RECIPIENTS)}
    assert all(len(ids) == 1 for ids in per_address.values()), "a contact got two messages"
    repeated = {address: ids for address, ids in per_address.items() if ids.total() > 1}
    # Per kill, each connection has at most one message the server took but whose "sent"
    # the dead worker had not committed; it goes again with the same Message-ID.
    assert len(repeated) <= 2 * CONNECTIONS, repeated
