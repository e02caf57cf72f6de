"""The suppression list: addresses bulk mail is never sent to.

An address gets here when its owner unsubscribes (campaigns), complains, when its server
says it does not exist (a hard bounce: a permanent 5.1.x at RCPT, recorded by
postroom.outbox.record in the transaction that records the outcome), or by hand (the
Audiences pages, the API, a CSV import). Each new entry writes a `recipient.suppressed`
event for the webhooks, in the same transaction.

The outbox applies the list itself when it sends: the worker skips a bulk-lane recipient
whose address is here (status "suppressed"), however long the mail waited. Transactional
mail (a person's email, the API's default lane, password mails) is never suppressed: a
customer who unsubscribed from the newsletter still gets the invoice someone sends them.

Addresses compare without regard to case: `address_key` is Python's lower case, as
contacts' `email_key` is (postroom.contacts.models explains why a key column).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from postroom.audit.services import audit_record
from postroom.core.errors import NotFoundError, ValidationError
from postroom.mail.addresses import normalize_address
from postroom.mail.replies import Stage
from postroom.outbox.claim import ClaimedMessage
from postroom.outbox.models import (
    LANE_PRIORITY,
    Classification,
    Event,
    EventKind,
    Lane,
    Source,
    Suppression,
    SuppressionReason,
)

if TYPE_CHECKING:
    from postroom.accounts.models import User

# Keys looked up per query: under SQLite's old limit of 999 bound variables.
LOOKUP_CHUNK = 500
NOTE_MAX_LENGTH = 2000
SOURCE_MAX_LENGTH = 200  # Suppression.source
# RFC 3463 §3.1: X.1.XXX is "addressing status": the mailbox or its domain does not exist
# (5.1.1 bad mailbox, 5.1.2 bad domain, 5.1.10 null MX). Only a refusal at RCPT counts: there
# the server judged this one address, not the message.
HARD_BOUNCE_PREFIX = "5.1."


def address_key(address: str) -> str:
    return address.strip().lower()


def is_hard_bounce(*, classification: str, stage: str, enhanced_code: str) -> bool:
    """Whether a recipient's outcome says the address does not exist."""
    return (
        classification == Classification.PERMANENT
        and stage == Stage.RCPT
        and enhanced_code.startswith(HARD_BOUNCE_PREFIX)
    )


# Read.


def is_suppressed(address: str) -> bool:
    return Suppression.objects.filter(address_key=address_key(address)).exists()


def suppressed_among(*, addresses: Iterable[str]) -> dict[str, str]:
    """Of `addresses`, the keys of those suppressed, each with its reason's label."""
    keys = list({address_key(address) for address in addresses})
    found: dict[str, str] = {}
    labels = dict(SuppressionReason.choices)
    for start in range(0, len(keys), LOOKUP_CHUNK):
        rows = Suppression.objects.filter(address_key__in=keys[start : start + LOOKUP_CHUNK])
        found.update(
            (key, labels[reason]) for key, reason in rows.values_list("address_key", "reason")
        )
    return found


# Bulk mail the suppression list applies to: campaigns and bulk sends through the API.
# Reports and the SMTP listener's mail take the bulk lane only to stay out of a person's way;
# someone who unsubscribed from campaigns still gets the company's reports and invoices.
SUPPRESSIBLE_SOURCES = frozenset({Source.CAMPAIGN, Source.API})


def is_suppressible(message: ClaimedMessage) -> bool:
    return message.priority == LANE_PRIORITY[Lane.BULK] and message.source in SUPPRESSIBLE_SOURCES


def suppressed_recipients(*, messages: Sequence[ClaimedMessage]) -> dict[int, dict[int, str]]:
    """For the worker: of claimed (bulk) messages, those with suppressed recipients, as
    message id -> {recipient id: the reason's label}."""
    addresses = [recipient.address for message in messages for recipient in message.recipients]
    found = suppressed_among(addresses=addresses)
    skipped: dict[int, dict[int, str]] = {}
    for message in messages if found else ():
        for recipient in message.recipients:
            if (key := address_key(recipient.address)) in found:
                skipped.setdefault(message.id, {})[recipient.id] = found[key]
    return skipped


