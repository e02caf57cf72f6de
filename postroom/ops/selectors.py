"""What the metrics read from the outbox at each scrape: small queries on indexed columns.

Each function answers one question with one query whose cost follows the mail still waiting
(the active rows, through `outbox_message_status` and `outbox_message_due`), never the
history; the history's counts come from the tallies (postroom.ops.tallies).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Min, Q

from postroom.ops.tallies import TallyReading, TallySource, tally_read
from postroom.outbox.holds import HOLD_OFFSET
from postroom.outbox.models import ACTIVE_MESSAGE_STATUSES, Attempt, Message, ServerPause

# A held message's next attempt is HOLD_OFFSET ahead (postroom.outbox.holds): far beyond this.
_HELD_BEYOND = HOLD_OFFSET / 2

ACCEPTED_MESSAGES = TallySource(name="outbox.messages", model=Message, labels=("lane", "source"))
DELIVERY_ATTEMPTS = TallySource(name="outbox.attempts", model=Attempt, labels=("classification",))


@dataclass(frozen=True)
class PauseSummary:
    count: int
    oldest_at: dt.datetime | None


def message_queue_depths() -> dict[tuple[str, str], int]:
    """(lane, status) -> messages still to be sent: queued, being sent or deferred."""
    rows = (
        Message.objects.filter(status__in=ACTIVE_MESSAGE_STATUSES)
        .order_by()
        .values_list("lane", "status")
        .annotate(count=Count("pk"))
    )
    return {(lane, status): count for lane, status, count in rows}


def message_held_count(*, now: dt.datetime) -> int:
    """Messages waiting under a hold (a paused campaign): in the queue, out of the claim's reach."""
    return Message.objects.filter(next_attempt_at__gt=now + _HELD_BEYOND).count()


def message_oldest_waiting_by_lane(*, now: dt.datetime) -> dict[str, dt.datetime]:
    """lane -> when the oldest message still to be sent was accepted. Held mail, and mail
    asked to be sent later that is not due yet, are not waiting for anyone: left out."""
    rows = (
        Message.objects.filter(
            Q(not_before_at__isnull=True) | Q(not_before_at__lte=now),
            status__in=ACTIVE_MESSAGE_STATUSES,
            next_attempt_at__lte=now + _HELD_BEYOND,
        )
        .order_by()
        .values_list("lane")
        .annotate(oldest=Min("created_at"))
    )
    return dict(rows)


def message_due_since_by_lane(*, now: dt.datetime) -> dict[str, dt.datetime]:
    """lane -> since when the message due longest has been waiting for a worker: its next
    attempt time (its `send_at`, its retry, or the end of a dead worker's lease)."""
    rows = (
        Message.objects.filter(next_attempt_at__lte=now)
        .order_by()
        .values_list("lane")
        .annotate(since=Min("next_attempt_at"))
    )
    return dict(rows)


def server_pause_summary() -> PauseSummary:
    """How many servers (or users' own mailboxes) sending is paused to, and since when."""
    summary = ServerPause.objects.aggregate(count=Count("pk"), oldest_at=Min("paused_at"))
    return PauseSummary(count=summary["count"], oldest_at=summary["oldest_at"])


def message_accepted_tally(*, now: dt.datetime) -> TallyReading:
    """(lane, source) -> messages ever accepted into the outbox."""
    return tally_read(ACCEPTED_MESSAGES, now=now)


def attempt_tally(*, now: dt.datetime) -> TallyReading:
    """(classification,) -> delivery attempts ever recorded."""
    return tally_read(DELIVERY_ATTEMPTS, now=now)
