"""Read campaigns: the list, one campaign, its statistics, its chart, its recipients.

A campaign's mail is the outbox's: its statistics are counts of the outbox recipients of
its bulk template (sent, deferred, failed, suppressed at send time …), beside what the
expansion counted (left out for consent or suppression) and what the recipients did
(unsubscribed, opened, clicked: `CampaignRecipient`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Count, Max, Min, Q, QuerySet
from django.db.models.functions import TruncDay, TruncHour, TruncMinute

from postroom.campaigns.models import Campaign, CampaignRecipient
from postroom.contacts.models import Contact
from postroom.core.errors import NotFoundError
from postroom.outbox.models import Recipient, RecipientStatus
from postroom.queue.keyset import KeysetPage, keyset_page

RECIPIENTS_PAGE_SIZE = 50
# The chart's bars: at most this many, each a minute, an hour or a day.
CHART_MAX_BARS = 60


def campaign_list(*, search: str = "", status: str = "") -> QuerySet[Campaign]:
    campaigns = Campaign.objects.select_related("template", "created_by")
    for word in search.split():
        campaigns = campaigns.filter(Q(name__icontains=word) | Q(subject__icontains=word))
    if status:
        campaigns = campaigns.filter(status=status)
    return campaigns.order_by("-id")


def campaign_get(*, pk: int) -> Campaign:
    try:
        return Campaign.objects.select_related(
            "template", "sender_user", "created_by", "started_by", "job"
        ).get(pk=pk)
    except Campaign.DoesNotExist:
        raise NotFoundError(f"There is no campaign #{pk}; it may have been deleted.") from None


@dataclass(frozen=True)
class CampaignStats:
    audience: int  # members of the lists and segments met so far, each once
    written: int  # messages written to the outbox
    waiting: int  # queued or being sent now
    sent: int
    captured: int  # sandbox mode: taken by the capture, never delivered
    deferred: int  # a temporary failure: the outbox tries again
    failed: int
    suppressed: int  # left out at creation, or skipped when leaving
    no_consent: int
    cancelled: int
    unsubscribed: int
    opened: int
    clicked: int
    by_status: dict[str, int] = field(default_factory=dict)

    @property
    def finished(self) -> int:
        return (
            self.sent
            + self.captured
            + self.failed
            + self.cancelled
            + self.by_status.get(RecipientStatus.SUPPRESSED, 0)
            + self.by_status.get(RecipientStatus.UNCERTAIN, 0)
        )

    @property
    def percent_done(self) -> int:
        return 100 * self.finished // self.written if self.written else 0


def _outbox_recipients(campaign: Campaign) -> QuerySet[Recipient]:
    if campaign.bulk_template_id is None:
        return Recipient.objects.none()
    return Recipient.objects.filter(message__bulk_template_id=campaign.bulk_template_id)


def campaign_stats(campaign: Campaign) -> CampaignStats:
    by_status = dict(
        _outbox_recipients(campaign)
        .values_list("status")
        .annotate(count=Count("id"))
        .values_list("status", "count")
    )
    responses = CampaignRecipient.objects.filter(campaign=campaign).aggregate(
        unsubscribed=Count("id", filter=Q(unsubscribed_at__isnull=False)),
        opened=Count("id", filter=Q(opened_at__isnull=False)),
        clicked=Count("id", filter=Q(clicked_at__isnull=False)),
    )

    def count(*statuses: str) -> int:
        return sum(by_status.get(status, 0) for status in statuses)

    written = sum(by_status.values())
    return CampaignStats(
        audience=written + campaign.skipped_no_consent + campaign.skipped_suppressed,
        written=written,
        waiting=count(RecipientStatus.QUEUED, RecipientStatus.SENDING),
        sent=count(RecipientStatus.SENT),
        captured=count(RecipientStatus.CAPTURED),
        deferred=count(RecipientStatus.DEFERRED),
        failed=count(RecipientStatus.FAILED, RecipientStatus.UNCERTAIN),
        suppressed=campaign.skipped_suppressed + count(RecipientStatus.SUPPRESSED),
        no_consent=campaign.skipped_no_consent,
        cancelled=count(RecipientStatus.CANCELLED),
        unsubscribed=responses["unsubscribed"],
        opened=responses["opened"],
        clicked=responses["clicked"],
        by_status=by_status,
    )


@dataclass(frozen=True)
class SendBucket:
    at: dt.datetime
    sent: int


def campaign_sends_over_time(campaign: Campaign) -> tuple[list[SendBucket], str]:
    """Messages delivered per minute, hour or day (whichever keeps to CHART_MAX_BARS bars),
    and the unit's name."""
    delivered = _outbox_recipients(campaign).filter(sent_at__isnull=False)
    span = delivered.aggregate(first=Min("sent_at"), last=Max("sent_at"))
    if span["first"] is None:
        return [], "minute"
    length = span["last"] - span["first"]
    unit, trunc = "minute", TruncMinute
    if length > dt.timedelta(minutes=CHART_MAX_BARS):
        unit, trunc = "hour", TruncHour  # type: ignore[assignment]  # all are Trunc kinds
    if length > dt.timedelta(hours=CHART_MAX_BARS):
        unit, trunc = "day", TruncDay  # type: ignore[assignment]
    rows = (
        delivered.annotate(bucket=trunc("sent_at"))
        .values("bucket")
        .annotate(sent=Count("id"))
        .order_by("bucket")
    )
    buckets = [SendBucket(at=row["bucket"], sent=row["sent"]) for row in rows]
    return buckets[-CHART_MAX_BARS:], unit


@dataclass(frozen=True)
class RecipientRow:
    id: int  # the outbox recipient's
    message_pk: int
    address: str
    status: str
    status_label: str
    last_text: str
    attempt_count: int
    contact: Contact | None
    response: CampaignRecipient | None


def campaign_recipients_page(
    campaign: Campaign,
    *,
    status: str = "",
    following: int | None = None,
    preceding: int | None = None,
    size: int = RECIPIENTS_PAGE_SIZE,
) -> tuple[KeysetPage[Recipient], list[RecipientRow]]:
    """One page of the campaign's recipients (outbox order), optionally of one status."""
    recipients = _outbox_recipients(campaign)
    if status:
        recipients = recipients.filter(status=status)
    page = keyset_page(
        recipients, size=size, descending=False, following=following, preceding=preceding
    )
    addresses = [recipient.address for recipient in page.rows]
    responses = {
        response.address.lower(): response
        for response in CampaignRecipient.objects.filter(
            campaign=campaign, address__in=addresses
        ).select_related("contact")
    }
    labels = dict(RecipientStatus.choices)
    rows = []
    for recipient in page.rows:
        response = responses.get(recipient.address.lower())
        rows.append(
            RecipientRow(
                id=recipient.pk,
                message_pk=recipient.message_id,
                address=recipient.address,
                status=recipient.status,
                status_label=labels.get(recipient.status, recipient.status),
                last_text=recipient.last_text,
                attempt_count=recipient.attempt_count,
                contact=response.contact if response else None,
                response=response,
            )
        )
    return page, rows
