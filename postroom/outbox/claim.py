"""Workers take due messages with a lease, and give back what they did not start."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from postroom.oauth.models import user_owner
from postroom.outbox.models import (
    ACTIVE_MESSAGE_STATUSES,
    LANE_PRIORITY,
    PENDING_RECIPIENT_STATUSES,
    Lane,
    Message,
    MessageStatus,
    Recipient,
    RecipientStatus,
    SendAs,
)
from postroom.queue.lease import claim_token_new, lease_claim


@dataclass(frozen=True)
class ClaimedRecipient:
    id: int
    address: str
    uncertain_count: int


@dataclass(frozen=True)
class ClaimedMessage:
    """A message a worker holds: plain data, so the async worker never touches the ORM."""

    id: int
    message_id: str
    claim_token: str
    envelope_from: str
    raw: bytes | None  # None for bulk mail, rendered from its template by the worker
    needs_smtputf8: bool
    attempt_count: int
    expires_at: dt.datetime
    recipients: tuple[ClaimedRecipient, ...]
    created_at: dt.datetime
    bulk_template_id: int | None = None
    bulk_data: dict[str, Any] | None = None
    fallback_raw: bytes | None = None  # the "via the company" version (send-as policy auto)
    fallback_envelope_from: str = ""
    priority: int = 0  # LANE_PRIORITY: transactional 0 before bulk 1
    # "" for the company relay, or the OAuth owner ("user:<id>") whose own mailbox sends it.
    route_owner: str = ""
    source: str = ""  # Source: who queued it (the suppression list skips reports)


def message_claim_batch(
    *, worker: str, limit: int, transactional_only: bool = False, now: dt.datetime | None = None
) -> list[ClaimedMessage]:
    """Take up to `limit` due messages for `worker`, transactional lane first.

    On PostgreSQL, `FOR UPDATE SKIP LOCKED` lets many workers claim side by side; on SQLite
    the transaction starts IMMEDIATE (a write lock), so claims are serialised. Either way the
    UPDATE repeats the due condition, so a row another worker took in between is left alone
    (postroom.queue.lease).
    """
    now = now or timezone.now()
    lease_until = now + dt.timedelta(seconds=settings.POSTROOM_WORKER_LEASE_SECONDS)
    token = claim_token_new()
    with transaction.atomic():
        # Only active mail has a next attempt (finished mail has none), so this walks the
        # `outbox_message_due` index alone; the UPDATE checks the status again.
        due = Message.objects.filter(next_attempt_at__lte=now).order_by(
            "priority", "next_attempt_at", "id"
        )
        if transactional_only:
            due = due.filter(priority=LANE_PRIORITY[Lane.TRANSACTIONAL])
        claimed = lease_claim(
            due,
            limit=limit,
            recheck=Q(status__in=ACTIVE_MESSAGE_STATUSES, next_attempt_at__lte=now),
            claim={
                "status": MessageStatus.SENDING,
                "claimed_by": worker,
                "claim_token": token,
                "next_attempt_at": lease_until,
                "attempt_count": F("attempt_count") + 1,
            },
        )
        if not claimed:
            return []
        rows = list(Message.objects.filter(claim_token=token).values_list(*_CLAIMED_FIELDS))
        recipients = _recipients_claim([row[0] for row in rows])
    return [_claimed_message(row, token=token, recipients=recipients) for row in rows]


# Read back by token, in this order (_claimed_message takes them apart).
_CLAIMED_FIELDS = (
    "id",
    "message_id",
    "envelope_from",
    "raw",
    "needs_smtputf8",
    "attempt_count",
    "expires_at",
    "created_at",
    "bulk_template_id",
    "bulk_data",
    "fallback_raw",
    "fallback_envelope_from",
    "priority",
    "send_as",
    "sender_user_id",
    "source",
)


def _recipients_claim(message_ids: list[int]) -> dict[int, list[ClaimedRecipient]]:
    """The claimed messages' pending recipients, by message, now marked sending."""
    recipients: dict[int, list[ClaimedRecipient]] = {pk: [] for pk in message_ids}
    pending = Recipient.objects.filter(
        message_id__in=message_ids, status__in=PENDING_RECIPIENT_STATUSES
    )
    for pk, message_pk, address, uncertain_count in pending.values_list(
        "id", "message_id", "address", "uncertain_count"
    ).order_by("id"):
        recipients[message_pk].append(ClaimedRecipient(pk, address, uncertain_count))
    pending.update(status=RecipientStatus.SENDING)
    return recipients


def _claimed_message(
    row: tuple[Any, ...], *, token: str, recipients: dict[int, list[ClaimedRecipient]]
) -> ClaimedMessage:
    (
        pk,
        message_id,
        envelope_from,
        raw,
        needs_smtputf8,
        attempt_count,
        expires_at,
        created_at,
        bulk_template_id,
        bulk_data,
        fallback_raw,
        fallback_envelope_from,
        priority,
        send_as,
        sender_user_id,
        source,
    ) = row
    return ClaimedMessage(
        id=pk,
        message_id=message_id,
        claim_token=token,
        envelope_from=envelope_from,
        raw=bytes(raw) if raw is not None else None,
        needs_smtputf8=needs_smtputf8,
        attempt_count=attempt_count,
        expires_at=expires_at,
        recipients=tuple(recipients[pk]),
        created_at=created_at,
        bulk_template_id=bulk_template_id,
        bulk_data=bulk_data,
        fallback_raw=bytes(fallback_raw) if fallback_raw is not None else None,
        fallback_envelope_from=fallback_envelope_from,
        priority=priority,
        route_owner=user_owner(sender_user_id) if send_as == SendAs.OWN_MAILBOX else "",
        source=source,
    )


def message_next_due_at() -> dt.datetime | None:
    """When the next message becomes due, so an idle worker sleeps exactly that long."""
    return (
        Message.objects.filter(status__in=ACTIVE_MESSAGE_STATUSES)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )


def message_release(*, messages: Sequence[ClaimedMessage]) -> None:
    """Give back claimed messages a stopping worker did not start: due again at once."""
    now = timezone.now()
    for claimed in messages:
        with transaction.atomic():
            released = Message.objects.filter(
                pk=claimed.id, claim_token=claimed.claim_token
            ).update(
                status=MessageStatus.QUEUED,
                next_attempt_at=now,
                claim_token="",
                claimed_by="",
                attempt_count=F("attempt_count") - 1,
            )
            if released:
                Recipient.objects.filter(
                    message_id=claimed.id, status=RecipientStatus.SENDING
                ).update(status=RecipientStatus.QUEUED)
