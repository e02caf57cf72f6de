"""Changes to the capture inbox: store what the capture server received, clear it."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from postroom.accounts.models import User
from postroom.audit.services import audit_record
from postroom.core.errors import PermissionDeniedError
from postroom.inbox.models import CapturedMessage
from postroom.mail.reading import MessageSummary, message_summarize
from postroom.outbox.models import Message

logger = logging.getLogger(__name__)

_UNREADABLE = MessageSummary(
    from_header="", to_header="", subject="", message_id="", has_attachments=False
)


def captured_message_create(
    *, raw: bytes, mail_from: str, rcpt_tos: Sequence[str], peer: str
) -> CapturedMessage:
    """Store one received message: the exact bytes, the envelope, and a summary for the list.

    A message the email package cannot make sense of is stored all the same (with an empty
    summary): the inbox is where people look at what was really sent, broken mail included.
    """
    try:
        summary = message_summarize(raw)
    except Exception:
        logger.warning(
            "Captured a message that cannot be parsed; storing it unread.", exc_info=True
        )
        summary = _UNREADABLE
    return CapturedMessage.objects.create(
        received_at=timezone.now(),
        mail_from=mail_from,
        rcpt_tos=list(rcpt_tos),
        peer=peer[:100],
        raw=raw,
        outbox_message=_delivery_of(message_id=summary.message_id, mail_from=mail_from),
        size=len(raw),
        from_header=summary.from_header,
        to_header=summary.to_header,
        subject=summary.subject,
        message_id=summary.message_id,
        has_attachments=summary.has_attachments,
    )


def _delivery_of(*, message_id: str, mail_from: str) -> Message | None:
    """The outbox message a capture is a delivery of: the same Message-ID (unique in the
    outbox), sent with an envelope sender that message goes out with. Mail sent to the
    capture port from outside the outbox matches none, and belongs to no user."""
    message_id = message_id.strip()
    if not message_id:
        return None
    return (
        Message.objects.filter(
            Q(envelope_from=mail_from) | Q(fallback_envelope_from=mail_from),
            message_id=message_id,
        )
        .only("id")
        .first()
    )


def captured_message_delete_all(*, actor: User | AnonymousUser) -> int:
    """Delete every captured message; administrators only. Returns how many were deleted."""
    if not getattr(actor, "is_administrator", False) or not actor.is_active:
        raise PermissionDeniedError("Only administrators can empty the capture inbox.")
    with transaction.atomic():
        count, _ = CapturedMessage.objects.all().delete()
        audit_record(
            actor=actor,
            action="inbox.delete_all",
            subject="Capture inbox",
            changes={"Messages deleted": {"from": count, "to": 0}},
        )
    return count
