"""The built-in reports on Postroom's own database, ready to schedule.

Postroom's own database is reported only through these (never through SQL typed on a page):
it also holds password hashes and encrypted secrets. Each reads through the ORM, so it runs
the same on SQLite and PostgreSQL, for the period its `period` parameter names, in the
schedule's time zone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Q
from django.db.models.functions import TruncDate

from postroom.campaigns.models import Campaign
from postroom.campaigns.selectors import campaign_stats
from postroom.contacts.models import Contact
from postroom.core.errors import ValidationError
from postroom.outbox.models import Recipient, RecipientStatus

Rows = tuple[list[str], list[tuple[Any, ...]], bool]


@dataclass(frozen=True)
class Builtin:
    name: str
    description: str
    run: Callable[[dt.datetime, dt.datetime, dt.tzinfo, int], Rows]
    chart_label: str = ""
    chart_values: list[str] = field(default_factory=list)


def _capped(columns: list[str], rows: list[tuple[Any, ...]], max_rows: int) -> Rows:
    return columns, rows[:max_rows], len(rows) > max_rows


_STATUS_COLUMNS = [
    (RecipientStatus.SENT, "Sent"),
    (RecipientStatus.CAPTURED, "Captured"),
    (RecipientStatus.DEFERRED, "Deferred"),
    (RecipientStatus.FAILED, "Failed"),
    (RecipientStatus.UNCERTAIN, "Uncertain"),
    (RecipientStatus.SUPPRESSED, "Suppressed"),
    (RecipientStatus.CANCELLED, "Cancelled"),
]


def _deliveries(start: dt.datetime, end: dt.datetime, tz: dt.tzinfo, max_rows: int) -> Rows:
    counts = (
        Recipient.objects.filter(message__created_at__gte=start, message__created_at__lt=end)
        .annotate(day=TruncDate("message__created_at", tzinfo=tz))
        .values_list("day", "status")
        .annotate(count=Count("id"))
    )
    days: dict[dt.date, dict[str, int]] = {}
    for day, status, count in counts:
        days.setdefault(day, {})[status] = count
    columns = ["Day", *(label for _, label in _STATUS_COLUMNS), "Waiting"]
    waiting = (RecipientStatus.QUEUED, RecipientStatus.SENDING)
    rows = [
        (
            day,
            *(by_status.get(status, 0) for status, _ in _STATUS_COLUMNS),
            sum(by_status.get(status, 0) for status in waiting),
        )
        for day, by_status in sorted(days.items())
    ]
    return _capped(columns, rows, max_rows)


def _failures(start: dt.datetime, end: dt.datetime, tz: dt.tzinfo, max_rows: int) -> Rows:
    recipients = (
        Recipient.objects.filter(
            message__created_at__gte=start,
            message__created_at__lt=end,
            status__in=[
                RecipientStatus.FAILED,
                RecipientStatus.DEFERRED,
                RecipientStatus.UNCERTAIN,
            ],
        )
        .select_related("message")
        .order_by("message__created_at", "id")[: max_rows + 1]
    )
    columns = [
        "Queued at",
        "Subject",
        "From",
        "Recipient",
        "Status",
        "Reply code",
        "Reason",
        "Attempts",
    ]
    rows = [
        (
            recipient.message.created_at.astimezone(tz).replace(tzinfo=None),
            recipient.message.subject,
            recipient.message.from_header,
            recipient.address,
            recipient.status,
            " ".join(filter(None, [str(recipient.last_code or ""), recipient.last_enhanced_code])),
            recipient.last_text or recipient.message.last_error,
            recipient.attempt_count,
        )
        for recipient in recipients
    ]
    return _capped(columns, rows, max_rows)


def _campaigns(start: dt.datetime, end: dt.datetime, tz: dt.tzinfo, max_rows: int) -> Rows:
    campaigns = Campaign.objects.filter(
        Q(send_from__gte=start, send_from__lt=end)
        | Q(send_from__isnull=True, created_at__gte=start, created_at__lt=end)
    ).order_by("send_from", "id")[: max_rows + 1]
    columns = [
        "Campaign",
        "Status",
        "Started",
        "Audience",
        "Sent",
        "Failed",
        "Suppressed",
        "No consent",
        "Unsubscribed",
        "Opened",
        "Clicked",
    ]
    rows = []
    for campaign in campaigns:
        stats = campaign_stats(campaign)
        started = (
            campaign.send_from.astimezone(tz).replace(tzinfo=None) if campaign.send_from else None
        )
        rows.append(
            (
                campaign.name,
                campaign.get_status_display(),
                started,
                stats.audience,
                stats.sent,
                stats.failed,
                stats.suppressed,
                stats.no_consent,
                stats.unsubscribed,
                stats.opened,
                stats.clicked,
            )
        )
    return _capped(columns, rows, max_rows)


def _per_user(start: dt.datetime, end: dt.datetime, tz: dt.tzinfo, max_rows: int) -> Rows:
    counts = (
        Recipient.objects.filter(
            message__created_at__gte=start,
            message__created_at__lt=end,
            message__sender_user__isnull=False,
        )
        .values_list("message__sender_user__username", "message__sender_user__display_name")
        .annotate(
            messages=Count("message", distinct=True),
            sent=Count("id", filter=Q(status=RecipientStatus.SENT)),
            failed=Count(
                "id", filter=Q(status__in=[RecipientStatus.FAILED, RecipientStatus.UNCERTAIN])
            ),
        )
        .order_by("message__sender_user__username")
    )
    columns = ["User", "Name", "Messages", "Recipients sent", "Recipients failed"]
    return _capped(columns, [tuple(row) for row in counts], max_rows)


def _contacts(start: dt.datetime, end: dt.datetime, tz: dt.tzinfo, max_rows: int) -> Rows:
    counts = (
        Contact.objects.filter(created_at__gte=start, created_at__lt=end)
        .annotate(day=TruncDate("created_at", tzinfo=tz))
        .values_list("day")
        .annotate(count=Count("id"))
        .order_by("day")
    )
    return _capped(["Day", "Contacts added"], [tuple(row) for row in counts], max_rows)


BUILTINS: dict[str, Builtin] = {
    "deliveries": Builtin(
        "Deliveries per day and status",
        "Recipients of the mail queued each day, by what became of them.",
        _deliveries,
        chart_label="Day",
        chart_values=["Sent", "Failed"],
    ),
    "failures": Builtin(
        "Failed and deferred messages",
        "Each recipient that failed, is deferred or uncertain, with the server's reason.",
        _failures,
    ),
    "campaigns": Builtin(
        "Campaign results",
        "Each campaign started in the period: audience, sent, failed, unsubscribes, opens, clicks.",
        _campaigns,
        chart_label="Campaign",
        chart_values=["Sent", "Failed"],
    ),
    "per_user": Builtin(
        "Messages sent per user",
        "Mail each user sent in the period, and how many recipients got it.",
        _per_user,
        chart_label="User",
        chart_values=["Messages"],
    ),
    "contacts": Builtin(
        "Contacts added",
        "New contacts per day.",
        _contacts,
        chart_label="Day",
        chart_values=["Contacts added"],
    ),
}
# Every built-in report reads one period, the last 7 days unless the report says otherwise.
BUILTIN_PARAMETERS = [{"name": "period", "type": "period", "value": "last 7 days"}]


def _start_of(day: dt.date, tz: dt.tzinfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=tz)


def builtin_run(key: str, *, binds: dict[str, Any], tz: dt.tzinfo, max_rows: int) -> Rows:
    builtin = BUILTINS.get(key)
    if builtin is None:
        raise ValidationError(f"There is no built-in report “{key}”.", field="builtin")
    start, end = binds.get("period_start"), binds.get("period_end")
    if not isinstance(start, dt.date) or not isinstance(end, dt.date):
        raise ValidationError(
            "A built-in report needs its parameter “period” (type period).", field="parameters"
        )
    return builtin.run(_start_of(start, tz), _start_of(end, tz), tz, max_rows)
