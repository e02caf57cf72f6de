"""Reading the capture inbox."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from postroom.core.errors import NotFoundError
from postroom.inbox.models import CapturedMessage

# Fields the list shows; `raw` (up to the capture server's size limit) stays in the database.
_LIST_FIELDS = (
    "id",
    "received_at",
    "mail_from",
    "rcpt_tos",
    "from_header",
    "to_header",
    "subject",
    "size",
    "has_attachments",
)


def captured_message_list(*, query: str = "") -> QuerySet[CapturedMessage]:
    """Messages newest first; `query` matches the sender, any recipient or the subject."""
    messages = CapturedMessage.objects.only(*_LIST_FIELDS)
    query = query.strip()
    if query:
        messages = messages.filter(
            Q(mail_from__icontains=query)
            | Q(rcpt_tos__icontains=query)
            | Q(from_header__icontains=query)
            | Q(to_header__icontains=query)
            | Q(subject__icontains=query)
        )
    return messages


def captured_message_count() -> int:
    return CapturedMessage.objects.count()


def captured_message_get(*, pk: int) -> CapturedMessage:
    try:
        return CapturedMessage.objects.get(pk=pk)
    except CapturedMessage.DoesNotExist:
        raise NotFoundError(
            f"There is no captured message #{pk}: it may have been deleted."
        ) from None


def captured_message_raw(*, message: CapturedMessage) -> bytes:
    # PostgreSQL hands BinaryField values back as memoryview, SQLite as bytes.
    return bytes(message.raw)
