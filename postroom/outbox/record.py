"""Record what the SMTP server answered, per recipient, in batches.

At a few thousand messages a second the ORM's per-row overhead would be the bottleneck, so
outcomes are written with plain `executemany`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from postroom.outbox import observers, suppression
from postroom.outbox.claim import ClaimedMessage, ClaimedRecipient
from postroom.outbox.models import (
    ACTIVE_MESSAGE_STATUSES,
    Classification,
    EventKind,
    Message,
    MessageStatus,
    Recipient,
    RecipientStatus,
    SendAs,
    ServerPause,
)
from postroom.outbox.retry import RetryPolicy, retry_policy
from postroom.outbox.states import RecipientTransition, message_status_for, recipient_after


@dataclass(frozen=True)
class RecipientResult:
    recipient: ClaimedRecipient
    classification: Classification
    code: int | None = None
    enhanced_code: str = ""
    text: str = ""
    stage: str = ""  # where this recipient's fate was decided (RCPT for a refused address)
    is_suppressed: bool = False  # bulk mail to a suppressed address: not sent at all


@dataclass(frozen=True)
class MessageResult:
    message: ClaimedMessage
    server: str
    stage: str
    recipients: Sequence[RecipientResult]
    at: dt.datetime = field(default_factory=timezone.now)
    # The relay refused the user's address and the "via the company" version was sent:
    # `refusals` are that first attempt's outcomes, recorded before the final ones.
    switched_to_fallback: bool = False
    refusals: Sequence[RecipientResult] = ()
    is_captured: bool = False  # sent to the sandbox capture, not to a real server


# Reply texts are stored for people to read; a hostile server's 1 MB line is not kept whole.
_MAX_TEXT = 2000

_UPDATE_MESSAGE = (
    "UPDATE outbox_message SET status = %s, next_attempt_at = %s, finished_at = %s, "
    "last_error = %s, claim_token = '', claimed_by = '' WHERE id = %s AND claim_token = %s"
)
_UPDATE_RECIPIENT = (
    "UPDATE outbox_recipient SET status = %s, attempt_count = attempt_count + 1, "
    "uncertain_count = %s, last_code = %s, last_enhanced_code = %s, last_text = %s, "
    "sent_at = %s, updated_at = %s WHERE id = %s"
)
_SWITCH_TO_FALLBACK = (
    "UPDATE outbox_message SET raw = fallback_raw, envelope_from = fallback_envelope_from, "
    "from_header = fallback_from_header, send_as = %s, fallback_raw = NULL WHERE id = %s"
)
_INSERT_EVENT = (
    "INSERT INTO outbox_event (kind, created_at, message_id, recipient, data) "
    "VALUES (%s, %s, %s, %s, %s)"
)
_INSERT_ATTEMPT = (
    "INSERT INTO outbox_attempt (message_id, recipient_id, at, server, worker, stage, code, "
    "enhanced_code, text, classification) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def suppressed_results(
    message: ClaimedMessage, skipped: Mapping[int, str]
) -> list[RecipientResult]:
    """The outcomes of the recipients the worker did not send to because their address is
    suppressed (`skipped`: recipient id -> the list's reason): final, at stage "queue"."""
    return [
        RecipientResult(
            recipient=recipient,
            classification=Classification.PERMANENT,
            text=suppression.suppressed_text(recipient.address, skipped[recipient.id]),
            stage="queue",
            is_suppressed=True,
        )
        for recipient in message.recipients
        if recipient.id in skipped
    ]


def delivery_record(
    *, results: Sequence[MessageResult], worker: str, now: dt.datetime | None = None
) -> None:
    """Record a batch of attempts: per-recipient statuses, attempts, message summaries."""
    if not results:
        return
    rows = _Rows(now=now or timezone.now(), worker=worker, policy=retry_policy())
    for result in results:
        rows.add(result)
    rows.write()


class _Rows:
    """The parameter rows of one recorded batch, one list per statement."""

    def __init__(self, *, now: dt.datetime, worker: str, policy: RetryPolicy) -> None:
        self.now = now
        self.worker = worker
        self.policy = policy
        self.adapt = connection.ops.adapt_datetimefield_value
        # Adapted once: converting a datetime for the driver costs more than the rest of a row.
        self.now_db = self.adapt(now)
        self.messages: list[tuple[Any, ...]] = []
        self.recipients: list[tuple[Any, ...]] = []
        self.attempts: list[tuple[Any, ...]] = []
        self.events: list[tuple[Any, ...]] = []
        self.switched: list[tuple[Any, ...]] = []
        # Messages held back because their server paused, by server (see `write`).
        self.held: dict[str, list[int]] = {}
        self.hard_bounces: list[suppression.HardBounce] = []
        # What became of bulk mail, told to its observers (campaigns) in the transaction.
        self.bulk: list[observers.BulkOutcome] = []

    def add(self, result: MessageResult) -> None:
        claimed = result.message
        at_db = self.adapt(result.at)
        if result.switched_to_fallback:
            self.switched.append((SendAs.VIA_COMPANY, claimed.id))
        for refusal in result.refusals:
            self._attempt(result, refusal, at_db, stage="mail", text=refusal.text[:_MAX_TEXT])
        statuses: list[str] = []
        next_times: list[dt.datetime] = []
        errors: list[str] = []
        for outcome in result.recipients:
            transition = recipient_after(
                outcome.classification,
                uncertain_count=outcome.recipient.uncertain_count,
                failed_attempts=claimed.attempt_count,
                expires_at=claimed.expires_at,
                now=self.now,
                policy=self.policy,
                is_captured=result.is_captured,
                is_suppressed=outcome.is_suppressed,
            )
            statuses.append(transition.status)
            if transition.next_attempt_at is not None:
                next_times.append(transition.next_attempt_at)
            text = _recorded_text(outcome, transition)
            if outcome.classification != Classification.SUCCESS:
                errors.append(f"{outcome.recipient.address}: {text}")
            if outcome.classification == Classification.CONFIG:
                self.held.setdefault(result.server, []).append(claimed.id)
            if suppression.is_hard_bounce(
                classification=outcome.classification,
                stage=outcome.stage,
                enhanced_code=outcome.enhanced_code,
            ):
                self.hard_bounces.append(_hard_bounce(claimed, outcome))
            self._recipient(outcome, transition, text)
            if claimed.bulk_template_id is not None:
                self.bulk.append(
                    observers.BulkOutcome(
                        claimed.bulk_template_id,
                        claimed.id,
                        outcome.recipient.address,
                        transition.status,
                    )
                )
            self.events.append(self._event(claimed, outcome, transition, text))
            self._attempt(result, outcome, at_db, stage=outcome.stage or result.stage, text=text)
        self._message(claimed, statuses, next_times, errors)

    def _attempt(
        self, result: MessageResult, outcome: RecipientResult, at_db: Any, *, stage: str, text: str
    ) -> None:
        self.attempts.append(
            (
                result.message.id,
                outcome.recipient.id,
                at_db,
                result.server,
                self.worker,
                stage,
                outcome.code,
                outcome.enhanced_code,
                text,
                outcome.classification,
            )
        )

    def _recipient(
        self, outcome: RecipientResult, transition: RecipientTransition, text: str
    ) -> None:
        is_sent = transition.status == RecipientStatus.SENT
        self.recipients.append(
            (
                transition.status,
                transition.uncertain_count,
                outcome.code,
                outcome.enhanced_code,
                text,
                self.now_db if is_sent else None,
                self.now_db,
                outcome.recipient.id,
            )
        )

    def _event(
        self,
        claimed: ClaimedMessage,
        outcome: RecipientResult,
        transition: RecipientTransition,
        text: str,
    ) -> tuple[Any, ...]:
        retry_at = transition.next_attempt_at
        data = {
            "id": claimed.id,
            "message_id": claimed.message_id,
            "recipient": outcome.recipient.address,
            "status": transition.status,
            "classification": outcome.classification,
            "code": outcome.code,
            "enhanced_code": outcome.enhanced_code,
            "text": text,
            "attempt": claimed.attempt_count,
            "next_attempt_at": retry_at.isoformat() if retry_at else None,
        }
        kind = _event_kind(outcome.classification, transition.status)
        return (kind, self.now_db, claimed.id, outcome.recipient.address, json.dumps(data))

    def _message(
        self,
        claimed: ClaimedMessage,
        statuses: list[str],
        next_times: list[dt.datetime],
        errors: list[str],
    ) -> None:
        status = _message_status_after(claimed, statuses)
        finished = next_times == [] and status not in ACTIVE_MESSAGE_STATUSES
        if next_times:
            next_attempt_at: dt.datetime | None = min(next_times)
        else:
            next_attempt_at = None if finished else self.now
        self.messages.append(
            (
                status,
                self.adapt(next_attempt_at) if next_attempt_at else None,
                self.now_db if finished else None,
                "\n".join(errors)[:_MAX_TEXT],
                claimed.id,
                claimed.claim_token,
            )
        )

    def write(self) -> None:
        """Run the statements in one transaction: the batch is recorded whole or not at all."""
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(_UPDATE_RECIPIENT, self.recipients)
            cursor.executemany(_INSERT_ATTEMPT, self.attempts)
            cursor.executemany(_UPDATE_MESSAGE, self.messages)
            if self.switched:
                cursor.executemany(_SWITCH_TO_FALLBACK, self.switched)
            cursor.executemany(_INSERT_EVENT, self.events)
            if self.hard_bounces:
                suppression.hard_bounces_record(self.hard_bounces, now=self.now)
            if self.bulk:
                observers.bulk_outcomes_tell(self.bulk)
            self._release_if_resumed()

    def _release_if_resumed(self) -> None:
        """A server paused while these were sent may have been resumed before this commit;
        its held messages then go now, as `server_resume` sends the others (in this
        transaction: on SQLite the two are serialised, so neither misses the other)."""
        for server, ids in self.held.items():
            if not ServerPause.objects.filter(server=server).exists():
                Message.objects.filter(
                    id__in=ids, status=MessageStatus.QUEUED, next_attempt_at__gt=self.now
                ).update(next_attempt_at=self.now)


def _recorded_text(outcome: RecipientResult, transition: RecipientTransition) -> str:
    """The server's reply as kept (clipped), with what Postroom did about it."""
    text = outcome.text[:_MAX_TEXT]
    if transition.note:
        return f"{text}\n{transition.note}" if text else transition.note
    return text


def _hard_bounce(claimed: ClaimedMessage, outcome: RecipientResult) -> suppression.HardBounce:
    return suppression.HardBounce(
        address=outcome.recipient.address,
        message_pk=claimed.id,
        message_id=claimed.message_id,
        code=outcome.code,
        enhanced_code=outcome.enhanced_code,
        text=outcome.text[:_MAX_TEXT],
    )


def _event_kind(classification: Classification, status: RecipientStatus) -> EventKind:
    if classification == Classification.UNCERTAIN:
        return EventKind.MESSAGE_UNCERTAIN
    return {
        RecipientStatus.SENT: EventKind.MESSAGE_SENT,
        RecipientStatus.CAPTURED: EventKind.MESSAGE_CAPTURED,
        RecipientStatus.FAILED: EventKind.MESSAGE_FAILED,
        RecipientStatus.SUPPRESSED: EventKind.MESSAGE_SUPPRESSED,
    }.get(status, EventKind.MESSAGE_DEFERRED)


def _message_status_after(claimed: ClaimedMessage, new_statuses: list[str]) -> MessageStatus:
    """The message status once this attempt's recipients have their new statuses.

    Recipients finished in earlier attempts (sent, failed) still count, so those are read;
    the common case, every recipient handled in this attempt, needs no query.
    """
    if len(new_statuses) == len(claimed.recipients) and _all_recipients_were_pending(claimed):
        return message_status_for(new_statuses)
    earlier = Recipient.objects.filter(message_id=claimed.id).exclude(
        id__in=[recipient.id for recipient in claimed.recipients]
    )
    return message_status_for([*new_statuses, *earlier.values_list("status", flat=True)])


def _all_recipients_were_pending(claimed: ClaimedMessage) -> bool:
    # A message claimed for its first time has every recipient pending.
    return claimed.attempt_count == 1
