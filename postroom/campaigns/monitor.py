"""Watching running campaigns: their outcomes, their clock, and contacts who step out.

- The outbox tells `bulk_outcomes_seen` what it recorded about bulk mail
  (postroom.outbox.observers). A campaign keeps its last outcomes (`recent_outcomes`) and
  pauses itself when more than `auto_pause_percent` of the last `auto_pause_window` were
  permanent failures: a bad list, or a relay that started refusing us. Temporary failures
  are the outbox's to retry, and throttling replies slow the connection pool down
  (postroom.mail.pool); neither counts.
- `campaign_refresh` moves a campaign on with time: scheduled → sending once its first
  message is due; sending → finished once everything is written and no message of it waits
  (every recipient sent, failed, suppressed or cancelled). Pages, the API and the outcomes
  call it.
- A contact who withdraws marketing consent or is made inactive (on the contact's page, the
  API, or a CSV import) gets nothing more from a running campaign: their waiting campaign
  mail is cancelled. Unsubscribes and bounces need nothing here: they suppress the address,
  which the outbox checks when each message leaves.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import transaction
from django.db.models.signals import post_save
from django.utils import timezone

from postroom.campaigns.models import (
    RUNNING_STATUSES,
    Campaign,
    CampaignRecipient,
    CampaignStatus,
)
from postroom.campaigns.services import campaign_pause
from postroom.contacts.import_runs import import_written
from postroom.contacts.models import Contact, ImportJob
from postroom.outbox import holds, observers
from postroom.outbox.models import ACTIVE_MESSAGE_STATUSES, Message, RecipientStatus

logger = logging.getLogger(__name__)

# How often, per campaign, the outcomes trigger the "is it finished?" query: it reads the
# campaign's active messages, too costly for every recorded batch (dozens a second).
FINISH_CHECK_SECONDS = 2.0
_finish_checked: dict[int, float] = {}
_RECEIVER = "postroom.campaigns.monitor"


def connect() -> None:
    observers.bulk_observer_add(bulk_outcomes_seen)
    post_save.connect(_contact_saved, sender=Contact, dispatch_uid=_RECEIVER)
    import_written.connect(_contacts_imported, sender=ImportJob, dispatch_uid=_RECEIVER)


# Outcomes.


def bulk_outcomes_seen(outcomes: Sequence[observers.BulkOutcome]) -> None:
    by_template: dict[int, list[observers.BulkOutcome]] = collections.defaultdict(list)
    for outcome in outcomes:
        by_template[outcome.template_id].append(outcome)
    campaigns = Campaign.objects.filter(
        bulk_template_id__in=list(by_template), status__in=RUNNING_STATUSES
    ).only(
        "pk",
        "name",
        "status",
        "bulk_template_id",
        "is_expanded",
        "auto_pause_window",
        "auto_pause_percent",
        "recent_outcomes",
    )
    for campaign in campaigns:
        assert campaign.bulk_template_id is not None
        seen = by_template[campaign.bulk_template_id]
        _window_add(campaign, seen)
        if campaign.status == CampaignStatus.PAUSED:
            continue  # paused by the window just now
        if campaign.status == CampaignStatus.SCHEDULED:
            Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.SCHEDULED).update(
                status=CampaignStatus.SENDING
            )
        now = time.monotonic()
        if now - _finish_checked.get(campaign.pk, -FINISH_CHECK_SECONDS) >= FINISH_CHECK_SECONDS:
            _finish_checked[campaign.pk] = now
            campaign_finish_if_done(campaign)


def _window_add(campaign: Campaign, seen: Iterable[observers.BulkOutcome]) -> None:
    """Add outcomes to the campaign's window; pause it when too many failed."""
    window = campaign.auto_pause_window
    marks = "".join("1" if outcome.status == RecipientStatus.FAILED else "0" for outcome in seen)
    recent = (campaign.recent_outcomes + marks)[-window:]
    failures = recent.count("1")
    if failures or recent != campaign.recent_outcomes:
        # A full window of successes stays one: most batches of a good list write nothing.
        Campaign.objects.filter(pk=campaign.pk).update(recent_outcomes=recent)
    if len(recent) < window or failures * 100 <= campaign.auto_pause_percent * window:
        return
    campaign_pause(
        actor=None,
        campaign=campaign,
        reason=(
            f"Paused by Postroom: {failures} of the last {window} messages failed "
            f"(more than {campaign.auto_pause_percent} %). Look at the failed recipients "
            "below: a bad list, or the relay refusing this campaign. Resume when it is "
            "fixed."
        ),
    )
    campaign.status = CampaignStatus.PAUSED


# The clock.


def campaign_finish_if_done(campaign: Campaign) -> bool:
    """Mark a fully written campaign finished when none of its messages waits."""
    if not campaign.is_expanded or campaign.bulk_template_id is None:
        return False
    waiting = Message.objects.filter(
        bulk_template_id=campaign.bulk_template_id, status__in=ACTIVE_MESSAGE_STATUSES
    )
    if waiting.exists():
        return False
    return bool(
        Campaign.objects.filter(pk=campaign.pk, status__in=RUNNING_STATUSES).update(
            status=CampaignStatus.FINISHED, finished_at=timezone.now()
        )
    )


def campaign_refresh(campaign: Campaign) -> Campaign:
    """Bring the campaign's status up to date with the clock and its mail."""
    if campaign.status not in RUNNING_STATUSES:
        return campaign
    now = timezone.now()
    changed = False
    if (
        campaign.status == CampaignStatus.SCHEDULED
        and campaign.send_from
        and campaign.send_from <= now
    ):
        changed |= bool(
            Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.SCHEDULED).update(
                status=CampaignStatus.SENDING
            )
        )
    changed |= campaign_finish_if_done(campaign)
    if changed:
        campaign.refresh_from_db()
    return campaign


# Contacts who step out.


def campaign_mail_cancel_for(contact_ids: Sequence[int], *, reason: str) -> int:
    """Cancel the waiting mail of running or paused campaigns to these contacts."""
    rows = CampaignRecipient.objects.filter(
        contact_id__in=list(contact_ids),
        campaign__status__in=[*RUNNING_STATUSES, CampaignStatus.PAUSED],
    ).values_list("campaign__bulk_template_id", "address")
    by_template: dict[int, list[str]] = collections.defaultdict(list)
    for template_id, address in rows:
        by_template[template_id].append(address)
    return sum(
        holds.bulk_messages_cancel(template_id=template_id, addresses=addresses, reason=reason)
        for template_id, addresses in by_template.items()
    )


def _contact_saved(sender: Any, *, instance: Contact, created: bool, **_: Any) -> None:
    if created or (instance.marketing_consent and instance.is_active):
        return
    reason = (
        "Not sent: the contact withdrew marketing consent."
        if not instance.marketing_consent
        else "Not sent: the contact was made inactive."
    )
    transaction.on_commit(lambda: campaign_mail_cancel_for([instance.pk], reason=reason))


def _contacts_imported(sender: Any, *, job: ImportJob, keys: Sequence[str], **_: Any) -> None:
    """Inside the import's transaction: the imported contacts who may no longer get
    campaigns lose their waiting campaign mail with it."""
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        stepped_out = list(
            Contact.objects.filter(email_key__in=chunk)
            .exclude(marketing_consent=True, is_active=True)
            .filter(campaign_recipients__isnull=False)
            .values_list("pk", flat=True)
            .distinct()
        )
        if stepped_out:
            campaign_mail_cancel_for(
                stepped_out, reason="Not sent: a CSV import withdrew the contact's consent."
            )
