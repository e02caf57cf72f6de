"""Idempotency keys: what tells one message from another when a key comes back.

A key used again for the same message gives that message (a replay); for another message it
is a conflict (409). The request itself is not stored, so "the same message" is judged by
what is: the sender, the subject and the recipients.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from postroom.core.errors import PostroomError
from postroom.mail.addresses import NormalizedAddress
from postroom.mail.message import OutgoingEmail
from postroom.outbox.models import Message, Recipient, RecipientKind


class IdempotencyConflictError(PostroomError):
    """An idempotency key already used for a different message (409, as Stripe answers)."""

    code = "conflict"
    http_status = 409


@dataclass(frozen=True)
class Identity:
    """What tells one message from another when an idempotency key comes back: the sender,
    the subject and the recipients (the request itself is not stored)."""

    subject: str
    addresses: frozenset[str]  # lower case
    sender_user_id: int | None  # mail as a user: the policy may send it via the company
    envelope_from: str  # lower case; compared when there is no such user

    @classmethod
    def of_email(cls, email: OutgoingEmail, *, sender_user: Any) -> Identity:
        return cls(
            subject=email.subject,
            addresses=frozenset(
                address.addr_spec.lower() for address in (*email.to, *email.cc, *email.bcc)
            ),
            sender_user_id=sender_user.pk if sender_user is not None else None,
            envelope_from=email.from_.addr_spec.lower(),
        )

    @classmethod
    def of_envelope(
        cls,
        subject: str,
        *,
        envelope_from: str,
        addresses: Sequence[tuple[NormalizedAddress, RecipientKind]],
    ) -> Identity:
        return cls(
            subject=subject,
            addresses=frozenset(address.addr_spec.lower() for address, _ in addresses),
            sender_user_id=None,
            envelope_from=envelope_from.lower(),
        )

    def check(self, message: Message) -> None:
        recorded = {
            address.lower()
            for address in Recipient.objects.filter(message=message).values_list(
                "address", flat=True
            )
        }
        if self.sender_user_id is not None:
            is_same_sender = message.sender_user_id == self.sender_user_id
        else:
            is_same_sender = message.envelope_from.lower() == self.envelope_from
        if not is_same_sender or message.subject != self.subject or recorded != self.addresses:
            raise IdempotencyConflictError(
                f"This idempotency key was already used for a different message "
                f"({message.pk}, {message.message_id}); use a new key for a new message.",
                field="idempotency_key",
            )
