"""Holding bulk mail: stop a bulk template's waiting messages from starting, and let them go.

A campaign (or any bulk sender) pauses, resumes and cancels its mail here, by its bulk
template, without the outbox knowing campaigns. Three parts make a hold take effect within a
second, however much mail waits:

- A `BulkHold` row names the template. The worker reads the held templates after every poke
  (a hold pokes it) and gives back, untried, any message of theirs it had already claimed
  (`message_release_held`). A message in the middle of its SMTP transaction finishes.
- The waiting messages' next attempt (and expiry) move `HOLD_OFFSET` ahead in one UPDATE, out
  of the claim's reach while keeping their order and spacing (a throttle's, a retry's).
- Resume moves them back, later by exactly the time the hold lasted, and deletes the row;
  cancel cancels them, and the row stays so that a straggler the worker gives back is
  cancelled too.

The row is locked (SELECT … FOR UPDATE on PostgreSQL; SQLite's write lock serialises the
transactions anyway) by resume and by the worker's give-back, so a message given back while
the hold ends is due at once, never left held with nobody to release it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from postroom.outbox import wake
from postroom.outbox.claim import ClaimedMessage
from postroom.outbox.models import (
    BulkHold,
    Message,
    MessageStatus,
    Recipient,
    RecipientStatus,
)

# Far enough that no held message is ever due (nothing is scheduled a century ahead), near
# enough that every date stays well inside what SQLite and PostgreSQL store.
HOLD_OFFSET = dt.timedelta(days=36_500)
# A message whose next attempt is further ahead than this is held.
_HELD_AFTER = HOLD_OFFSET / 2
_WAITING = (MessageStatus.QUEUED, MessageStatus.DEFERRED)


def bulk_held_template_ids() -> frozenset[int]:
    """For the worker: the templates whose messages must not start."""
    return frozenset(BulkHold.objects.values_list("template_id", flat=True))


def bulk_hold(*, template_id: int) -> int:
    """Hold the template's waiting mail; return how many messages wait held."""
    now = timezone.now()
    with transaction.atomic():
        hold, created = BulkHold.objects.get_or_create(
            template_id=template_id, defaults={"held_at": now}
        )
        if not created:
            return 0  # held already
        held = (
            Message.objects.filter(bulk_template_id=template_id, status__in=_WAITING)
            .filter(next_attempt_at__lt=now + _HELD_AFTER)
            .update(
                next_attempt_at=F("next_attempt_at") + HOLD_OFFSET,
                expires_at=F("expires_at") + HOLD_OFFSET,
            )
        )
        transaction.on_commit(wake.notify_workers)
    return held


def bulk_resume(*, template_id: int) -> int:
    """Let the template's held mail go, each message later by the time the hold lasted."""
    now = timezone.now()
    with transaction.atomic():
        hold = BulkHold.objects.select_for_update().filter(template_id=template_id).first()
        if hold is None or hold.is_cancelled:
            return 0
        back = HOLD_OFFSET - (now - hold.held_at)
        released = (
            Message.objects.filter(bulk_template_id=template_id, status__in=_WAITING)
            .filter(next_attempt_at__gt=now + _HELD_AFTER)
            .update(
                next_attempt_at=F("next_attempt_at") - back,
                expires_at=F("expires_at") - back,
            )
        )
        hold.delete()
        transaction.on_commit(wake.notify_workers)
    return released


def bulk_cancel(*, template_id: int) -> int:
    """Cancel the template's waiting mail for good; return how many messages."""
    now = timezone.now()
    with transaction.atomic():
        BulkHold.objects.update_or_create(
            template_id=template_id, defaults={"is_cancelled": True, "held_at": now}
        )
        waiting = Message.objects.filter(bulk_template_id=template_id, status__in=_WAITING)
        Recipient.objects.filter(
            message__in=waiting, status__in=(RecipientStatus.QUEUED, RecipientStatus.DEFERRED)
        ).update(status=RecipientStatus.CANCELLED)
        cancelled = waiting.update(
            status=MessageStatus.CANCELLED, finished_at=now, next_attempt_at=None
        )
        transaction.on_commit(wake.notify_workers)
    return cancelled


def bulk_messages_cancel(*, template_id: int, addresses: Sequence[str], reason: str) -> int:
    """Cancel the template's waiting messages to `addresses` (their sender no longer wants
    them sent: a contact withdrew consent), saying why on each recipient."""
    now = timezone.now()
    with transaction.atomic():
        waiting = Message.objects.filter(
            bulk_template_id=template_id,
            status__in=_WAITING,
            recipients__address__in=list(addresses),
        )
        ids = list(waiting.values_list("pk", flat=True))
        Recipient.objects.filter(
            message_id__in=ids, status__in=(RecipientStatus.QUEUED, RecipientStatus.DEFERRED)
        ).update(status=RecipientStatus.CANCELLED, last_text=reason)
        return Message.objects.filter(pk__in=ids, status__in=_WAITING).update(
            status=MessageStatus.CANCELLED, finished_at=now, next_attempt_at=None, last_error=reason
        )


def message_release_held(*, messages: Sequence[ClaimedMessage]) -> None:
    """Give back claimed messages of held templates, untried: held with the rest (due when
    the hold ends), cancelled if it was cancelled, or due now if it ended meanwhile."""
    now = timezone.now()
    for claimed in messages:
        with transaction.atomic():
            hold = (
                BulkHold.objects.select_for_update()
                .filter(template_id=claimed.bulk_template_id)
                .first()
            )
            mine = Message.objects.filter(pk=claimed.id, claim_token=claimed.claim_token)
            recipients = Recipient.objects.filter(
                message_id=claimed.id, status=RecipientStatus.SENDING
            )
            if hold is not None and hold.is_cancelled:
                if mine.update(
                    status=MessageStatus.CANCELLED,
                    finished_at=now,
                    next_attempt_at=None,
                    claim_token="",
                    claimed_by="",
                ):
                    recipients.update(status=RecipientStatus.CANCELLED)
                continue
            offset = HOLD_OFFSET if hold is not None else dt.timedelta(0)
            if mine.update(
                status=MessageStatus.QUEUED,
                next_attempt_at=(hold.held_at if hold is not None else now) + offset,
                expires_at=F("expires_at") + offset,
                claim_token="",
                claimed_by="",
                attempt_count=F("attempt_count") - 1,
            ):
                recipients.update(status=RecipientStatus.QUEUED)
