"""What came back after the relay said 250: bounces and spam complaints, applied to the
outbox (postroom.bounces reads them from the bounce mailbox and calls these).

A hard bounce marks the recipient failed after the fact, recomputes its message's status
(sent → partly sent or failed), writes a `recipient.bounced` event and suppresses the
address; a complaint writes `recipient.complained` and suppresses the address. The caller
holds the transaction, so the report and its effects are recorded together.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from postroom.outbox import suppression
from postroom.outbox.models import (
    ACTIVE_MESSAGE_STATUSES,
    Event,
    EventKind,
    Message,
    Recipient,
    RecipientStatus,
    SuppressionReason,
)
from postroom.outbox.states import message_status_for

# Statuses a later bounce may turn into "failed": the relay took the message (or may have).
BOUNCEABLE_STATUSES = (RecipientStatus.SENT, RecipientStatus.UNCERTAIN)
_MAX_TEXT = 2000
# The SMTP reply code at the start of a Diagnostic-Code's text (RFC 3464 §2.3.6, type smtp).
_REPLY_CODE = re.compile(r"\s*([2-5][0-9][0-9])[\s-]")


@dataclass(frozen=True)
class LateReport:
    """A bounce or complaint about one recipient of one message of ours."""

    message_pk: int
    address: str  # the recipient's address as the report gave it (any case)
    status: str = ""  # RFC 3463 status from the report, "5.1.1"
    diagnostic: str = ""  # the remote server's words
    report_id: str = ""  # the report's own Message-ID, for the event


def recipient_find(*, message_pk: int, address: str) -> Recipient | None:
    """The message's recipient with this address, whatever its case."""
    return (
        Recipient.objects.select_related("message")
        .filter(message_id=message_pk, address__iexact=address.strip())
        .order_by("id")
        .first()
    )


def reply_code_of(diagnostic: str) -> int | None:
    match = _REPLY_CODE.match(diagnostic)
    return int(match.group(1)) if match else None


def recipient_bounce_record(report: LateReport, *, is_hard: bool, now: dt.datetime) -> str:
    """Apply a bounce of a recipient of ours; return what was done, in words.

    A permanent failure (5.x.x) fails the recipient, if the relay had taken it: the message
    did not arrive. A hard bounce (the address is bad) also suppresses the address; a soft
    one (a full mailbox, a block, a 4.x.x) does not: the caller counts soft bounces."""
    recipient = recipient_find(message_pk=report.message_pk, address=report.address)
    if recipient is None:
        return f"{report.address} is not a recipient of that message; nothing changed."
    message = recipient.message
    words = [
        f"{'Hard' if is_hard else 'Soft'} bounce of {recipient.address} "
        f"({report.status or 'no status'})."
    ]
    is_permanent = is_hard or report.status.startswith("5.")
    if is_permanent and recipient.status in BOUNCEABLE_STATUSES:
        _recipient_fail(recipient, report, now=now)
        words.append(f"Recipient marked failed; message now {_message_refresh(message)}.")
    elif is_permanent:
        words.append(f"The recipient was already {recipient.get_status_display().lower()}.")
    _event(EventKind.RECIPIENT_BOUNCED, message, recipient.address, report, now, is_hard=is_hard)
    if is_hard:
        words.append(
            _suppress(
                recipient.address,
                message,
                SuppressionReason.HARD_BOUNCED,
                note=f"Bounced after it was sent: {report.status} {report.diagnostic}",
                now=now,
                report=report,
            )
        )
    return " ".join(words)


def recipient_complaint_record(report: LateReport, *, feedback_type: str, now: dt.datetime) -> str:
    """Apply a spam complaint about a message of ours: event and suppression."""
    recipient = recipient_find(message_pk=report.message_pk, address=report.address)
    address = recipient.address if recipient is not None else report.address
    message = Message.objects.get(pk=report.message_pk)
    _event(EventKind.RECIPIENT_COMPLAINED, message, address, report, now, feedback=feedback_type)
    verdict = _suppress(
        address,
        message,
        SuppressionReason.COMPLAINED,
        note=f"Reported as {feedback_type or 'abuse'} (spam complaint, RFC 5965).",
        now=now,
        source=f"complaint about message {message.message_id}",
    )
    return f"Complaint ({feedback_type or 'abuse'}) from {address}. {verdict}"


