"""Reading the capture inbox, as the Outbox's rule allows.

A captured message is a delivery of an outbox message, so whoever may read that message may
read the capture: its sender, and administrators (postroom.outbox.selectors). Mail that came
to the capture server from outside the outbox belongs to no user: administrators only. To
anyone else, a capture they may not read does not exist.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from postroom.core.errors import NotFoundError
from postroom.inbox.models import CapturedMessage
from postroom.outbox.selectors import message_visible_list, user_sees_all_messages

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


def captured_copies(*, message_pk: int) -> list[int]:
    """The captures of an outbox message (its delivery to the sandbox capture), by number."""
    return list(
        CapturedMessage.objects.filter(outbox_message_id=message_pk)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def captured_message_visible(*, user: Any) -> QuerySet[CapturedMessage]:
    """The captured mail `user` may read."""
    captured = CapturedMessage.objects.all()
    if user_sees_all_messages(user=user):
        return captured
    return captured.filter(outbox_message__in=message_visible_list(user=user))


def captured_message_list(*, user: Any, query: str = "") -> QuerySet[CapturedMessage]:
    """Messages newest first; `query` matches the sender, any recipient or the subject."""
    messages = captured_message_visible(user=user).only(*_LIST_FIELDS)
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


def captured_message_get(*, user: Any, pk: int) -> CapturedMessage:
    """One captured message `user` may read. Raises NotFoundError for one they may not,
    with the words used for one that does not exist: the answer reveals nothing."""
    message = captured_message_visible(user=user).filter(pk=pk).first()
    if message is None:
        raise NotFoundError(f"There is no captured message #{pk}: it may have been deleted.")
    return message


def captured_message_raw(*, message: CapturedMessage) -> bytes:
    # PostgreSQL hands BinaryField values back as memoryview, SQLite as bytes.
    return bytes(message.raw)
