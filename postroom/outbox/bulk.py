"""Bulk mail in the outbox: one stored template version, one small row per recipient.

A campaign to a million contacts stores its template once (`BulkTemplate`, immutable, found
by content hash) and per recipient only the address and merge values. The worker renders the
bytes when it sends, with the fast renderer of postroom.mail.bulk; the Message-ID and Date are
fixed at enqueue, so every attempt (and the raw download) gives byte-identical mail.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone

from postroom.mail.addresses import Address, normalize_address
from postroom.mail.bulk import CompiledTemplate, compile_template, template_content_hash
from postroom.mail.message import new_message_id
from postroom.outbox import wake
from postroom.outbox.models import (
    LANE_PRIORITY,
    BulkTemplate,
    Event,
    EventKind,
    Lane,
    Message,
    Recipient,
    RecipientKind,
    Source,
)
from postroom.outbox.retry import retry_policy

# Rows per INSERT: large enough to amortise the round trip, small enough for SQLite's
# limit on bound parameters (32,766 since 3.32) with a dozen columns.
INSERT_BATCH = 500


def bulk_template_store(
    *,
    from_: Address,
    reply_to: Sequence[Address] = (),
    subject: str,
    text: str | None,
    html: str | None,
    headers: Mapping[str, str] | None = None,
) -> BulkTemplate:
    """Validate a template and store it once; an identical template is the same row."""
    headers = dict(headers or {})
    compile_template(  # raises ValidationError for anything that could not be sent
        from_=from_,
        reply_to=reply_to,
        subject_template=subject,
        text_template=text,
        html_template=html,
        headers=headers,
    )
    content_hash = template_content_hash(
        from_=from_,
        reply_to=reply_to,
        subject_template=subject,
        text_template=text,
        html_template=html,
        headers=headers,
    )
    template, _ = BulkTemplate.objects.get_or_create(
        content_hash=content_hash,
        defaults={
            "from_name": from_.display_name,
            "from_address": from_.addr_spec,
            "reply_to": [[address.display_name, address.addr_spec] for address in reply_to],
            "subject": subject,
            "text": text or "",
            "html": html or "",
            "headers": headers,
        },
    )
    return template


@functools.lru_cache(maxsize=64)
def _compiled(template_id: int, content_hash: str) -> CompiledTemplate:
    # Keyed by the hash too, so a test database reusing an id never gets a stale template.
    template = BulkTemplate.objects.get(pk=template_id)
    return compile_template(
        from_=Address(template.from_name, template.from_address),
        reply_to=[Address(name, address) for name, address in template.reply_to],
        subject_template=template.subject,
        text_template=template.text or None,
        html_template=template.html or None,
        headers=template.headers,
    )


def bulk_template_compiled(template_id: int) -> CompiledTemplate:
    content_hash = BulkTemplate.objects.values_list("content_hash", flat=True).get(pk=template_id)
    return _compiled(template_id, content_hash)


def bulk_render(
    compiled: CompiledTemplate, *, message_id: str, date: dt.datetime, data: Mapping[str, Any]
) -> bytes:
    name, address = data["to"]
    return compiled.render(
        to=Address(name, address), message_id=message_id, date=date, values=data["values"]
    )


def bulk_enqueue(
    *,
    template: BulkTemplate,
    recipients: Sequence[tuple[Address, Mapping[str, str]]],
    source: Source,
    sender_user: Any = None,
    not_before_at: dt.datetime | None = None,
) -> int:
    """Queue one bulk message per recipient in one transaction; return how many."""
    now = timezone.now()
    starts_at = max(not_before_at or now, now)
    compiled = bulk_template_compiled(template.pk)
    # What every message of this template shares, worked out once.
    shared: dict[str, Any] = {
        "lane": Lane.BULK,
        "priority": LANE_PRIORITY[Lane.BULK],
        "source": source,
        "envelope_from": compiled.envelope_from,
        "from_header": Address(template.from_name, template.from_address).formatted,
        "sender_user": sender_user,
        "bulk_template": template,
        "not_before_at": not_before_at,
        "expires_at": starts_at + retry_policy().give_up_after,
        "next_attempt_at": starts_at,
    }
    domain = template.from_address.rpartition("@")[2]
    with transaction.atomic():
        sample = Message(message_id="", **shared)
        for start in range(0, len(recipients), INSERT_BATCH):
            rows = [
                _bulk_row(to, values, domain=domain, compiled=compiled)
                for to, values in recipients[start : start + INSERT_BATCH]
            ]
            _bulk_insert(sample, rows, now=now, source=source)
        transaction.on_commit(wake.notify_workers)
    return len(recipients)


# What differs between the messages of one batch, in `_bulk_row`'s order; every other field
# is the `shared` values of bulk_enqueue.
# The subject too: the Outbox and a contact's history show each recipient's own, merged.
_MESSAGE_VARYING = ("message_id", "bulk_data", "needs_smtputf8", "subject")


def _bulk_row(
    to: Address, values: Mapping[str, str], *, domain: str, compiled: CompiledTemplate
) -> tuple[str, dict[str, Any], bool, str, str]:
    """One recipient's message as its varying fields (`_MESSAGE_VARYING`), and its envelope
    address."""
    normalized = normalize_address(to.addr_spec, label="Recipient", field="to")
    return (
        new_message_id(domain),
        {"to": [to.display_name, normalized.addr_spec], "values": dict(values)},
        compiled.needs_smtputf8 or normalized.needs_smtputf8,
        compiled.subject_for(values),
        normalized.addr_spec,
    )


def _bulk_insert(
    sample: Message,
    rows: Sequence[tuple[str, dict[str, Any], bool, str, str]],
    *,
    now: dt.datetime,
    source: Source,
) -> None:
    """Insert one batch: the messages, their recipients, their "queued" events."""
    ids = rows_insert(sample, _MESSAGE_VARYING, [row[:4] for row in rows], returning="message_id")
    pks = [ids[message_id] for message_id, *_ in rows]
    recipient = Recipient(message_id=0, address="", kind=RecipientKind.TO)
    rows_insert(
        recipient,
        ("message_id", "address"),
        [(pk, row[4]) for pk, row in zip(pks, rows, strict=True)],
    )
    event = Event(kind=EventKind.MESSAGE_QUEUED, created_at=now, message_id=0, data={})
    rows_insert(
        event,
        ("message_id", "recipient", "data"),
        [
            (
                pk,
                address,
                {
                    "id": pk,
                    "message_id": message_id,
                    "lane": Lane.BULK,
                    "source": source,
                    "recipients": [address],
                },
            )
            for pk, (message_id, _, _, _, address) in zip(pks, rows, strict=True)
        ],
    )


def rows_insert(
    sample: Any,
    varying: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    returning: str = "",
) -> dict[Any, int]:
    """INSERT rows of `sample`'s model: each is `sample` with its own values of the
    `varying` fields (in that order). With `returning`, answer the new ids by that field.

    The ORM's bulk_create builds a model instance per row and prepares each of its fields for
    the database: for a campaign's 100,000 messages of 30 fields that cost about as much CPU
    as sending them (docs/performance.md). Here the other fields are prepared once, from
    `sample`, and the rows go as one multi-row INSERT (…RETURNING, for the ids) or one
    executemany. Every value is a bound parameter; the names are the model's own.
    """
    # The thread's connection itself: `connection` is a proxy that finds it on every use,
    # and the fields use it for each value (a tenth of a batch's time).
    database = connections[DEFAULT_DB_ALIAS]
    shape = _insert_shape(type(sample), tuple(varying), returning, database)
    shared: list[Any] = [None] * shape.width
    for index, field in shape.shared:
        shared[index] = field.get_db_prep_save(field.pre_save(sample, add=True), database)
    values = []
    for row in rows:
        prepared = list(shared)
        for (index, field), value in zip(shape.varying, row, strict=True):
            prepared[index] = field.get_db_prep_save(value, database)
        values.append(prepared)
    with database.cursor() as cursor:
        if not returning:
            cursor.executemany(shape.sql(1), values)
            return {}
        cursor.execute(shape.sql(len(values)), [value for row in values for value in row])
        return dict(cursor.fetchall())


@dataclass(frozen=True)
class _InsertShape:
    """What `rows_insert` needs of a model and its varying fields, worked out once per shape:
    which fields come from the sample (the varying ones are overwritten by every row, so
    they are not prepared) and the statement. For a message sent alone, preparing all of
    them and building the statement each time was a third of storing it."""

    width: int
    shared: list[tuple[int, Any]]  # (column index, field) prepared from the sample
    varying: list[tuple[int, Any]]  # (column index, field) of each row's values, in order
    prefix: str  # INSERT INTO table (columns) VALUES
    one: str  # (%s, %s, ...)
    returning: str

    def sql(self, rows: int) -> str:
        return self.prefix + ", ".join([self.one] * rows) + self.returning


_shapes: dict[tuple[Any, ...], _InsertShape] = {}


def _insert_shape(
    model: Any, varying: tuple[str, ...], returning: str, database: Any
) -> _InsertShape:
    # The vendor is part of the key: the quoting of the names is the database's.
    key = (model, varying, returning, database.vendor)
    if (shape := _shapes.get(key)) is None:
        shape = _shapes[key] = _insert_shape_new(model, varying, returning, database.ops)
    return shape


def _insert_shape_new(
    model: Any, varying: tuple[str, ...], returning: str, ops: Any
) -> _InsertShape:
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    by_name = {field.attname: index for index, field in enumerate(fields)}
    places = [(by_name[name], fields[by_name[name]]) for name in varying]
    overwritten = {index for index, _ in places}
    table = ops.quote_name(model._meta.db_table)
    columns = ", ".join(ops.quote_name(field.column) for field in fields)
    key = ops.quote_name(model._meta.get_field(returning).column) if returning else ""
    return _InsertShape(
        width=len(fields),
        shared=[(i, field) for i, field in enumerate(fields) if i not in overwritten],
        varying=places,
        prefix=f"INSERT INTO {table} ({columns}) VALUES ",  # noqa: S608 - the model's own names
        one="(" + ", ".join(["%s"] * len(fields)) + ")",
        returning=f" RETURNING {key}, {ops.quote_name(model._meta.pk.column)}" if key else "",
    )


def message_bytes(message: Message) -> bytes:
    """The exact bytes of a message: stored, or rendered from its bulk template."""
    if message.raw is not None:
        return bytes(message.raw)
    assert message.bulk_template_id is not None and message.bulk_data is not None
    return bulk_render(
        bulk_template_compiled(message.bulk_template_id),
        message_id=message.message_id,
        date=message.created_at,
        data=message.bulk_data,
    )
