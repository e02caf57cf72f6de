"""What an API key may read of the outbox, and the keyset pages of the message list.

An unrestricted key with the `read` scope reads every message, as an administrator does on
the Outbox page. A key with a sender restriction reads only the mail of the senders it may
use: its user's messages (from any source) and those from its allowed From addresses.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from postroom.accounts.models import ApiKey
from postroom.core.errors import NotFoundError
from postroom.outbox.models import Attempt, Message, Recipient
from postroom.outbox.selectors import SHOWN_ATTEMPTS
from postroom.queue.keyset import keyset_page


def api_messages_visible(*, api_key: ApiKey) -> QuerySet[Message]:
    messages = Message.objects.all()
    if not api_key.is_sender_restricted:
        return messages
    allowed = Q(pk__in=[])
    if api_key.sender_user_id is not None:
        allowed |= Q(sender_user_id=api_key.sender_user_id)
    for address in api_key.allowed_from:
        allowed |= Q(envelope_from__iexact=address)
    return messages.filter(allowed)


def api_message_get(*, api_key: ApiKey, pk: int) -> Message:
    # Another sender's message is "not found" to a restricted key, not "forbidden": the
    # key learns nothing about mail it may not read.
    message = api_messages_visible(api_key=api_key).defer("raw", "bulk_data").filter(pk=pk).first()
    if message is None:
        raise NotFoundError(f"There is no message {pk} that this API key may read.")
    return message


@dataclass(frozen=True)
class MessageListFilters:
    status: str | None = None
    lane: str | None = None
    recipient: str | None = None
    sender: str | None = None
    created_after: dt.datetime | None = None
    created_before: dt.datetime | None = None


@dataclass(frozen=True)
class MessageListPage:
    messages: list[Message]
    recipient_counts: dict[int, int]
    next_before: int | None  # the id to continue below, None on the last page


def api_message_page(
    *, api_key: ApiKey, filters: MessageListFilters, before: int | None, limit: int
) -> MessageListPage:
    """Messages newest first, a keyset page by id (postroom.queue.keyset) below `before`."""
    messages = api_messages_visible(api_key=api_key).defer("raw", "bulk_data")
    if filters.status:
        messages = messages.filter(status=filters.status)
    if filters.lane:
        messages = messages.filter(lane=filters.lane)
    if filters.sender:
        messages = messages.filter(envelope_from__iexact=filters.sender)
    if filters.recipient:
        # EXISTS, not a join: a message with the address twice is listed once.
        messages = messages.filter(
            Exists(
                Recipient.objects.filter(message=OuterRef("pk"), address__iexact=filters.recipient)
            )
        )
    if filters.created_after:
        messages = messages.filter(created_at__gt=filters.created_after)
    if filters.created_before:
        messages = messages.filter(created_at__lt=filters.created_before)
    page = keyset_page(messages, size=limit, following=before)
    counts = api_message_recipient_counts(ids=[row.id for row in page.rows])
    return MessageListPage(messages=page.rows, recipient_counts=counts, next_before=page.following)


def api_message_recipient_counts(*, ids: list[int]) -> dict[int, int]:
    """How many recipients each of these messages has, by message id."""
    return dict(
        Recipient.objects.filter(message_id__in=ids)
        .order_by()
        .values_list("message_id")
        .annotate(count=Count("id"))
    )


@dataclass(frozen=True)
class MessageRecords:
    recipients: list[Recipient]
    attempts: list[Attempt]  # the newest SHOWN_ATTEMPTS, oldest first
    attempt_total: int


def api_message_records(*, message: Message) -> MessageRecords:
    recipients = list(Recipient.objects.filter(message=message).order_by("id"))
    attempts_qs = Attempt.objects.filter(message=message)
    attempt_total = attempts_qs.count()
    attempts = list(attempts_qs.order_by("-at", "-id")[:SHOWN_ATTEMPTS])[::-1]
    return MessageRecords(recipients=recipients, attempts=attempts, attempt_total=attempt_total)
