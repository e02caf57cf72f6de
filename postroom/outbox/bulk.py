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
from typing import Any

from django.db import transaction
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
        "subject": template.subject,
        "sender_user": sender_user,
        "bulk_template": template,
        "not_before_at": not_before_at,
        "expires_at": starts_at + retry_policy().give_up_after,
        "next_attempt_at": starts_at,
    }
    domain = template.from_address.rpartition("@")[2]
    with transaction.atomic():
        for start in range(0, len(recipients), INSERT_BATCH):
            rows = [
                _bulk_row(to, values, domain=domain, compiled=compiled, shared=shared)
                for to, values in recipients[start : start + INSERT_BATCH]
            ]
            _bulk_insert(rows, now=now, source=source)
        transaction.on_commit(wake.notify_workers)
    return len(recipients)


def _bulk_row(
    to: Address,
    values: Mapping[str, str],
    *,
    domain: str,
    compiled: CompiledTemplate,
    shared: Mapping[str, Any],
) -> tuple[Message, str]:
    """One recipient's message (not saved yet) and its envelope address."""
    normalized = normalize_address(to.addr_spec, label="Recipient", field="to")
    message = Message(
        message_id=new_message_id(domain),
        bulk_data={"to": [to.display_name, normalized.addr_spec], "values": dict(values)},
        needs_smtputf8=compiled.needs_smtputf8 or normalized.needs_smtputf8,
        **shared,
    )
    return message, normalized.addr_spec


def _bulk_insert(rows: Sequence[tuple[Message, str]], *, now: dt.datetime, source: Source) -> None:
    """Insert one batch: the messages, their recipients, their "queued" events."""
    Message.objects.bulk_create(message for message, _ in rows)
    Recipient.objects.bulk_create(
        Recipient(message=message, address=address, kind=RecipientKind.TO)
        for message, address in rows
    )
    Event.objects.bulk_create(
        Event(
            kind=EventKind.MESSAGE_QUEUED,
            created_at=now,
            message=message,
            recipient=address,
            data={
                "id": message.pk,
                "message_id": message.message_id,
                "lane": Lane.BULK,
                "source": source,
                "recipients": [address],
            },
        )
        for message, address in rows
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
