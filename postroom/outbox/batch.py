"""Many messages stored in one transaction: the API's batch, and its single sends together.

Each message is checked and built apart first (`message_prepare`, outside any transaction,
so SQLite's write lock is not held while messages are built), then all are stored at once:
one lookup of their idempotency keys and one INSERT per table. An idempotency key works per
message as in `message_enqueue`, also between messages of the same batch: the same key twice
for the same message stores it once, for different messages is a conflict of the second.

`message_enqueue_grouped` stores one message with those other threads of this process are
storing at the same moment (group commit): the API's single sends, 8 clients at a time, then
take one write transaction and one fsync per group instead of one each. Each message is
still answered only after its commit.

The group is whatever waits while the previous group commits: the threads of a process
take turns on WRITE_TURN to store, and the one whose turn comes stores all that waits. (On
SQLite every writer of every process also waits in line for the database's write lock,
postroom/core/sqlite.)
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence

from django.db import transaction

from postroom.outbox.enqueue import (
    IdempotencyConflictError,
    PreparedMessage,
    messages_insert,
)
from postroom.outbox.models import Message

# One group commit at a time among this process's API requests (see above).
WRITE_TURN = threading.Lock()


def message_enqueue_batch(
    prepared: Sequence[PreparedMessage],
) -> list[Message | IdempotencyConflictError]:
    """Store `prepared` in one transaction, in its turn (WRITE_TURN); return, in order, each
    one's Message, or the IdempotencyConflictError of one whose key was used for a different
    message.

    A key used before, by an earlier request or earlier in `prepared`, for the same message
    gives that message, marked `is_replay`, and stores nothing: as `message_enqueue` does.
    """
    with WRITE_TURN:
        return _stored(prepared)


def _stored(prepared: Sequence[PreparedMessage]) -> list[Message | IdempotencyConflictError]:
    with transaction.atomic():
        outcomes = _batch_replays(prepared)
        new = [item for item, outcome in zip(prepared, outcomes, strict=True) if outcome is None]
        inserted = iter(messages_insert(new))
        results: list[Message | IdempotencyConflictError] = []
        for outcome in outcomes:
            if isinstance(outcome, int):  # the same message earlier in this batch
                outcome = _replayed(results[outcome])
            results.append(next(inserted) if outcome is None else outcome)
        return results


def _replayed(
    earlier: Message | IdempotencyConflictError,
) -> Message | IdempotencyConflictError:
    if isinstance(earlier, IdempotencyConflictError):
        return earlier  # the same message, so the same conflict
    replay = copy.copy(earlier)  # its own instance: the earlier one is no replay
    replay.is_replay = True
    return replay


def _batch_replays(
    prepared: Sequence[PreparedMessage],
) -> list[Message | IdempotencyConflictError | int | None]:
    """What each key used before means: a replay of a stored message (Message), of one
    earlier in the batch (its index), a conflict, or None: a message to store."""
    keys = [key for item in prepared if (key := item.queueing.idempotency_key)]
    known = {message.idempotency_key: message for message in _keyed(keys)}
    first_index: dict[str, int] = {}
    outcomes: list[Message | IdempotencyConflictError | int | None] = []
    for index, item in enumerate(prepared):
        key = item.queueing.idempotency_key
        outcome: Message | IdempotencyConflictError | int | None = None
        if key and key in known:
            try:
                item.identity.check(known[key])
                outcome = known[key]
            except IdempotencyConflictError as error:
                outcome = error
        elif key and key in first_index:
            earlier = first_index[key]
            outcome = earlier
            if prepared[earlier].identity != item.identity:
                outcome = IdempotencyConflictError(
                    f"This idempotency key is given to a different message earlier in the "
                    f"batch (number {earlier + 1}); use a new key for a new message.",
                    field="idempotency_key",
                )
        elif key:
            first_index[key] = index
        outcomes.append(outcome)
    return outcomes


def _keyed(keys: list[str]) -> list[Message]:
    messages = list(Message.objects.filter(idempotency_key__in=keys)) if keys else []
    for message in messages:
        message.is_replay = True
    return messages


class _Waiting:
    """A message waiting for a group commit, and then its outcome."""

    __slots__ = ("prepared", "outcome", "is_done")

    def __init__(self, prepared: PreparedMessage) -> None:
        self.prepared = prepared
        self.outcome: Message | IdempotencyConflictError | Exception | None = None
        self.is_done = False


_waiting: list[_Waiting] = []
_waiting_lock = threading.Lock()


def message_enqueue_grouped(prepared: PreparedMessage) -> Message | IdempotencyConflictError:
    """Store `prepared` as `message_enqueue_batch` stores a message, in one transaction with
    the messages other threads of this process are storing at the same time.

    The thread whose turn it is (WRITE_TURN) stores everything waiting, its own message and
    others'; a thread whose turn comes after its message was stored just returns. No thread
    waits for others to arrive: a group is whatever came while the previous one committed.
    """
    waiting = _Waiting(prepared)
    with _waiting_lock:
        _waiting.append(waiting)
    with WRITE_TURN:
        if not waiting.is_done:
            with _waiting_lock:
                group = _waiting[:]
                _waiting.clear()
            _commit(group)
    outcome = waiting.outcome
    if isinstance(outcome, Exception) and not isinstance(outcome, IdempotencyConflictError):
        raise outcome
    assert outcome is not None
    return outcome


def _commit(group: list[_Waiting]) -> None:
    try:
        outcomes: Sequence[Message | IdempotencyConflictError | Exception] = _stored(
            [waiting.prepared for waiting in group]
        )
    except Exception as error:  # noqa: BLE001 - each request of the group raises it
        outcomes = [error] * len(group)
    for waiting, outcome in zip(group, outcomes, strict=True):
        waiting.outcome = outcome
        waiting.is_done = True
