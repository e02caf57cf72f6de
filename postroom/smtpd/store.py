"""Received messages into the outbox, many per transaction, each answered after the commit.

SQLite commits one transaction at a time and a commit costs a flush to disk, so one commit per
message would cap the listener at a few hundred messages a second. Here the messages that
arrive while a commit runs wait for the next one, which takes them all (GROUP_LIMIT at most):
each is checked and built apart (a bad one is refused alone), then all are written with one
INSERT per table (`messages_insert`), and every session gets its `250` only once the
transaction holding its message committed.

On SQLite the transaction holds the one write lock, which the other writers (the worker
recording deliveries, a person's email being queued) wait for in line with the store
(postroom/core/sqlite): so the messages are checked and built before the transaction, which
then only looks up their Message-IDs and inserts them, and holds the lock as briefly as it can.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from concurrent.futures import ThreadPoolExecutor

from django.db import close_old_connections, transaction

from postroom.core.errors import PostroomError
from postroom.outbox.enqueue import (
    PreparedMessage,
    message_prepare_raw,
    message_resubmitted,
    messages_insert,
)
from postroom.outbox.models import Lane, Message, Source
from postroom.smtpd.ingest import Received, with_received_line

logger = logging.getLogger(__name__)

GROUP_LIMIT = 100


class IngestStore:
    def __init__(self, executor: ThreadPoolExecutor, *, hostname: str) -> None:
        self._executor = executor
        self._hostname = hostname
        self._waiting: asyncio.Queue[tuple[Received, asyncio.Future[str]]] = asyncio.Queue()

    async def put(self, received: Received) -> str:
        """The reply for `received`: 250 once it is committed, or why not."""
        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        await self._waiting.put((received, answer))
        return await answer

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            group = [await self._waiting.get()]
            while len(group) < GROUP_LIMIT and not self._waiting.empty():
                group.append(self._waiting.get_nowait())
            try:
                replies = await loop.run_in_executor(
                    self._executor, self._store, [received for received, _ in group]
                )
            except Exception:
                logger.exception("The SMTP listener could not store %d messages", len(group))
                replies = ["451 4.3.0 Could not store the message; try again later"] * len(group)
            for (_, answer), reply in zip(group, replies, strict=True):
                if not answer.done():
                    answer.set_result(reply)

    def _store(self, group: list[Received]) -> list[str]:
        close_old_connections()
        try:
            replies, prepared = self._prepared(group)
            with transaction.atomic():
                self._insert(prepared, replies)
        finally:
            close_old_connections()
        return replies

    def _prepared(
        self, group: list[Received]
    ) -> tuple[list[str], list[tuple[int, str, PreparedMessage]]]:
        """Each of `group` checked and made ready to store, before the write lock is taken:
        the replies so far (a refusal, or "" for a message to store), and the messages to
        store with their places in `group` and their queue ids."""
        replies: list[str] = [""] * len(group)
        prepared: list[tuple[int, str, PreparedMessage]] = []
        for index, received in enumerate(group):
            queue_id = secrets.token_hex(6)
            try:
                item = message_prepare_raw(
                    envelope_from=received.envelope_from,
                    recipients=received.recipients,
                    raw=with_received_line(received, queue_id=queue_id, hostname=self._hostname),
                    source=Source.SMTP,
                    # Machines' mail waits behind people's: a person's email overtakes it.
                    lane=Lane.BULK,
                    source_detail=received.source_detail,
                )
            except PostroomError as error:
                replies[index] = _refused(error)
                continue
            assert isinstance(item, PreparedMessage)  # no idempotency keys here
            prepared.append((index, queue_id, item))
        return replies, prepared

    def _insert(self, prepared: list[tuple[int, str, PreparedMessage]], replies: list[str]) -> None:
        """Store `prepared` and fill in their replies. A Message-ID stored before (a system
        retrying a timed-out session) or twice in the group is stored once, and answered
        as the first."""
        resubmitted = message_resubmitted([item for _, _, item in prepared])
        new: list[tuple[int, str, PreparedMessage]] = []
        first_with: dict[str, int] = {}  # Message-ID -> its first place in the group
        again: dict[int, int] = {}  # a place -> the first with the same Message-ID
        for position, (index, queue_id, item) in enumerate(prepared):
            if (message := resubmitted.get(position)) is not None:
                replies[index] = _queued(queue_id, message)
            elif (first := first_with.get(item.stored.message_id)) is not None:
                again[index] = first
            else:
                first_with[item.stored.message_id] = index
                new.append((index, queue_id, item))
        stored = messages_insert([item for _, _, item in new])
        for (index, queue_id, _), outcome in zip(new, stored, strict=True):
            assert isinstance(outcome, Message)  # no idempotency keys here
            replies[index] = _queued(queue_id, outcome)
        for index, first in again.items():
            replies[index] = replies[first]


def _queued(queue_id: str, message: Message) -> str:
    return f"250 2.0.0 Ok: queued as {queue_id} (outbox #{message.pk})"


def _refused(error: PostroomError) -> str:
    return "554 5.6.0 " + " ".join(error.message.split())
