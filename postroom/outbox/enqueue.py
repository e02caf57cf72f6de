"""Put mail into the outbox: build it, check it, store it durably.

Durability rule: a message is accepted only when `message_enqueue*` returns, which is after
its transaction committed (SQLite runs with synchronous=FULL, see settings).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from postroom.core.errors import ValidationError
from postroom.mail.addresses import normalize_address
from postroom.mail.message import BuiltMessage, OutgoingEmail, build_message, new_message_id
from postroom.outbox import wake
from postroom.outbox.models import (
    LANE_PRIORITY,
    Event,
    EventKind,
    Lane,
    Message,
    Recipient,
    RecipientKind,
    SendAs,
    Source,
)
from postroom.outbox.retry import retry_policy


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
