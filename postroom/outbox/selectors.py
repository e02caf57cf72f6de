"""The outbox's read side: what the Outbox pages (and later the API) show.

Who sees what: administrators see every message; everyone else sees the messages they sent
themselves (`sender_user`), so a salesperson can follow their own mail without reading the
whole company's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import Message as ParsedMessage
from email.parser import BytesHeaderParser, BytesParser
from email.policy import default as default_policy
from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Window
from django.db.models.functions import RowNumber, TruncDate
from django.utils import timezone

from postroom.core.errors import NotFoundError, PermissionDeniedError
from postroom.outbox.bulk import message_bytes
from postroom.outbox.models import (
    ACTIVE_MESSAGE_STATUSES,
    Attempt,
    Message,
    MessageStatus,
    Recipient,
    RecipientStatus,
    ServerPause,
)
from postroom.queue.keyset import keyset_page

# A page of 50 rows reads comfortably and keeps the query and the HTML small.
MESSAGES_PER_PAGE = 50
# The list shows the first few recipients of each message and "+N" for the rest: a message
# to 10,000 addresses must not load them all to draw one table cell.
LISTED_RECIPIENTS = 3
# A message to hundreds of recipients retried for five days has tens of thousands of attempts;
# the page shows the newest ones and says how many there are.
SHOWN_ATTEMPTS = 500
# Parsing the MIME structure to list the parts is cheap for ordinary mail; above this size
# (a quarter of the default 25 MB message limit) the page shows headers only.
PARTS_PARSE_MAX_BYTES = 6 * 1024 * 1024

SUMMARY_HEADERS = ("From", "Sender", "Reply-To", "To", "Cc", "Subject", "Date", "Message-ID")


def user_sees_all_messages(*, user: Any) -> bool:
    return bool(getattr(user, "is_administrator", False))


def message_can_act(*, user: Any, message: Message) -> bool:
    """Whether `user` may see, retry and cancel `message`: administrators and its sender."""
    if not user.is_authenticated or not user.is_active:
        return False
    return user_sees_all_messages(user=user) or message.sender_user_id == user.pk


def _visible_to(user: Any) -> QuerySet[Message]:
    messages = Message.objects.all()
    if user_sees_all_messages(user=user):
        return messages
    return messages.filter(sender_user_id=user.pk)


def message_visible_list(*, user: Any) -> QuerySet[Message]:
    """Every message `user` may see: the one rule of the Outbox, which the Inbox applies to
    the deliveries it captured (postroom.inbox.selectors)."""
    return _visible_to(user)


@dataclass(frozen=True)
class MessageFilters:
    status: str = ""
    lane: str = ""
    sender: str = ""  # part of the From address or header
    recipient: str = ""  # part of any recipient's address
    created_from: dt.date | None = None
    created_to: dt.date | None = None  # inclusive

    @property
    def is_empty(self) -> bool:
        return self == MessageFilters()


def _start_of_day(day: dt.date) -> dt.datetime:
    # Days are the site's time zone (TIME_ZONE): "today" means the viewer's office day.
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _filtered(*, user: Any, filters: MessageFilters, with_status: bool) -> QuerySet[Message]:
    messages = _visible_to(user)
    if with_status and filters.status:
        messages = messages.filter(status=filters.status)
    if filters.lane:
        messages = messages.filter(lane=filters.lane)
    if filters.sender:
        messages = messages.filter(
            Q(envelope_from__icontains=filters.sender) | Q(from_header__icontains=filters.sender)
        )
    if filters.recipient:
        # EXISTS rather than a join: a message with two matching recipients is listed once.
        messages = messages.filter(
            Exists(
                Recipient.objects.filter(
                    message=OuterRef("pk"), address__icontains=filters.recipient
                )
            )
        )
    if filters.created_from:
        messages = messages.filter(created_at__gte=_start_of_day(filters.created_from))
    if filters.created_to:
        messages = messages.filter(
            created_at__lt=_start_of_day(filters.created_to + dt.timedelta(days=1))
        )
    return messages


def message_status_counts(*, user: Any, filters: MessageFilters) -> dict[str, int]:
    """How many of `user`'s messages match the filters, per status (for the filter chips).

    The status filter itself is left out, so the chips show where else there is mail.
    """
    rows = (
        _filtered(user=user, filters=filters, with_status=False)
        .order_by()
        .values_list("status")
        .annotate(count=Count("id"))
    )
    counts = dict.fromkeys(MessageStatus.values, 0)
    counts.update({status: count for status, count in rows})
    return counts


@dataclass(frozen=True)
class MessagePage:
    """One page of the outbox list, newest first, with keyset links (postroom.queue.keyset)."""

    messages: Sequence[Message]
    newer_than: int | None  # pass as `after` for the newer page, None on the first page
    older_than: int | None  # pass as `before` for the older page, None on the last page


def message_page(
    *,
    user: Any,
    filters: MessageFilters,
    before: int | None = None,
    after: int | None = None,
    per_page: int = MESSAGES_PER_PAGE,
) -> MessagePage:
    """The messages `user` may see that match `filters`: the page before/after an id."""
    messages = _filtered(user=user, filters=filters, with_status=True)
    # Newest first: the older page (ids below `before`) follows, the newer one precedes.
    page = keyset_page(messages, size=per_page, following=before, preceding=after)
    _attach_first_recipients(page.rows)
    return MessagePage(messages=page.rows, newer_than=page.preceding, older_than=page.following)


def _attach_first_recipients(messages: Sequence[Message]) -> None:
    """Set `first_recipients` and `more_recipients` on each message, in two queries."""
    ids = [message.id for message in messages]
    if not ids:
        return
    numbered = Recipient.objects.filter(message_id__in=ids).annotate(
        position=Window(RowNumber(), partition_by=[F("message_id")], order_by=F("id").asc())
    )
    first: dict[int, list[Recipient]] = {pk: [] for pk in ids}
    for recipient in numbered.filter(position__lte=LISTED_RECIPIENTS).order_by("message_id", "id"):
        first[recipient.message_id].append(recipient)
    totals = dict(
        Recipient.objects.filter(message_id__in=ids)
        .order_by()
        .values_list("message_id")
        .annotate(count=Count("id"))
    )
    for message in messages:
        shown = first[message.id]
        message.first_recipients = shown  # type: ignore[attr-defined]
        message.more_recipients = totals.get(message.id, 0) - len(shown)  # type: ignore[attr-defined]


def message_get(*, user: Any, pk: int) -> Message:
    """One message, if `user` may see it. Raises NotFoundError or PermissionDeniedError."""
    # The bytes (up to POSTROOM_MAX_MESSAGE_BYTES) are read only where they are shown.
    message = (
        Message.objects.select_related("sender_user")
        .defer("raw", "bulk_data")
        .filter(pk=pk)
        .first()
    )
    if message is None:
        raise NotFoundError(f"There is no message {pk} in the outbox.")
    if not message_can_act(user=user, message=message):
        raise PermissionDeniedError(
            "This message was sent by someone else; only they and administrators can see it."
        )
    return message


@dataclass(frozen=True)
class MessagePart:
    content_type: str
    filename: str
    size: int  # decoded bytes


@dataclass(frozen=True)
class MessageDetail:
    message: Message
    has_raw: bool  # False for a bulk message, rendered from its template when sent
    headers: list[tuple[str, str]]
    parts: list[MessagePart] | None  # None: too large to parse for the page, or bulk
    recipients: list[Recipient]
    recipient_counts: dict[str, int]
    attempts: list[Attempt]
    attempt_total: int


def message_detail(*, message: Message) -> MessageDetail:
    """A message (from `message_get`) with its headers, parts, recipients and attempts."""
    raw = _raw_of(message)
    headers: list[tuple[str, str]] = []
    parts: list[MessagePart] | None = None
    if raw is not None:
        headers = _summary_headers(BytesHeaderParser(policy=default_policy).parsebytes(raw))
        if len(raw) <= PARTS_PARSE_MAX_BYTES:
            parts = _parts(BytesParser(policy=default_policy).parsebytes(raw))
    recipients = list(message.recipients.all())
    counts: dict[str, int] = {}
    for recipient in recipients:
        counts[recipient.status] = counts.get(recipient.status, 0) + 1
    attempts_qs = Attempt.objects.filter(message=message).select_related("recipient")
    attempt_total = attempts_qs.count()
    attempts = list(attempts_qs.order_by("-at", "-id")[:SHOWN_ATTEMPTS])[::-1]
    return MessageDetail(
        message=message,
        has_raw=raw is not None,
        headers=headers,
        parts=parts,
        recipients=recipients,
        recipient_counts=counts,
        attempts=attempts,
        attempt_total=attempt_total,
    )


def _summary_headers(parsed: ParsedMessage) -> list[tuple[str, str]]:
    rows = []
    for name in SUMMARY_HEADERS:
        for value in parsed.get_all(name, []):
            rows.append((name, str(value)))
    return rows


def _parts(parsed: ParsedMessage) -> list[MessagePart]:
    parts = []
    for part in parsed.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True) or b""
        parts.append(
            MessagePart(
                content_type=part.get_content_type(),
                filename=part.get_filename() or "",
                size=len(payload),
            )
        )
    return parts


def message_raw(*, message: Message) -> bytes:
    """The exact bytes the outbox sends for `message` (from `message_get`)."""
    raw = _raw_of(message)
    assert raw is not None  # bulk messages render; others always store their bytes
    return raw


def _raw_of(message: Message) -> bytes | None:
    raw = Message.objects.filter(pk=message.pk).values_list("raw", flat=True).first()
    if raw is not None:
        return bytes(raw)
    if message.bulk_template_id is None:
        return None
    # A bulk message's bytes are rendered from its template, the same way the worker does.
    fresh = Message.objects.get(pk=message.pk)
    return message_bytes(fresh)


def server_pause_list() -> list[ServerPause]:
    return list(ServerPause.objects.order_by("paused_at"))


@dataclass(frozen=True)
class DayCount:
    day: dt.date
    sent: int
    failed: int


@dataclass(frozen=True)
class OutboxOverview:
    """What the dashboard shows: deliveries per day, the queue, what needs attention."""

    days: list[DayCount]
    sent_today: int
    sent_this_week: int
    captured_today: int  # sandbox mode: delivered to the capture, never counted as sent
    queued: int
    sending: int
    deferred: int
    failed_recently: int  # failed, partly sent or uncertain in the last 7 days

    @property
    def busiest_day(self) -> int:
        return max([day.sent + day.failed for day in self.days] + [1])


OVERVIEW_DAYS = 14


def outbox_overview(*, user: Any) -> OutboxOverview:
    """Counts by recipient (one email to three people is three deliveries), per local day."""
    today = timezone.localdate()
    first_day = today - dt.timedelta(days=OVERVIEW_DAYS - 1)
    recipients = Recipient.objects.filter(message__in=_visible_to(user))
    finished = (
        recipients.filter(
            updated_at__gte=_start_of_day(first_day),
            status__in=[RecipientStatus.SENT, RecipientStatus.FAILED, RecipientStatus.CAPTURED],
        )
        .annotate(day=TruncDate("updated_at", tzinfo=timezone.get_current_timezone()))
        .values("day", "status")
        .annotate(count=Count("id"))
    )
    per_day: dict[tuple[dt.date, str], int] = {
        (row["day"], row["status"]): row["count"] for row in finished
    }
    days = [
        DayCount(
            day=day,
            sent=per_day.get((day, RecipientStatus.SENT), 0),
            failed=per_day.get((day, RecipientStatus.FAILED), 0),
        )
        for day in (first_day + dt.timedelta(days=n) for n in range(OVERVIEW_DAYS))
    ]
    week_start = today - dt.timedelta(days=today.weekday())
    messages = _visible_to(user)
    by_status = dict(
        messages.filter(status__in=ACTIVE_MESSAGE_STATUSES)
        .values_list("status")
        .annotate(count=Count("id"))
        .values_list("status", "count")
    )
    return OutboxOverview(
        days=days,
        sent_today=days[-1].sent,
        sent_this_week=sum(day.sent for day in days if day.day >= week_start),
        captured_today=per_day.get((today, RecipientStatus.CAPTURED), 0),
        queued=by_status.get(MessageStatus.QUEUED, 0),
        sending=by_status.get(MessageStatus.SENDING, 0),
        deferred=by_status.get(MessageStatus.DEFERRED, 0),
        failed_recently=messages.filter(
            status__in=[MessageStatus.FAILED, MessageStatus.PARTIAL, MessageStatus.UNCERTAIN],
            finished_at__gte=timezone.now() - dt.timedelta(days=7),
        ).count(),
    )


def messages_by_message_id(message_ids: Sequence[str]) -> dict[str, Message]:
    """The stored messages with these Message-IDs, by Message-ID."""
    if not message_ids:
        return {}
    found = Message.objects.filter(message_id__in=set(message_ids)).order_by()
    return {message.message_id: message for message in found}
