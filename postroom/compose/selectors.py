"""Read side of Contact Email: recipient suggestions, "Sent", what a compose queued, and
what From will say."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db.models import Count, Prefetch, QuerySet

from postroom.accounts.models import User
from postroom.contacts.fields import contact_email_key
from postroom.contacts.models import Contact
from postroom.contacts.selectors import ContactFilters, contact_list
from postroom.mail.message import OutgoingEmail
from postroom.outbox.models import Message, Recipient
from postroom.outbox.selectors import LISTED_RECIPIENTS, MESSAGES_PER_PAGE
from postroom.outbox.send_as import SenderChoice, send_as_apply, user_address
from postroom.queue.keyset import keyset_page

# A suggestion list longer than this is not read; typing one more letter narrows it.
SUGGESTIONS = 8
# A search word shorter than this matches half the address book.
MIN_SEARCH_CHARS = 2


def compose_contact_search(*, query: str, limit: int = SUGGESTIONS) -> list[Contact]:
    """Active contacts whose name, address or company contains every word of `query`."""
    query = " ".join(query.split())[:200]
    if len(query) < MIN_SEARCH_CHARS:
        return []
    return list(contact_list(filters=ContactFilters(search=query, is_active=True))[:limit])


def _listing(
    messages: QuerySet[Message], *, listed: int | None = LISTED_RECIPIENTS
) -> QuerySet[Message]:
    """Messages for a list: without their bytes, with the first `listed` recipients (None:
    all) and a count."""
    first_recipients = Recipient.objects.order_by("id")
    if listed is not None:
        first_recipients = first_recipients[:listed]
    return (
        messages.defer("raw", "fallback_raw", "bulk_data")
        .annotate(recipient_count=Count("recipients"))
        .prefetch_related(Prefetch("recipients", queryset=first_recipients, to_attr="listed"))
    )


def _with_more(messages: list[Message]) -> list[Message]:
    """Set `more_recipients`, the recipients past the listed ones ("+N" on the page)."""
    for message in messages:
        message.more_recipients = message.recipient_count - len(message.listed)  # type: ignore[attr-defined]
    return messages


@dataclass(frozen=True)
class SentPage:
    """One page of the user's sent mail, newest first, with keyset links (postroom.queue)."""

    messages: Sequence[Message]
    newer_than: int | None
    older_than: int | None


def sent_page(
    *,
    user: User,
    before: int | None = None,
    after: int | None = None,
    per_page: int = MESSAGES_PER_PAGE,
) -> SentPage:
    """The messages `user` sent (`sender_user`), whatever their source, newest first.

    Administrators too see only their own here: the Outbox shows everyone's.
    """
    messages = Message.objects.filter(sender_user=user)
    # Newest first: the older page (ids below `before`) follows, the newer one precedes.
    page = keyset_page(messages, size=per_page, following=before, preceding=after, prepare=_listing)
    return SentPage(
        messages=_with_more(page.rows), newer_than=page.preceding, older_than=page.following
    )


def sent_message_list(*, user: User, ids: Iterable[int]) -> list[Message]:
    """The messages among `ids` that `user` sent, oldest first (the compose confirmation:
    in the order of the To recipients), each with all its recipients (at most 300, the
    compose limits)."""
    messages = Message.objects.filter(pk__in=list(ids), sender_user=user)
    return _with_more(list(_listing(messages, listed=None).order_by("id")))


def contacts_by_address(*, addresses: Iterable[str]) -> dict[str, Contact]:
    """The contacts these addresses belong to, keyed by the lower-case address."""
    keys = {contact_email_key(address) for address in addresses}
    return {contact.email_key: contact for contact in Contact.objects.filter(email_key__in=keys)}


def compose_sender_get(*, user: User) -> SenderChoice:
    """What From will say for `user`, as the company's send-as policy applies it: shown on
    the compose page before anything is written. Raises ValidationError without an address."""
    return send_as_apply(email=OutgoingEmail(from_=user_address(user)), user=user)
