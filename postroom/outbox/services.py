"""The outbox's write side: enqueue, claim, record, cancel, retry.

Durability rule: a message is accepted only when `message_enqueue*` returns, which is after
its transaction committed (SQLite runs with synchronous=FULL, see settings). Workers claim
due messages with a lease and record outcomes in batches with plain `executemany`, because
at a few thousand messages a second the ORM's per-row overhead would be the bottleneck.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from postroom.core.errors import ValidationError
from postroom.mail.addresses import normalize_address
from postroom.mail.message import BuiltMessage, OutgoingEmail, build_message, new_message_id
from postroom.outbox import wake
from postroom.outbox.models import (
    ACTIVE_MESSAGE_STATUSES,
    LANE_PRIORITY,
    PENDING_RECIPIENT_STATUSES,
    Classification,
    Event,
    EventKind,
    Lane,
    Message,
    MessageStatus,
    Recipient,
    RecipientKind,
    RecipientStatus,
    SendAs,
    SenderRefusal,
    ServerPause,
    Source,
)
from postroom.outbox.retry import RetryPolicy
from postroom.outbox.states import message_status_for, recipient_after


def retry_policy() -> RetryPolicy:
    return RetryPolicy(
        first_delay=dt.timedelta(seconds=settings.POSTROOM_RETRY_FIRST_SECONDS),
        max_delay=dt.timedelta(seconds=settings.POSTROOM_RETRY_MAX_SECONDS),
        give_up_after=dt.timedelta(seconds=settings.POSTROOM_RETRY_GIVE_UP_SECONDS),
    )


# --- enqueue ---------------------------------------------------------------------------


def message_enqueue(
    *,
    email: OutgoingEmail,
    source: Source,
    lane: Lane = Lane.TRANSACTIONAL,
    sender_user: Any = None,
    idempotency_key: str | None = None,
    not_before_at: dt.datetime | None = None,
    expires_at: dt.datetime | None = None,
    send_as: SendAs | str = "",
    fallback: OutgoingEmail | None = None,
) -> Message:
    """Build `email` into its final bytes and queue it. Bad input raises ValidationError.

    `fallback` is the same message "via the company" (postroom.outbox.send_as): built now,
    with the same Message-ID and Date, and sent instead if the relay refuses the sender.
    """
    _check_idempotency_key(idempotency_key)
    if idempotency_key and (existing := _by_idempotency_key(idempotency_key)):
        return existing
    now = timezone.now()
    message_id = new_message_id(email.from_.addr_spec.rpartition("@")[2])

    def build(variant: OutgoingEmail) -> BuiltMessage:
        return build_message(
            variant,
            message_id=message_id,
            date=now,
            max_attachment_bytes=settings.POSTROOM_MAX_MESSAGE_BYTES,
        )

    built = build(email)
    built_fallback = build(fallback) if fallback is not None else None
    return _insert(
        send_as=send_as,
        fallback_raw=built_fallback.raw if built_fallback else None,
        fallback_envelope_from=built_fallback.envelope_from if built_fallback else "",
        fallback_from_header=fallback.from_.formatted if fallback else "",
        message_id=message_id,
        envelope_from=built.envelope_from,
        recipients=built.recipients,
        raw=built.raw,
        needs_smtputf8=built.needs_smtputf8,
        from_header=email.from_.formatted,
        subject=email.subject,
        source=source,
        lane=lane,
        sender_user=sender_user,
        idempotency_key=idempotency_key,
        not_before_at=not_before_at,
        expires_at=expires_at,
        now=now,
    )


def message_enqueue_raw(
    *,
    envelope_from: str,
    recipients: Sequence[str],
    raw: bytes,
    source: Source,
    cc: Sequence[str] = (),
    bcc: Sequence[str] = (),
    lane: Lane = Lane.TRANSACTIONAL,
    sender_user: Any = None,
    idempotency_key: str | None = None,
    not_before_at: dt.datetime | None = None,
) -> Message:
    """Queue a message that is already RFC 5322 bytes (send_mail, the SMTP listener).

    The bytes are sent as they are, except that a missing Message-ID is added, so that a
    retry after an uncertain delivery carries the same one. `recipients` are recorded as To;
    `cc` and `bcc` only label envelope recipients for the pages (the bytes decide headers).
    """
    _check_idempotency_key(idempotency_key)
    if idempotency_key and (existing := _by_idempotency_key(idempotency_key)):
        return existing
    if len(raw) > settings.POSTROOM_MAX_MESSAGE_BYTES:
        raise ValidationError(
            f"The message is {len(raw):,} bytes; the limit is "
            f"{settings.POSTROOM_MAX_MESSAGE_BYTES:,} (POSTROOM_MAX_MESSAGE_BYTES).",
            field="raw",
        )
    sender = normalize_address(envelope_from) if envelope_from else None
    kinds = [
        *((address, RecipientKind.TO) for address in recipients),
        *((address, RecipientKind.CC) for address in cc),
        *((address, RecipientKind.BCC) for address in bcc),
    ]
    normalized = [(normalize_address(address), kind) for address, kind in kinds]
    if not normalized:
        raise ValidationError("The message has no recipients.", field="recipients")
    headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
    message_id = str(headers.get("Message-ID", "")).strip()
    if not message_id:
        domain = sender.ascii_domain if sender else "postroom.invalid"
        message_id = new_message_id(domain)
        raw = f"Message-ID: {message_id}\r\n".encode() + raw
    elif Message.objects.filter(message_id=message_id).exists():
        # The same Message-ID twice is a resubmission (an ERP retrying a timed-out SMTP
        # session): treat it as the idempotency key it is.
        return Message.objects.get(message_id=message_id)
    return _insert(
        message_id=message_id,
        envelope_from=sender.addr_spec if sender else "",
        recipients=[(address.addr_spec, kind) for address, kind in normalized],
        raw=raw,
        needs_smtputf8=any(address.needs_smtputf8 for address, _ in normalized)
        or bool(sender and sender.needs_smtputf8),
        from_header=str(headers.get("From", ""))[:500],
        subject=str(headers.get("Subject", "")),
        source=source,
        lane=lane,
        sender_user=sender_user,
        idempotency_key=idempotency_key,
        not_before_at=not_before_at,
        expires_at=None,
        now=timezone.now(),
    )


MAX_IDEMPOTENCY_KEY = 200  # Message.idempotency_key's column width


def _check_idempotency_key(key: str | None) -> None:
    if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY:
        raise ValidationError(
            f"An idempotency key has 1 to {MAX_IDEMPOTENCY_KEY} characters.",
            field="idempotency_key",
        )


def _by_idempotency_key(key: str) -> Message | None:
    """The message queued with `key` before, marked as a replay (Message.is_replay)."""
    message = Message.objects.filter(idempotency_key=key).first()
    if message is not None:
        message.is_replay = True
    return message


def _insert(
    *,
    send_as: str = "",
    fallback_raw: bytes | None = None,
    fallback_envelope_from: str = "",
    fallback_from_header: str = "",
    message_id: str,
    envelope_from: str,
    recipients: Sequence[tuple[str, str]],
    raw: bytes,
    needs_smtputf8: bool,
    from_header: str,
    subject: str,
    source: Source,
    lane: Lane,
    sender_user: Any,
    idempotency_key: str | None,
    not_before_at: dt.datetime | None,
    expires_at: dt.datetime | None,
    now: dt.datetime,
) -> Message:
    policy = retry_policy()
    starts_at = max(not_before_at or now, now)
    try:
        with transaction.atomic():
            message = Message.objects.create(
                message_id=message_id,
                idempotency_key=idempotency_key or None,
                lane=lane,
                priority=LANE_PRIORITY[lane],
                source=source,
                envelope_from=envelope_from,
                from_header=from_header[:500],
                subject=subject,
                sender_user=sender_user,
                raw=raw,
                size=len(raw),
                needs_smtputf8=needs_smtputf8,
                send_as=send_as,
                fallback_raw=fallback_raw,
                fallback_envelope_from=fallback_envelope_from,
                fallback_from_header=fallback_from_header[:500],
                not_before_at=not_before_at,
                expires_at=expires_at or starts_at + policy.give_up_after,
                next_attempt_at=starts_at,
            )
            Recipient.objects.bulk_create(
                Recipient(message=message, address=address, kind=kind)
                for address, kind in recipients
            )
            Event.objects.create(
                kind=EventKind.MESSAGE_QUEUED,
                created_at=now,
                message=message,
                data={
                    "id": message.pk,
                    "message_id": message_id,
                    "lane": lane,
                    "source": source,
                    "recipients": [address for address, _ in recipients],
                },
            )
            transaction.on_commit(wake.notify_workers)
    except IntegrityError:
        # Another request with the same key inserted first, between the lookup above and this
        # insert: the unique constraint makes lookup and insert one step, and this one a replay.
        if idempotency_key and (existing := _by_idempotency_key(idempotency_key)):
            return existing
        raise
    return message


# --- claim -----------------------------------------------------------------------------


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


def message_claim_batch(
    *, worker: str, limit: int, transactional_only: bool = False, now: dt.datetime | None = None
) -> list[ClaimedMessage]:
    """Take up to `limit` due messages for `worker`, transactional lane first.

    On PostgreSQL, `FOR UPDATE SKIP LOCKED` lets many workers claim side by side; on SQLite
    the transaction starts IMMEDIATE (a write lock), so claims are serialised. Either way the
    UPDATE repeats the due condition, so a row another worker took in between is left alone.
    """
    now = now or timezone.now()
    lease_until = now + dt.timedelta(seconds=settings.POSTROOM_WORKER_LEASE_SECONDS)
    token = uuid.uuid4().hex
    with transaction.atomic():
        # Only active mail has a next attempt (finished mail has none), so this walks the
        # `outbox_message_due` index alone; the UPDATE below checks the status again.
        due = Message.objects.filter(next_attempt_at__lte=now).order_by(
            "priority", "next_attempt_at", "id"
        )
        if transactional_only:
            due = due.filter(priority=LANE_PRIORITY[Lane.TRANSACTIONAL])
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        ids = list(due.values_list("id", flat=True)[:limit])
        if not ids:
            return []
        Message.objects.filter(
            id__in=ids, status__in=ACTIVE_MESSAGE_STATUSES, next_attempt_at__lte=now
        ).update(
            status=MessageStatus.SENDING,
            claimed_by=worker,
            claim_token=token,
            next_attempt_at=lease_until,
            attempt_count=F("attempt_count") + 1,
        )
        rows = list(
            Message.objects.filter(claim_token=token).values_list(
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
            )
        )
        claimed_ids = [row[0] for row in rows]
        recipients: dict[int, list[ClaimedRecipient]] = {pk: [] for pk in claimed_ids}
        pending = Recipient.objects.filter(
            message_id__in=claimed_ids, status__in=PENDING_RECIPIENT_STATUSES
        )
        for pk, message_pk, address, uncertain_count in pending.values_list(
            "id", "message_id", "address", "uncertain_count"
        ).order_by("id"):
            recipients[message_pk].append(ClaimedRecipient(pk, address, uncertain_count))
        pending.update(status=RecipientStatus.SENDING)
    return [
        ClaimedMessage(
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
        )
        for (
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
        ) in rows
    ]


# --- record ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RecipientResult:
    recipient: ClaimedRecipient
    classification: Classification
    code: int | None = None
    enhanced_code: str = ""
    text: str = ""


@dataclass(frozen=True)
class MessageResult:
    message: ClaimedMessage
    server: str
    stage: str
    recipients: Sequence[RecipientResult]
    at: dt.datetime = field(default_factory=timezone.now)
    # The relay refused the user's address and the "via the company" version was sent:
    # `refusals` are that first attempt's outcomes, recorded before the final ones.
    switched_to_fallback: bool = False
    refusals: Sequence[RecipientResult] = ()


# Reply texts are stored for people to read; a hostile server's 1 MB line is not kept whole.
_MAX_TEXT = 2000

_UPDATE_MESSAGE = (
    "UPDATE outbox_message SET status = %s, next_attempt_at = %s, finished_at = %s, "
    "last_error = %s, claim_token = '', claimed_by = '' WHERE id = %s AND claim_token = %s"
)
_UPDATE_RECIPIENT = (
    "UPDATE outbox_recipient SET status = %s, attempt_count = attempt_count + 1, "
    "uncertain_count = %s, last_code = %s, last_enhanced_code = %s, last_text = %s, "
    "sent_at = %s, updated_at = %s WHERE id = %s"
)
_SWITCH_TO_FALLBACK = (
    "UPDATE outbox_message SET raw = fallback_raw, envelope_from = fallback_envelope_from, "
    "from_header = fallback_from_header, send_as = %s, fallback_raw = NULL WHERE id = %s"
)
_INSERT_EVENT = (
    "INSERT INTO outbox_event (kind, created_at, message_id, recipient, data) "
    "VALUES (%s, %s, %s, %s, %s)"
)
_INSERT_ATTEMPT = (
    "INSERT INTO outbox_attempt (message_id, recipient_id, at, server, worker, stage, code, "
    "enhanced_code, text, classification) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def delivery_record(
    *, results: Sequence[MessageResult], worker: str, now: dt.datetime | None = None
) -> None:
    """Record a batch of attempts: per-recipient statuses, attempts, message summaries."""
    if not results:
        return
    now = now or timezone.now()
    policy = retry_policy()
    adapt = connection.ops.adapt_datetimefield_value
    # Adapted once: converting a datetime for the driver costs more than the rest of a row.
    now_db = adapt(now)
    message_rows: list[tuple[Any, ...]] = []
    recipient_rows: list[tuple[Any, ...]] = []
    attempt_rows: list[tuple[Any, ...]] = []
    event_rows: list[tuple[Any, ...]] = []
    switched_rows: list[tuple[Any, ...]] = []
    for result in results:
        claimed = result.message
        at_db = adapt(result.at)
        if result.switched_to_fallback:
            switched_rows.append((SendAs.VIA_COMPANY, claimed.id))
        for refusal in result.refusals:
            attempt_rows.append(
                (
                    claimed.id,
                    refusal.recipient.id,
                    at_db,
                    result.server,
                    worker,
                    "mail",
                    refusal.code,
                    refusal.enhanced_code,
                    refusal.text[:_MAX_TEXT],
                    refusal.classification,
                )
            )
        statuses: list[str] = []
        next_times: list[dt.datetime] = []
        errors: list[str] = []
        for outcome in result.recipients:
            transition = recipient_after(
                outcome.classification,
                uncertain_count=outcome.recipient.uncertain_count,
                failed_attempts=claimed.attempt_count,
                expires_at=claimed.expires_at,
                now=now,
                policy=policy,
            )
            statuses.append(transition.status)
            if transition.next_attempt_at is not None:
                next_times.append(transition.next_attempt_at)
            text = outcome.text[:_MAX_TEXT]
            if transition.note:
                text = f"{text}\n{transition.note}" if text else transition.note
            if outcome.classification != Classification.SUCCESS:
                errors.append(f"{outcome.recipient.address}: {text}")
            recipient_rows.append(
                (
                    transition.status,
                    transition.uncertain_count,
                    outcome.code,
                    outcome.enhanced_code,
                    text,
                    now_db if transition.status == RecipientStatus.SENT else None,
                    now_db,
                    outcome.recipient.id,
                )
            )
            event_rows.append(
                (
                    _event_kind(outcome.classification, transition.status),
                    now_db,
                    claimed.id,
                    outcome.recipient.address,
                    json.dumps(
                        {
                            "id": claimed.id,
                            "message_id": claimed.message_id,
                            "recipient": outcome.recipient.address,
                            "status": transition.status,
                            "classification": outcome.classification,
                            "code": outcome.code,
                            "enhanced_code": outcome.enhanced_code,
                            "text": text,
                            "attempt": claimed.attempt_count,
                            "next_attempt_at": (
                                transition.next_attempt_at.isoformat()
                                if transition.next_attempt_at
                                else None
                            ),
                        }
                    ),
                )
            )
            attempt_rows.append(
                (
                    claimed.id,
                    outcome.recipient.id,
                    at_db,
                    result.server,
                    worker,
                    result.stage,
                    outcome.code,
                    outcome.enhanced_code,
                    text,
                    outcome.classification,
                )
            )
        status = _message_status_after(claimed, statuses)
        finished = next_times == [] and status not in ACTIVE_MESSAGE_STATUSES
        if next_times:
            next_attempt_at: dt.datetime | None = min(next_times)
        else:
            next_attempt_at = None if finished else now
        message_rows.append(
            (
                status,
                adapt(next_attempt_at) if next_attempt_at else None,
                now_db if finished else None,
                "\n".join(errors)[:_MAX_TEXT],
                claimed.id,
                claimed.claim_token,
            )
        )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(_UPDATE_RECIPIENT, recipient_rows)
        cursor.executemany(_INSERT_ATTEMPT, attempt_rows)
        cursor.executemany(_UPDATE_MESSAGE, message_rows)
        if switched_rows:
            cursor.executemany(_SWITCH_TO_FALLBACK, switched_rows)
        cursor.executemany(_INSERT_EVENT, event_rows)


def _event_kind(classification: Classification, status: RecipientStatus) -> EventKind:
    if classification == Classification.UNCERTAIN:
        return EventKind.MESSAGE_UNCERTAIN
    return {
        RecipientStatus.SENT: EventKind.MESSAGE_SENT,
        RecipientStatus.FAILED: EventKind.MESSAGE_FAILED,
    }.get(status, EventKind.MESSAGE_DEFERRED)


def _message_status_after(claimed: ClaimedMessage, new_statuses: list[str]) -> MessageStatus:
    """The message status once this attempt's recipients have their new statuses.

    Recipients finished in earlier attempts (sent, failed) still count, so those are read;
    the common case, every recipient handled in this attempt, needs no query.
    """
    if len(new_statuses) == len(claimed.recipients) and _all_recipients_were_pending(claimed):
        return message_status_for(new_statuses)
    earlier = Recipient.objects.filter(message_id=claimed.id).exclude(
        id__in=[recipient.id for recipient in claimed.recipients]
    )
    return message_status_for([*new_statuses, *earlier.values_list("status", flat=True)])


def _all_recipients_were_pending(claimed: ClaimedMessage) -> bool:
    # A message claimed for its first time has every recipient pending.
    return claimed.attempt_count == 1


# --- people acting on messages -----------------------------------------------------------


def message_cancel(*, message: Message) -> Message:
    """Cancel every recipient not yet delivered. A message being sent right now cannot be."""
    with transaction.atomic():
        changed = Message.objects.filter(
            pk=message.pk, status__in=[MessageStatus.QUEUED, MessageStatus.DEFERRED]
        ).update(status=MessageStatus.CANCELLED, finished_at=timezone.now(), next_attempt_at=None)
        if not changed:
            message.refresh_from_db()
            if message.status == MessageStatus.SENDING:
                raise ValidationError(
                    "This message is being sent right now; wait for the attempt to finish, "
                    "then cancel what is left."
                )
            raise ValidationError(
                f"This message is {message.get_status_display().lower()}: there is nothing "
                "left to cancel."
            )
        Recipient.objects.filter(message=message, status__in=PENDING_RECIPIENT_STATUSES).update(
            status=RecipientStatus.CANCELLED
        )
        statuses = Recipient.objects.filter(message=message).values_list("status", flat=True)
        Message.objects.filter(pk=message.pk).update(status=message_status_for(statuses))
    message.refresh_from_db()
    return message


RETRYABLE_MESSAGE_STATUSES = (
    MessageStatus.DEFERRED,
    MessageStatus.FAILED,
    MessageStatus.PARTIAL,
    MessageStatus.UNCERTAIN,
    MessageStatus.CANCELLED,
)


def message_retry(*, message: Message) -> Message:
    """Send again now to every recipient that did not get the message; sent ones are kept."""
    now = timezone.now()
    with transaction.atomic():
        changed = Message.objects.filter(
            pk=message.pk, status__in=RETRYABLE_MESSAGE_STATUSES
        ).update(
            status=MessageStatus.QUEUED,
            next_attempt_at=now,
            expires_at=now + retry_policy().give_up_after,
            finished_at=None,
        )
        if not changed:
            message.refresh_from_db()
            raise ValidationError(
                f"This message is {message.get_status_display().lower()}: only deferred, "
                "failed, uncertain or cancelled messages can be retried."
            )
        Recipient.objects.filter(message=message).exclude(status=RecipientStatus.SENT).update(
            status=RecipientStatus.QUEUED, uncertain_count=0
        )
        transaction.on_commit(wake.notify_workers)
    message.refresh_from_db()
    return message


def server_pause(*, server: str, code: int | None, reason: str) -> None:
    ServerPause.objects.update_or_create(
        server=server, defaults={"paused_at": timezone.now(), "code": code, "reason": reason}
    )
    # Other workers sending to this server stop too, instead of meeting the same refusal.
    transaction.on_commit(wake.notify_workers)


def server_resume(*, server: str) -> None:
    with transaction.atomic():
        ServerPause.objects.filter(server=server).delete()
        # Messages held back by the pause go now rather than at their scheduled retry.
        Message.objects.filter(
            status=MessageStatus.QUEUED, next_attempt_at__gt=timezone.now()
        ).update(next_attempt_at=timezone.now())
        transaction.on_commit(wake.notify_workers)


def sender_refusal_record(*, address: str, server: str, code: int | None, text: str) -> None:
    """Remember that the relay will not let us send as `address` (send-as policy auto)."""
    SenderRefusal.objects.update_or_create(
        address=address,
        defaults={"server": server, "refused_at": timezone.now(), "code": code, "text": text},
    )


def server_is_paused(*, server: str) -> bool:
    return ServerPause.objects.filter(server=server).exists()


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