def suppressed_text(address: str, reason: str) -> str:
    """What the outbox says of a recipient it did not send to."""
    return (
        f"Not sent: {address} is on the suppression list — {reason.lower()}. Bulk mail is "
        "never sent to it; remove it under Audiences → Suppression to send to it again."
    )


def suppressed_q(field: str) -> Q:
    """A filter: the row's address `field` is suppressed. On contacts pass "email_key" (the
    address already in Python's lower case, compared exactly); on outbox recipients
    "address" (lowered by the database: on SQLite, LOWER() folds ASCII only, so an address
    with an upper-case non-ASCII letter is not found that way; contacts' keys always are).
    Negate it to leave suppressed addresses out: `.exclude(suppressed_q("email_key"))`."""
    return Q(Exists(Suppression.objects.filter(address_key=Lower(OuterRef(field)))))


def suppression_list(*, search: str = "", reason: str = "") -> QuerySet[Suppression]:
    """Entries newest first; each word of `search` must appear in the address, note or
    source."""
    entries = Suppression.objects.select_related("created_by")
    for word in search.split():
        entries = entries.filter(
            Q(address_key__contains=word.lower())
            | Q(note__icontains=word)
            | Q(source__icontains=word)
        )
    if reason:
        entries = entries.filter(reason=reason)
    return entries.order_by("-id")


def suppression_get(*, pk: int) -> Suppression:
    try:
        return Suppression.objects.get(pk=pk)
    except Suppression.DoesNotExist:
        raise NotFoundError(
            f"There is no suppression #{pk}; it may have been removed already."
        ) from None


def suppression_get_by_address(*, address: str) -> Suppression | None:
    return Suppression.objects.filter(address_key=address_key(address)).first()


# Write.


@dataclass(frozen=True)
class Entry:
    """An address to suppress, checked (see `entry_make`)."""

    address: str
    reason: str
    note: str = ""
    source: str = ""
    # For a hard bounce: the message whose delivery bounced, and the server's reply.
    message_pk: int | None = None
    bounce: dict[str, Any] = field(default_factory=dict)


def entry_make(
    address: str, *, reason: str, note: str = "", source: str = "", field: str = "address"
) -> Entry:
    """Check an address to suppress (its syntax, as for any recipient) and its reason."""
    normalized = normalize_address(address, label="Address", field=field)
    if reason not in SuppressionReason.values:
        raise ValidationError(
            f"Choose a reason: {', '.join(SuppressionReason.values)}.", field="reason"
        )
    note = note.strip()
    if len(note) > NOTE_MAX_LENGTH:
        raise ValidationError(
            f"The note is {len(note)} characters long; use at most {NOTE_MAX_LENGTH}.",
            field="note",
        )
    return Entry(normalized.addr_spec, reason, note, source.strip()[:SOURCE_MAX_LENGTH])


def entries_insert(
    entries: Sequence[Entry], *, actor: User | None, now: dt.datetime
) -> list[Suppression]:
    """Insert the entries whose address is not suppressed yet, each with its
    `recipient.suppressed` event; return the new ones. The caller holds the transaction.

    Two transactions suppressing one address at once (two workers recording bounces on
    PostgreSQL) both pass the check; the unique key keeps one row (ignore_conflicts), and
    the address's event may come twice, which webhooks allow (at least once)."""
    unique = list({address_key(entry.address): entry for entry in entries}.items())
    new: list[tuple[Suppression, Entry]] = []
    for start in range(0, len(unique), LOOKUP_CHUNK):
        chunk = unique[start : start + LOOKUP_CHUNK]
        existing = set(
            Suppression.objects.filter(address_key__in=[key for key, _ in chunk]).values_list(
                "address_key", flat=True
            )
        )
        new.extend(
            (
                Suppression(
                    address=entry.address,
                    address_key=key,
                    reason=entry.reason,
                    note=entry.note,
                    source=entry.source,
                    created_at=now,
                    created_by=actor,
                ),
                entry,
            )
            for key, entry in chunk
            if key not in existing
        )
    Suppression.objects.bulk_create([row for row, _ in new], ignore_conflicts=True)
    Event.objects.bulk_create(
        Event(
            kind=EventKind.RECIPIENT_SUPPRESSED,
            created_at=now,
            message_id=entry.message_pk,
            recipient=entry.address,
            data={
                "recipient": entry.address,
                "reason": entry.reason,
                "source": entry.source,
                **entry.bounce,
            },
        )
        for _, entry in new
    )
    return [row for row, _ in new]


