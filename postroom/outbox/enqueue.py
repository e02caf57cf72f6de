"""Put mail into the outbox: build it, check it, store it durably.

Durability rule: a message is accepted only when `message_enqueue*` returns, which is after
its transaction committed (SQLite runs with synchronous=FULL, see settings).

The API prepares each message apart (`message_prepare`: checked and built, nothing stored)
and stores many in one transaction (postroom.outbox.batch), answering from what it prepared
rather than reading the stored rows back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from postroom.core.errors import ValidationError
from postroom.mail.addresses import NormalizedAddress, normalize_address
from postroom.mail.message import BuiltMessage, OutgoingEmail, new_message_id
from postroom.mail.reading import header_texts
from postroom.outbox import wake
from postroom.outbox.building import message_build
from postroom.outbox.bulk import rows_insert
from postroom.outbox.idempotency import IdempotencyConflictError, Identity
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
from postroom.outbox.selectors import messages_by_message_id
from postroom.outbox.send_as import SenderChoice, send_as_apply


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
    choice, identity = _choose(email, sender_user=sender_user, key=idempotency_key)
    if idempotency_key and (existing := _replay(idempotency_key, identity)):
        return existing
    prepared = _prepare(
        choice,
        identity,
        _Queueing(
            source=source,
            lane=lane,
            sender_user=sender_user,
            idempotency_key=idempotency_key,
            not_before_at=not_before_at,
            expires_at=expires_at,
            now=timezone.now(),
        ),
    )
    return _insert(prepared.stored, prepared.queueing, prepared.identity)


def message_prepare(
    *,
    email: OutgoingEmail,
    source: Source,
    lane: Lane = Lane.TRANSACTIONAL,
    sender_user: Any = None,
    idempotency_key: str | None = None,
    not_before_at: dt.datetime | None = None,
) -> PreparedMessage:
    """Check and build `email` as `message_enqueue` does, storing nothing (the send-as policy
    reads the database): postroom.outbox.batch stores it. Bad input raises
    ValidationError; whether its idempotency key was used before is known only then."""
    choice, identity = _choose(email, sender_user=sender_user, key=idempotency_key)
    queueing = _Queueing(
        source=source,
        lane=lane,
        sender_user=sender_user,
        idempotency_key=idempotency_key,
        not_before_at=not_before_at,
        expires_at=None,
        now=timezone.now(),
    )
    return _prepare(choice, identity, queueing)


def _choose(
    email: OutgoingEmail, *, sender_user: Any, key: str | None
) -> tuple[SenderChoice, Identity]:
    _check_idempotency_key(key)
    choice = send_as_apply(email=email, user=sender_user)
    identity = Identity.of_email(email, sender_user=sender_user if choice.send_as else None)
    return choice, identity


def _prepare(choice: SenderChoice, identity: Identity, queueing: _Queueing) -> PreparedMessage:
    now = queueing.now
    message_id = new_message_id(choice.email.from_.addr_spec.rpartition("@")[2])

    def build(variant: OutgoingEmail) -> BuiltMessage:
        return message_build(
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
    return PreparedMessage(stored, queueing, identity)


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
    """Queue a message that is already RFC 5322 bytes (send_mail, `postroom send`): as
    `message_prepare_raw` says, stored at once."""
    prepared = message_prepare_raw(
        envelope_from=envelope_from,
        recipients=recipients,
        raw=raw,
        source=source,
        cc=cc,
        bcc=bcc,
        lane=lane,
        sender_user=sender_user,
        idempotency_key=idempotency_key,
        not_before_at=not_before_at,
        source_detail=source_detail,
    )
    if isinstance(prepared, Message):
        return prepared
    if resubmitted := message_resubmitted([prepared]).get(0):
        return resubmitted
    return _insert(prepared.stored, prepared.queueing, prepared.identity)


def message_resubmitted(prepared: Sequence[PreparedMessage]) -> dict[int, Message]:
    """By index in `prepared`, the message stored before with the same Message-ID (a system
    retrying a timed-out SMTP session): one query for all (one each cost the listener half
    its time), asked in the transaction that stores them, so no writer comes between."""
    ids = [item.stored.message_id for item in prepared]
    found = messages_by_message_id(ids)
    return {index: found[key] for index, key in enumerate(ids) if key in found}


def message_prepare_raw(  # Long because: the checks of raw bytes, one after another
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
) -> PreparedMessage | Message:
    """Check a message that is already RFC 5322 bytes and make it ready to store (the SMTP
    listener stores many at once with `messages_insert`); the stored Message instead when its
    idempotency key was used before. Whether its Message-ID was stored before is the
    storing's question (`message_resubmitted`).

    The bytes are sent as they are (no send-as policy: their From is final), except that a
    missing Message-ID is added, so that a retry after an uncertain delivery carries the same
    one. `recipients` are recorded as To; `cc` and `bcc` only label envelope recipients for
    the pages (the bytes decide headers). Idempotency is as for `message_enqueue`.
    """
    _check_idempotency_key(idempotency_key)
    _check_raw_size(raw)
    sender = normalize_address(envelope_from) if envelope_from else None
    normalized = _envelope_recipients(recipients, cc, bcc)
    headers = header_texts(raw, ("Subject", "Message-ID", "From"))
    subject = headers["Subject"]
    identity = Identity.of_envelope(
        subject, envelope_from=sender.addr_spec if sender else "", addresses=normalized
    )
    if idempotency_key and (existing := _replay(idempotency_key, identity)):
        return existing
    message_id = headers["Message-ID"]
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
        from_header=headers["From"],
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
    return PreparedMessage(stored, queueing, identity)


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


def _check_idempotency_key(key: str | None) -> None:
    if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY:
        raise ValidationError(
            f"An idempotency key has 1 to {MAX_IDEMPOTENCY_KEY} characters.",
            field="idempotency_key",
        )


def _replay(key: str, identity: Identity) -> Message | None:
    """The message queued with `key` before, marked as a replay (Message.is_replay); raises
    IdempotencyConflictError when it is not the message `identity` describes."""
    message = Message.objects.filter(idempotency_key=key).first()
    if message is not None:
        identity.check(message)
        message.is_replay = True
    return message


@dataclass(frozen=True)
class PreparedMessage:
    """A message checked and built by `message_prepare`, not stored yet."""

    stored: _Stored
    queueing: _Queueing
    identity: Identity

    @property
    def recipients(self) -> Sequence[tuple[str, str]]:
        """(address, RecipientKind) of each recipient, as they are stored."""
        return self.stored.recipients


def messages_insert(
    prepared: Sequence[PreparedMessage],
) -> list[Message | IdempotencyConflictError]:
    """Store new messages in the caller's transaction, with one INSERT per table (a few, for
    SQLite's bound on parameters). A key that another request stored meanwhile is decided as
    in `message_enqueue`: that message, or its IdempotencyConflictError."""
    if not prepared:
        return []
    is_keyed = any(item.queueing.idempotency_key for item in prepared)
    if connection.features.can_return_rows_from_bulk_insert:
        try:
            # A savepoint only where a key may lose a race (see _insert).
            with transaction.atomic(savepoint=is_keyed):
                return list(_insert_many(prepared))
        except IntegrityError:
            if not is_keyed:
                raise
            # A key stored by another request since the lookup (PostgreSQL; SQLite's
            # IMMEDIATE transaction keeps other writers out): one by one, each decides its race.
    inserted: list[Message | IdempotencyConflictError] = []
    for item in prepared:
        try:
            inserted.append(_insert(item.stored, item.queueing, item.identity))
        except IdempotencyConflictError as error:
            inserted.append(error)
    return inserted


# The fields `_message_row` sets: what differs between the messages of one insert. The
# others are a new message's defaults, and created_at is the time of the insert.
_MESSAGE_VARYING = (
    *("message_id", "idempotency_key", "lane", "priority", "source", "source_detail"),
    *("envelope_from", "from_header", "subject", "sender_user_id", "raw", "size"),
    *("needs_smtputf8", "send_as", "fallback_raw", "fallback_envelope_from"),
    *("fallback_from_header", "not_before_at", "expires_at", "next_attempt_at"),
)


def _insert_many(prepared: Sequence[PreparedMessage]) -> list[Message]:
    """One multi-row INSERT per table (postroom.outbox.bulk.rows_insert, as a campaign's
    messages are written): the ORM's bulk_create costs about as much as the rest of
    accepting a message."""
    messages = [_message_row(item.stored, item.queueing) for item in prepared]
    ids = rows_insert(
        messages[0],
        _MESSAGE_VARYING,
        [[getattr(message, name) for name in _MESSAGE_VARYING] for message in messages],
        returning="message_id",
    )
    for message in messages:
        message.pk = ids[message.message_id]
        message.created_at = messages[0].created_at  # auto_now_add, set on the first
        message._state.adding = False  # stored: a later save() is an UPDATE
        message._state.db = connection.alias
    rows_insert(
        Recipient(message_id=0, address="", kind=RecipientKind.TO),
        ("message_id", "address", "kind"),
        [
            (message.pk, address, kind)
            for message, item in zip(messages, prepared, strict=True)
            for address, kind in item.stored.recipients
        ],
    )
    rows_insert(
        _queued_event(messages[0], prepared[0].stored, prepared[0].queueing),
        ("message_id", "created_at", "data"),
        [
            (message.pk, item.queueing.now, _queued_data(message, item.stored, item.queueing))
            for message, item in zip(messages, prepared, strict=True)
        ],
    )
    transaction.on_commit(wake.notify_workers)
    return messages


def _insert(stored: _Stored, queueing: _Queueing, identity: Identity) -> Message:
    # A savepoint only where an insert may lose a race, to an idempotency key: it lets the
    # lookup below run inside a caller's transaction. Without a key an IntegrityError is a
    # plain error, and a savepoint would cost two statements for nothing.
    try:
        with transaction.atomic(savepoint=bool(queueing.idempotency_key)):
            message = _message_row(stored, queueing)
            message.save(force_insert=True)
            Recipient.objects.bulk_create(_recipient_rows(message, stored))
            _queued_event(message, stored, queueing).save(force_insert=True)
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


def _message_row(stored: _Stored, queueing: _Queueing) -> Message:
    starts_at = max(queueing.not_before_at or queueing.now, queueing.now)
    fallback = stored.fallback
    return Message(
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


def _recipient_rows(message: Message, stored: _Stored) -> list[Recipient]:
    return [
        Recipient(message=message, address=address, kind=kind)
        for address, kind in stored.recipients
    ]


def _queued_event(message: Message, stored: _Stored, queueing: _Queueing) -> Event:
    return Event(
        kind=EventKind.MESSAGE_QUEUED,
        created_at=queueing.now,
        message=message,
        data=_queued_data(message, stored, queueing),
    )


def _queued_data(message: Message, stored: _Stored, queueing: _Queueing) -> dict[str, Any]:
    return {
        "id": message.pk,
        "message_id": stored.message_id,
        "lane": queueing.lane,
        "source": queueing.source,
        "recipients": [address for address, _ in stored.recipients],
    }
