"""People acting on messages: cancel, retry."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from postroom.core.errors import ValidationError
from postroom.outbox import wake
from postroom.outbox.models import (
    PENDING_RECIPIENT_STATUSES,
    Message,
    MessageStatus,
    Recipient,
    RecipientStatus,
)
from postroom.outbox.retry import retry_policy
from postroom.outbox.states import message_status_for


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