def soft_bounces_suppress(
    *, address: str, message_pk: int, count: int, days: int, now: dt.datetime
) -> str:
    """Suppress an address that soft-bounced `count` times within `days` days."""
    message = Message.objects.get(pk=message_pk)
    return _suppress(
        address,
        message,
        SuppressionReason.HARD_BOUNCED,
        note=f"{count} soft bounces within {days} days (the bounce mailbox's limit).",
        now=now,
    )


def _recipient_fail(recipient: Recipient, report: LateReport, *, now: dt.datetime) -> None:
    recipient.status = RecipientStatus.FAILED
    recipient.last_code = reply_code_of(report.diagnostic)
    recipient.last_enhanced_code = report.status[:16]
    recipient.last_text = f"Bounced after it was sent: {report.diagnostic}".strip()[:_MAX_TEXT]
    recipient.updated_at = now
    recipient.save(
        update_fields=["status", "last_code", "last_enhanced_code", "last_text", "updated_at"]
    )


def _message_refresh(message: Message) -> str:
    """Recompute a finished message's status from its recipients; return its label. A
    message still in a worker's hands is left to the worker, which recomputes it."""
    if message.status not in ACTIVE_MESSAGE_STATUSES:
        statuses = Recipient.objects.filter(message=message).values_list("status", flat=True)
        message.status = message_status_for(statuses)
        message.save(update_fields=["status"])
    return message.get_status_display().lower()


def _event(
    kind: EventKind,
    message: Message,
    address: str,
    report: LateReport,
    now: dt.datetime,
    **extra: object,
) -> None:
    Event.objects.create(
        kind=kind,
        created_at=now,
        message=message,
        recipient=address,
        data={
            "id": message.pk,
            "message_id": message.message_id,
            "recipient": address,
            "status": report.status,
            "code": reply_code_of(report.diagnostic),
            "text": report.diagnostic[:_MAX_TEXT],
            "report_id": report.report_id,
            **extra,
        },
    )


def _suppress(
    address: str,
    message: Message,
    reason: SuppressionReason,
    *,
    note: str,
    now: dt.datetime,
    source: str = "",
    report: LateReport | None = None,
) -> str:
    # The event's data as for a hard bounce at RCPT (postroom.outbox.suppression), so
    # webhook receivers read both alike.
    bounce: dict[str, object] = {"id": message.pk, "message_id": message.message_id}
    if report is not None:
        bounce.update(
            code=reply_code_of(report.diagnostic),
            enhanced_code=report.status,
            text=report.diagnostic[:_MAX_TEXT],
        )
    entry = suppression.Entry(
        address=address,
        reason=reason,
        note=note.strip()[: suppression.NOTE_MAX_LENGTH],
        source=(source or f"bounce of message {message.message_id}")[
            : suppression.SOURCE_MAX_LENGTH
        ],
        message_pk=message.pk,
        bounce=bounce,
    )
    if suppression.entries_insert([entry], actor=None, now=now):
        return f"{address} added to the suppression list."
    return f"{address} was already on the suppression list."


def late_reports_in_words(*, message_pks: Sequence[int], address: str) -> dict[int, str]:
    """For a contact's history: what came back later about `address` in these messages, as
    message pk -> words ("Bounced after it was sent (5.1.1): …", "Reported as spam")."""
    events = Event.objects.filter(
        message_id__in=list(message_pks),
        recipient__iexact=address,
        kind__in=[EventKind.RECIPIENT_BOUNCED, EventKind.RECIPIENT_COMPLAINED],
    ).order_by("id")
    words: dict[int, str] = {}
    for event in events:
        assert event.message_id is not None
        data = event.data if isinstance(event.data, dict) else {}
        if event.kind == EventKind.RECIPIENT_COMPLAINED:
            text = f"Reported as spam ({data.get('feedback') or 'abuse'})."
        else:
            hard = "Bounced" if data.get("is_hard") else "Soft bounce"
            status = f" ({data['status']})" if data.get("status") else ""
            detail = f": {data['text']}" if data.get("text") else "."
            text = f"{hard} after it was sent{status}{detail}"
        words[event.message_id] = (
            f"{words[event.message_id]} {text}" if event.message_id in words else text
        )
    return words
