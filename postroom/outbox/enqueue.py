"""Put mail into the outbox: build it, check it, store it durably.

Durability rule: a message is accepted only when `message_enqueue*` returns, which is after
its transaction committed (SQLite runs with synchronous=FULL, see settings).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from postroom.core.errors import PostroomError, ValidationError
from postroom.mail.addresses import NormalizedAddress, normalize_address
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
    Source,
)
from postroom.outbox.retry import retry_policy
from postroom.outbox.send_as import send_as_apply


def message_enqueue(
    *,
    email: OutgoingEmail,
    source: Source,
    lane: Lane = Lane.TRANSACTIONAL,
    sender_user: Any = None,
    idempotency_key: str | None = None,
    not_before_at: dt.datetime | None = None,
    expires_at: dt.datetime | None = None,
) -> Message:
    """Build `email` into its final bytes and queue it. Bad input raises ValidationError.

    Two rules hold here, for every caller:
    - the send-as policy (postroom.outbox.send_as): mail whose From is `sender_user`'s own
      address may go "via the company"; under the automatic policy the "via" version is built
      now, with the same Message-ID and Date, and sent instead if the relay refuses the user;
    - idempotency: a key used before returns that message, marked `is_replay`, and queues
      nothing; the same key for another message raises IdempotencyConflictError. Two requests
      racing with one key are decided by the unique constraint (see `_insert`).
    """
    _check_idempotency_key(idempotency_key)
    choice = send_as_apply(email=email, user=sender_user)
    identity = _Identity.of_email(email, sender_user=sender_user if choice.send_as else None)
    if idempotency_key and (existing := _replay(idempotency_key, identity)):
        return existing
    now = timezone.now()
    message_id = new_message_id(choice.email.from_.addr_spec.rpartition("@")[2])

    def build(variant: OutgoingEmail) -> BuiltMessage:
        return build_message(
            variant,
            message_id=message_id,
            date=now,
            max_attachment_bytes=settings.POSTROOM_MAX_MESSAGE_BYTES,
        )

    built = build(choice.email)
    fallback = choice.fallback
    stored = _Stored(
        message_id=message_id,
        envelope_from=built.envelope_from,
        recipients=built.recipients,
        raw=built.raw,
        needs_smtputf8=built.needs_smtputf8,
        from_header=choice.email.from_.formatted,
        subject=choice.email.subject,
        send_as=choice.send_as,
        fallback=_fallback_stored(build(fallback), fallback) if fallback else None,
    )
    queueing = _Queueing(
        source=source,
        lane=lane,
        sender_user=sender_user,
        idempotency_key=idempotency_key,
        not_before_at=not_before_at,
        expires_at=expires_at,
        now=now,
    )
    return _insert(stored, queueing, identity)


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
    source_detail: str = "",
) -> Message:
    """Queue a message that is already RFC 5322 bytes (send_mail, the SMTP listener).

    The bytes are sent as they are (no send-as policy: their From is final), except that a
    missing Message-ID is added, so that a retry after an uncertain delivery carries the same
    one. `recipients` are recorded as To; `cc` and `bcc` only label envelope recipients for
    the pages (the bytes decide headers). Idempotency is as for `message_enqueue`.
    """
    _check_idempotency_key(idempotency_key)
    _check_raw_size(raw)
    sender = normalize_address(envelope_from) if envelope_from else None
    normalized = _envelope_recipients(recipients, cc, bcc)
    headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
    subject = str(headers.get("Subject", ""))
    identity = _Identity.of_envelope(
        subject, envelope_from=sender.addr_spec if sender else "", addresses=normalized
    )
    if idempotency_key and (existing := _replay(idempotency_key, identity)):
        return existing
    message_id = str(headers.get("Message-ID", "")).strip()
    if message_id and (resubmitted := Message.objects.filter(message_id=message_id).first()):
        # The same Message-ID again: a system retrying a timed-out SMTP session; not twice.
        return resubmitted
    if not message_id:
        message_id = new_message_id(sender.ascii_domain if sender else "postroom.invalid")
        raw = f"Message-ID: {message_id}\r\n".encode() + raw
    stored = _Stored(
        message_id=message_id,
        envelope_from=sender.addr_spec if sender else "",
        recipients=[(address.addr_spec, kind) for address, kind in normalized],
        raw=raw,
        needs_smtputf8=any(address.needs_smtputf8 for address, _ in normalized)
        or bool(sender and sender.needs_smtputf8),
        from_header=str(headers.get("From", "")),
        subject=subject,
    )
    queueing = _Queueing(
        source=source,
        lane=lane,
        sender_user=sender_user,
        idempotency_key=idempotency_key,
        not_before_at=not_before_at,
        expires_at=None,
        now=timezone.now(),
        source_detail=source_detail,
    )
    return _insert(stored, queueing, identity)


def _check_raw_size(raw: bytes) -> None:
    if len(raw) > settings.POSTROOM_MAX_MESSAGE_BYTES:
        raise ValidationError(
            f"The message is {len(raw):,} bytes; the limit is "
            f"{settings.POSTROOM_MAX_MESSAGE_BYTES:,} (POSTROOM_MAX_MESSAGE_BYTES).",
            field="raw",
        )


def _envelope_recipients(
    to: Sequence[str], cc: Sequence[str], bcc: Sequence[str]
) -> list[tuple[NormalizedAddress, RecipientKind]]:
    kinds = [
        *((address, RecipientKind.TO) for address in to),
        *((address, RecipientKind.CC) for address in cc),
        *((address, RecipientKind.BCC) for address in bcc),
    ]
    normalized = [(normalize_address(address), kind) for address, kind in kinds]
    if not normalized:
        raise ValidationError("The message has no recipients.", field="recipients")
    return normalized


MAX_IDEMPOTENCY_KEY = 200  # Message.idempotency_key's column width


class IdempotencyConflictError(PostroomError):
    """An idempotency key already used for a different message (409, as Stripe answers)."""

    code = "conflict"
    http_status = 409


@dataclass(frozen=True)
class _Stored:
    """One message as the outbox stores it: its bytes and what the pages show of it."""

    message_id: str
    envelope_from: str
    recipients: Sequence[tuple[str, str]]  # (address, RecipientKind)
    raw: bytes
    needs_smtputf8: bool
    from_header: str
    subject: str
    send_as: str = ""  # SendAs, for mail from a user's own address
    fallback: _Stored | None = None  # the "via the company" version (send-as policy auto)


def _fallback_stored(built: BuiltMessage, email: OutgoingEmail) -> _Stored:
    return _Stored(
        message_id="",  # the same as the message's own
        envelope_from=built.envelope_from,
        recipients=built.recipients,
        raw=built.raw,
        needs_smtputf8=built.needs_smtputf8,
        from_header=email.from_.formatted,
        subject=email.subject,
    )


@dataclass(frozen=True)
class _Queueing:
    """How a message is queued: where it came from, its lane, who sent it, and when."""

    source: Source
    lane: Lane
    sender_user: Any
    idempotency_key: str | None
    not_before_at: dt.datetime | None
    expires_at: dt.datetime | None
    now: dt.datetime
    source_detail: str = ""  # which SMTP credential, from which client


@dataclass(frozen=True)
class _Identity:
    """What tells one message from another when an idempotency key comes back: the sender,
    the subject and the recipients (the request itself is not stored)."""

    subject: str
    addresses: frozenset[str]  # lower case
    sender_user_id: int | None  # mail as a user: the policy may send it via the company
    envelope_from: str  # lower case; compared when there is no such user

    @classmethod
    def of_email(cls, email: OutgoingEmail, *, sender_user: Any) -> _Identity:
        return cls(
            subject=email.subject,
            addresses=frozenset(
                address.addr_spec.lower() for address in (*email.to, *email.cc, *email.bcc)
            ),
            sender_user_id=sender_user.pk if sender_user is not None else None,
            envelope_from=email.from_.addr_spec.lower(),
        )

    @classmethod
    def of_envelope(
        cls,
        subject: str,
        *,
        envelope_from: str,
        addresses: Sequence[tuple[NormalizedAddress, RecipientKind]],
    ) -> _Identity:
        return cls(
            subject=subject,
            addresses=frozenset(address.addr_spec.lower() for address, _ in addresses),
            sender_user_id=None,
            envelope_from=envelope_from.lower(),
        )

    def check(self, message: Message) -> None:
        recorded = {
            address.lower()
            for address in Recipient.objects.filter(message=message).values_list(
                "address", flat=True
            )
        }
        if self.sender_user_id is not None:
            is_same_sender = message.sender_user_id == self.sender_user_id
        else:
            is_same_sender = message.envelope_from.lower() == self.envelope_from
        if not is_same_sender or message.subject != self.subject or recorded != self.addresses:
            raise IdempotencyConflictError(
                f"This idempotency key was already used for a different message "
                f"({message.pk}, {message.message_id}); use a new key for a new message.",
                field="idempotency_key",
            )


def _check_idempotency_key(key: str | None) -> None:
    if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY:
        raise ValidationError(
            f"An idempotency key has 1 to {MAX_IDEMPOTENCY_KEY} characters.",
            field="idempotency_key",
        )


def _replay(key: str, identity: _Identity) -> Message | None:
    """The message queued with `key` before, marked as a replay (Message.is_replay); raises
    IdempotencyConflictError when it is not the message `identity` describes."""
    message = Message.objects.filter(idempotency_key=key).first()
    if message is not None:
        identity.check(message)
        message.is_replay = True
    return message


def _insert(stored: _Stored, queueing: _Queueing, identity: _Identity) -> Message:
    starts_at = max(queueing.not_before_at or queueing.now, queueing.now)
    fallback = stored.fallback
    try:
        with transaction.atomic():
            message = Message.objects.create(
                message_id=stored.message_id,
                idempotency_key=queueing.idempotency_key or None,
                lane=queueing.lane,
                priority=LANE_PRIORITY[queueing.lane],
                source=queueing.source,
                source_detail=queueing.source_detail[:200],
                envelope_from=stored.envelope_from,
                from_header=stored.from_header[:500],
                subject=stored.subject,
                sender_user=queueing.sender_user,
                raw=stored.raw,
                size=len(stored.raw),
                needs_smtputf8=stored.needs_smtputf8,
                send_as=stored.send_as,
                fallback_raw=fallback.raw if fallback else None,
                fallback_envelope_from=fallback.envelope_from if fallback else "",
                fallback_from_header=fallback.from_header[:500] if fallback else "",
                not_before_at=queueing.not_before_at,
                expires_at=queueing.expires_at or starts_at + retry_policy().give_up_after,
                next_attempt_at=starts_at,
            )
            Recipient.objects.bulk_create(
                Recipient(message=message, address=address, kind=kind)
                for address, kind in stored.recipients
            )
            Event.objects.create(
                kind=EventKind.MESSAGE_QUEUED,
                created_at=queueing.now,
                message=message,
                data={
                    "id": message.pk,
                    "message_id": stored.message_id,
                    "lane": queueing.lane,
                    "source": queueing.source,
                    "recipients": [address for address, _ in stored.recipients],
                },
            )
            transaction.on_commit(wake.notify_workers)
    except IntegrityError:
        # Another request with the same key inserted first, between the lookup and this
        # insert: the unique constraint makes lookup and insert one step, and this one a
        # replay (or a conflict, when that request was for another message).
        key = queueing.idempotency_key
        if key and (existing := _replay(key, identity)):
            return existing
        raise
    return message