def suppression_add(
    *,
    actor: User | None,
    address: str,
    reason: str = SuppressionReason.MANUAL,
    note: str = "",
    source: str = "",
) -> Suppression:
    """Suppress an address. One already suppressed keeps its entry (first reason, first
    date), which is returned with `is_new` False."""
    entry = entry_make(address, reason=reason, note=note, source=source or _source_of(actor))
    with transaction.atomic():
        added = entries_insert([entry], actor=actor, now=timezone.now())
        if not added:
            existing = suppression_get_by_address(address=entry.address)
            assert existing is not None
            existing.is_new = False
            return existing
        audit_record(
            actor=actor,
            action="suppression.added",
            subject=f"address {entry.address}",
            changes={"Reason": added[0].get_reason_display(), "Note": entry.note},
        )
    return suppression_get_by_address(address=entry.address) or added[0]


def _source_of(actor: User | None) -> str:
    return f"added by {actor.get_username()}" if actor is not None else "added through the API"


def suppression_remove(*, actor: User | None, suppression: Suppression) -> None:
    """Take an address off the list: bulk mail may reach it again (waiting mail too)."""
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="suppression.removed",
            subject=f"address {suppression.address}",
            changes={
                "Reason": suppression.get_reason_display(),
                "Since": timezone.localtime(suppression.created_at).isoformat(timespec="minutes"),
            },
        )
        suppression.delete()


@dataclass(frozen=True)
class ImportOutcome:
    added: int
    already: int  # addresses that were suppressed before


def suppression_import(
    *, actor: User | None, entries: Sequence[Entry], filename: str
) -> ImportOutcome:
    """Suppress the (checked) entries of a file at once, audited as one change."""
    with transaction.atomic():
        added = entries_insert(entries, actor=actor, now=timezone.now())
        unique = len({address_key(entry.address) for entry in entries})
        outcome = ImportOutcome(added=len(added), already=unique - len(added))
        audit_record(
            actor=actor,
            action="suppression.imported",
            subject=f"file {filename}",
            changes={
                "File": filename,
                "Added": outcome.added,
                "Already suppressed": outcome.already,
            },
        )
    return outcome


@dataclass(frozen=True)
class HardBounce:
    address: str
    message_pk: int
    message_id: str
    code: int | None
    enhanced_code: str
    text: str


def hard_bounces_record(bounces: Sequence[HardBounce], *, now: dt.datetime) -> None:
    """Suppress the addresses of hard bounces (reason hard_bounced), inside the caller's
    transaction: the transaction that records the outcomes (postroom.outbox.record)."""
    entries = [
        Entry(
            address=bounce.address,
            reason=SuppressionReason.HARD_BOUNCED,
            note=f"{bounce.code or ''} {bounce.enhanced_code} {bounce.text}".strip()[
                :NOTE_MAX_LENGTH
            ],
            source=f"bounce of message {bounce.message_id}"[:SOURCE_MAX_LENGTH],
            message_pk=bounce.message_pk,
            bounce={
                "id": bounce.message_pk,
                "message_id": bounce.message_id,
                "code": bounce.code,
                "enhanced_code": bounce.enhanced_code,
                "text": bounce.text,
            },
        )
        for bounce in bounces
    ]
    entries_insert(entries, actor=None, now=now)


def suppression_export_rows(entries: Iterable[Suppression]) -> Iterable[list[str]]:
    """The entries as CSV rows, header first; the import reads this file back."""
    yield ["Address", "Reason", "Note", "Source", "Added at"]
    for entry in entries:
        yield [
            entry.address,
            entry.reason,
            entry.note,
            entry.source,
            timezone.localtime(entry.created_at).isoformat(timespec="seconds"),
        ]
