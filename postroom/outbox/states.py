"""What an attempt's outcome does to a recipient and to its message: pure functions.

The worker records outcomes in batches; these rules decide the new statuses, so they are
tested without a database or a socket.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from postroom.outbox.models import Classification, MessageStatus, RecipientStatus
from postroom.outbox.retry import RetryPolicy


@dataclass(frozen=True)
class RecipientTransition:
    status: RecipientStatus
    next_attempt_at: dt.datetime | None  # None: nothing more to do for this recipient
    uncertain_count: int
    note: str = ""


def recipient_after(
    classification: Classification,
    *,
    uncertain_count: int,
    failed_attempts: int,
    expires_at: dt.datetime,
    now: dt.datetime,
    policy: RetryPolicy,
    is_captured: bool = False,
    is_suppressed: bool = False,
) -> RecipientTransition:
    """`is_captured`: the attempt went to the sandbox capture, not to a real server.
    `is_suppressed`: bulk mail to an address on the suppression list, not sent at all."""
    if is_suppressed:
        return RecipientTransition(RecipientStatus.SUPPRESSED, None, uncertain_count)
    if classification == Classification.SUCCESS:
        status = RecipientStatus.CAPTURED if is_captured else RecipientStatus.SENT
        return RecipientTransition(status, None, uncertain_count)
    if classification == Classification.PERMANENT:
        return RecipientTransition(RecipientStatus.FAILED, None, uncertain_count)
    if classification == Classification.UNCERTAIN:
        if uncertain_count == 0:
            return RecipientTransition(
                RecipientStatus.DEFERRED,
                now + policy.uncertain_delay,
                1,
                "The connection was lost after the message was sent and before the server "
                "replied: the server may have it. Retrying once with the same Message-ID.",
            )
        return RecipientTransition(
            RecipientStatus.UNCERTAIN,
            None,
            uncertain_count + 1,
            "The connection was lost again after the message was sent: the server may have "
            "it. Not retrying, to avoid duplicates; check with the recipient.",
        )
    if classification == Classification.CONFIG:
        # Our settings are wrong, not the recipient: keep it queued, do not count it against
        # the recipient, and let the paused server hold the queue until an admin resumes it.
        return RecipientTransition(
            RecipientStatus.QUEUED, now + policy.first_delay, uncertain_count
        )
    retry_at = policy.next_attempt_at(
        failed_attempts=failed_attempts, expires_at=expires_at, now=now
    )
    if retry_at is None:
        return RecipientTransition(
            RecipientStatus.FAILED,
            None,
            uncertain_count,
            "Gave up: the server kept answering with temporary failures until the message expired.",
        )
    return RecipientTransition(RecipientStatus.DEFERRED, retry_at, uncertain_count)


def message_status_for(statuses: Iterable[str]) -> MessageStatus:
    """Summarise the recipients' statuses as the message's status."""
    seen = set(statuses)
    if RecipientStatus.SENDING in seen:
        return MessageStatus.SENDING
    if RecipientStatus.DEFERRED in seen:
        return MessageStatus.DEFERRED
    if RecipientStatus.QUEUED in seen:
        return MessageStatus.QUEUED
    # Nobody got it and nobody will: cancelled by a person, or suppressed by the list.
    if not seen or seen <= {RecipientStatus.CANCELLED, RecipientStatus.SUPPRESSED}:
        return MessageStatus.CANCELLED
    if RecipientStatus.UNCERTAIN in seen:
        return MessageStatus.UNCERTAIN
    if seen == {RecipientStatus.SENT}:
        return MessageStatus.SENT
    if seen == {RecipientStatus.CAPTURED}:
        return MessageStatus.CAPTURED
    if RecipientStatus.SENT in seen or RecipientStatus.CAPTURED in seen:
        return MessageStatus.PARTIAL
    return MessageStatus.FAILED
