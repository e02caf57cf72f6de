"""The asyncio worker: claim due messages, send them over pooled connections, record outcomes.

Shape of one worker process:
- a *claimer* takes batches of due messages (transactional lane first) into a bounded queue;
- `concurrency` *senders* each take a message, deliver it on a pooled connection, hand the
  outcome to the recorder and wait until it is committed before sending the next one;
- the *recorder* commits all outcomes that arrived meanwhile in one transaction (group
  commit) on the one database thread.
Waiting for the commit bounds what a `kill -9` can duplicate: each connection has at most one
message whose acceptance by the server is not yet on disk, and its retry carries the same
Message-ID.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from postroom.dkim.signing import DkimSigner, dkim_signer_load
from postroom.mail.bulk import CompiledTemplate
from postroom.mail.classify import PauseScope
from postroom.mail.outcome import DeliveryOutcome, Envelope
from postroom.mail.pool import ConnectionPool
from postroom.outbox import bulk, claim, holds, pauses, record, suppression, wake
from postroom.outbox.claim import ClaimedMessage
from postroom.outbox.models import Classification
from postroom.outbox.own_mailboxes import OwnMailboxPools
from postroom.outbox.record import MessageResult, RecipientResult
from postroom.outbox.routing import DeliveryRoute
from postroom.queue.dbthread import DatabaseThread
from postroom.queue.wake import seconds_until

logger = logging.getLogger(__name__)

# Wake at least this often even with nothing due, to notice expired leases and settings
# changes; enqueues and resumes wake the worker at once (see wake.py).
IDLE_WAKE_SECONDS = 5.0
STOP_PRIORITY = -1  # before LANE_PRIORITY's 0 (transactional) and 1 (bulk)
# How often a busy worker reads the company's SMTP settings and the pause switch again.
SETTINGS_REFRESH_SECONDS = 5.0
# The recorder waits this long for more outcomes before committing, to group commits.
GROUP_COMMIT_WINDOW_SECONDS = 0.002


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class WorkerOptions:
    name: str
    batch_size: int = 200
    # Sender tasks: as many as the largest connection cap a company may set (validation.
    # MAX_CONNECTIONS), so the company's "maximum connections" alone decides how many
    # sessions are open. An idle sender is a parked coroutine.
    concurrency: int = 50


class Worker:
    def __init__(
        self,
        options: WorkerOptions,
        *,
        route: Callable[[], DeliveryRoute],
        own_mailbox_route: Callable[[str], DeliveryRoute | None],
    ) -> None:
        self.options = options
        self._route_source = route
        self._db = DatabaseThread("postroom-db")
        self._own_mailboxes = OwnMailboxPools(
            own_mailbox_route, self._db, refresh_seconds=SETTINGS_REFRESH_SECONDS
        )
        # Claimed messages, transactional first: a person's email claimed while a campaign's
        # batch waits here still goes next. Ordered by (priority, claim order).
        self._queue: asyncio.PriorityQueue[tuple[int, int, ClaimedMessage | None]] = (
            asyncio.PriorityQueue()
        )
        self._claim_order = itertools.count()
        self._room = asyncio.Event()  # set when the queue runs low: time to claim more
        self._pending: list[tuple[MessageResult, asyncio.Future[None]]] = []
        self._record_signal = asyncio.Event()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._pool: ConnectionPool | None = None
        self._route: DeliveryRoute | None = None
        # Set when the server refused us for a reason of ours (password, sender, TLS): the
        # messages already claimed go back untried instead of each meeting the same refusal.
        self._is_paused = False
        # A connection's worth of work: delivering one message and committing its outcome.
        # Holding it across the commit bounds what a crash can duplicate to one message per
        # connection.
        self._slots = asyncio.Semaphore(1)
        self._templates: dict[int, CompiledTemplate] = {}
        self._unstarted: list[ClaimedMessage] = []  # taken by a sender when the stop came
        # Claimed bulk messages with suppressed recipients: message id -> {recipient id:
        # the reason}. Looked up once per claimed batch (see `_suppressed_note`).
        self._suppressed: dict[int, dict[int, str]] = {}
        # Bulk templates on hold (a paused or cancelled campaign, postroom.outbox.holds):
        # their claimed messages go back untried. Read with the pause switch.
        self._held: frozenset[int] = frozenset()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._signer = DkimSigner()  # the DKIM keys that sign now, reread with the settings

    # -- lifecycle ------------------------------------------------------------------------

    def wake(self) -> None:
        """Thread-safe poke: there may be new work."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def stop(self) -> None:
        """Thread-safe: finish the transactions in flight, release the rest, return."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        wake.OUTBOX.local.add(self.wake)
        try:
            senders = [
                asyncio.create_task(self._sender(), name=f"sender-{index}")
                for index in range(self.options.concurrency)
            ]
            for task in senders:
                task.add_done_callback(_log_if_crashed)
            recorder = asyncio.create_task(self._recorder(), name="recorder")
            await self._claimer()
            # Stopping: senders finish the message they are sending (its outcome is recorded);
            # what they had not started, and the queue's rest, is released. A stop sentinel
            # sorts before every message, so each sender takes one next.
            for _ in senders:
                self._queue.put_nowait((STOP_PRIORITY, next(self._claim_order), None))
            await asyncio.gather(*senders, return_exceptions=True)
            await self._release_queued()
            self._record_signal.set()
            while self._pending:
                await asyncio.sleep(0.01)
            recorder.cancel()
            await asyncio.gather(recorder, return_exceptions=True)
        finally:
            wake.OUTBOX.local.remove(self.wake)
            if self._pool is not None:
                await self._pool.close()
            await self._own_mailboxes.close()
            await self._db.close()

    # -- claimer --------------------------------------------------------------------------

    async def _claimer(self) -> None:
        is_woken = True
        route_read_at = -math.inf
        while not self._stopping.is_set():
            # A poke that came while claiming counts too: a hold must be seen within a second.
            is_woken = is_woken or self._wake.is_set()
            self._wake.clear()
            self._room.clear()
            # The company's settings and the pause switch are read again after a poke (a pause
            # or resume pokes) or every few seconds, not for every batch.
            now = time.monotonic()
            if is_woken or now - route_read_at >= SETTINGS_REFRESH_SECONDS:
                route = await self._db.run(self._route_source)
                await self._use_route(route)
                self._is_paused = await self._db.run(pauses.server_is_paused, server=route.server)
                self._held = await self._db.run(holds.bulk_held_template_ids)
                self._signer = await self._db.run(dkim_signer_load)
                route_read_at = now
            if self._is_paused:
                is_woken = await self._sleep(IDLE_WAKE_SECONDS)
                route_read_at = -math.inf
                continue
            # Keep about one batch ahead of the senders. With the queue full, a poke may
            # still mean a person's email: claim transactional mail only.
            has_room = self._queue.qsize() <= self.options.batch_size
            batch: list[ClaimedMessage] = []
            if has_room or is_woken:
                batch = await self._db.run(
                    claim.message_claim_batch,
                    worker=self.options.name,
                    limit=self.options.batch_size,
                    transactional_only=not has_room,
                )
                await self._suppressed_note(batch)
                for message in batch:
                    self._queue.put_nowait((message.priority, next(self._claim_order), message))
            if has_room and batch:
                is_woken = False
                continue
            if has_room:
                next_due = await self._db.run(claim.message_next_due_at)
                timeout = seconds_until(next_due, cap=IDLE_WAKE_SECONDS)
            else:
                timeout = IDLE_WAKE_SECONDS
            is_woken = await self._sleep(timeout, room=not has_room)

    async def _sleep(self, seconds: float, *, room: bool = False) -> bool:
        """Wait for a poke, a stop, `seconds`, or (with `room`) the queue running low.

        Returns True when poked: there may be new mail to claim.
        """
        events = [self._wake, self._stopping, *([self._room] if room else [])]
        waiters = [asyncio.ensure_future(event.wait()) for event in events]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        return self._wake.is_set()

    async def _use_route(self, route: DeliveryRoute) -> None:
        if route == self._route:
            return
        if self._pool is not None:
            await self._pool.close()
        self._route = route
        self._pool = ConnectionPool(route.config, size=route.connections, limits=route.limits)
        self._slots = asyncio.Semaphore(route.connections)

    async def _suppressed_note(self, batch: list[ClaimedMessage]) -> None:
        """Note a claimed batch's suppressed bulk recipients: one query per batch, at most a
        batch ahead of sending, so mail that waited meets the list as it is when it leaves."""
        suppressible = [m for m in batch if suppression.is_suppressible(m)]
        if suppressible:
            found = await self._db.run(suppression.suppressed_recipients, messages=suppressible)
            self._suppressed.update(found)

    async def _release_queued(self) -> None:
        self._suppressed.clear()
        leftovers, self._unstarted = self._unstarted, []
        while not self._queue.empty():
            message = self._queue.get_nowait()[2]
            if message is not None:
                leftovers.append(message)
        if leftovers:
            await self._db.run(claim.message_release, messages=leftovers)

    # -- senders --------------------------------------------------------------------------

    async def _sender(self) -> None:
        while (message := await self._next_message()) is not None:
            async with self._slots:
                if self._stopping.is_set():
                    self._unstarted.append(message)
                    return
                if message.bulk_template_id in self._held:
                    self._suppressed.pop(message.id, None)
                    await self._db.run(holds.message_release_held, messages=[message])
                    continue
                result = await self._deliver(message)
                done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._pending.append((result, done))
                self._record_signal.set()
                await done

    async def _next_message(self) -> ClaimedMessage | None:
        """The next claimed message, or None once the worker is stopping."""
        _, _, message = await self._queue.get()
        if message is not None and self._queue.qsize() <= self.options.batch_size:
            self._room.set()
        return message

    async def _deliver(self, message: ClaimedMessage) -> MessageResult:
        skipped = self._suppressed.pop(message.id, None)
        if skipped:
            return await self._deliver_unsuppressed(message, skipped)
        return await self._deliver_all(message)

    async def _deliver_unsuppressed(
        self, message: ClaimedMessage, skipped: dict[int, str]
    ) -> MessageResult:
        """Deliver to the recipients not suppressed (if any); the others are recorded as
        suppressed, with the list's reason, and never reach the server."""
        assert self._route is not None
        suppressed = record.suppressed_results(message, skipped)
        kept = tuple(r for r in message.recipients if r.id not in skipped)
        if not kept:
            return MessageResult(
                message=message, server=self._route.server, stage="queue", recipients=suppressed
            )
        result = await self._deliver_all(dataclasses.replace(message, recipients=kept))
        return dataclasses.replace(
            result, message=message, recipients=[*result.recipients, *suppressed]
        )

    async def _deliver_all(self, message: ClaimedMessage) -> MessageResult:
        route, pool = self._route, self._pool
        assert route is not None and pool is not None
        is_paused = self._is_paused
        own = await self._own_mailboxes.get(message.route_owner) if message.route_owner else None
        if own is not None and not own[0].is_sandbox:
            route, pool = own
            is_paused = await self._db.run(pauses.server_is_paused, server=route.server)
        if message.expires_at <= timezone.now():
            return _same_for_all(
                message,
                route.server,
                "queue",
                Classification.PERMANENT,
                text="Expired: the message could not be delivered before its expiry time.",
            )
        if is_paused:
            return _same_for_all(
                message,
                route.server,
                "connect",
                Classification.CONFIG,
                text="Not tried: sending to this server is paused (see the Outbox page).",
            )
        try:
            data = await self._message_bytes(message)
        except Exception as error:  # a template that no longer renders cannot be sent
            logger.exception("Rendering %s failed", message.message_id)
            return _same_for_all(
                message,
                route.server,
                "queue",
                Classification.PERMANENT,
                text=f"The message could not be rendered: {error}",
            )
        try:
            return await self._send(message, data, route, pool)
        except Exception as error:  # a transport bug must defer the message, not lose it
            logger.exception("Delivery of %s failed unexpectedly", message.message_id)
            return _same_for_all(
                message, route.server, "connect", Classification.TEMPORARY, text=str(error)
            )

    async def _send(
        self, message: ClaimedMessage, data: bytes, route: DeliveryRoute, pool: ConnectionPool
    ) -> MessageResult:
        envelope = Envelope(
            sender=route.envelope_sender(
                message_pk=message.id, envelope_from=message.envelope_from
            ),
            recipients=[recipient.address for recipient in message.recipients],
            data=self._signer.sign(data),  # DKIM over the exact bytes sent
            needs_smtputf8=message.needs_smtputf8,
        )
        outcome = await pool.deliver(envelope)
        refusals: list[RecipientResult] = []
        if outcome.pause_scope is PauseScope.SENDER and message.fallback_raw is not None:
            refusals = _results(
                message,
                outcome,
                note=(
                    f"The server refused to send as {message.envelope_from}; sent via the company "
                    "instead, with Reply-To the user (send-as policy: automatic)."
                ),
            )
            outcome = await self._send_via_company(message, outcome, route)
        if outcome.should_pause:
            if route is self._route:  # a user's own mailbox pauses alone
                self._is_paused = True
            code = next((item.code for item in outcome.recipients if item.code), None)
            await self._db.run(
                pauses.server_pause, server=route.server, code=code, reason=outcome.pause_reason
            )
        return MessageResult(
            message=message,
            server=route.server,
            stage=outcome.stage,
            recipients=_results(message, outcome),
            switched_to_fallback=bool(refusals),
            refusals=refusals,
            is_captured=route.is_sandbox,
        )

    async def _send_via_company(
        self, message: ClaimedMessage, refused: DeliveryOutcome, route: DeliveryRoute
    ) -> DeliveryOutcome:
        """Send-as policy "auto": the relay will not let us send as the user. Send the "via
        the company" version now, and remember the refusal for the next mail."""
        assert self._pool is not None and message.fallback_raw is not None
        first = refused.recipients[0]
        await self._db.run(
            pauses.sender_refusal_record,
            address=message.envelope_from,
            server=route.server,
            code=first.code,
            text=first.text,
        )
        return await self._pool.deliver(
            Envelope(
                sender=route.envelope_sender(
                    message_pk=message.id, envelope_from=message.fallback_envelope_from
                ),
                recipients=[recipient.address for recipient in message.recipients],
                data=self._signer.sign(message.fallback_raw),
                needs_smtputf8=message.needs_smtputf8,
            )
        )

    async def _message_bytes(self, message: ClaimedMessage) -> bytes:
        if message.raw is not None:
            return message.raw
        assert message.bulk_template_id is not None and message.bulk_data is not None
        compiled = self._templates.get(message.bulk_template_id)
        if compiled is None:
            compiled = await self._db.run(bulk.bulk_template_compiled, message.bulk_template_id)
            self._templates[message.bulk_template_id] = compiled
        return bulk.bulk_render(
            compiled,
            message_id=message.message_id,
            date=message.created_at,
            data=message.bulk_data,
        )

    # -- recorder -------------------------------------------------------------------------

    async def _recorder(self) -> None:
        while True:
            await self._record_signal.wait()
            await asyncio.sleep(GROUP_COMMIT_WINDOW_SECONDS)
            self._record_signal.clear()
            batch, self._pending = self._pending, []
            if not batch:
                continue
            try:
                await self._db.run(
                    record.delivery_record,
                    results=[result for result, _ in batch],
                    worker=self.options.name,
                )
            except Exception:
                # Keep the outcomes and try again: they are the only record of what the
                # server said. The leases keep the messages ours meanwhile.
                logger.exception("Recording %d outcomes failed; retrying", len(batch))
                self._pending[:0] = batch
                self._record_signal.set()
                await asyncio.sleep(1)
                continue
            for _, done in batch:
                if not done.done():
                    done.set_result(None)


def _log_if_crashed(task: asyncio.Task[Any]) -> None:
    # A sender that dies silently leaves its messages "sending" until the lease runs out.
    if not task.cancelled() and (error := task.exception()) is not None:
        logger.error("Worker task %s crashed", task.get_name(), exc_info=error)


def _results(
    message: ClaimedMessage, outcome: DeliveryOutcome, *, note: str = ""
) -> list[RecipientResult]:
    return [
        RecipientResult(
            recipient=recipient,
            classification=Classification(item.classification.value),
            code=item.code,
            enhanced_code=item.enhanced,
            text=f"{item.text}\n{note}" if note else item.text,
            stage=item.stage,
        )
        for recipient, item in zip(message.recipients, outcome.recipients, strict=True)
    ]


def _same_for_all(
    message: ClaimedMessage, server: str, stage: str, classification: Classification, *, text: str
) -> MessageResult:
    return MessageResult(
        message=message,
        server=server,
        stage=stage,
        recipients=[
            RecipientResult(recipient=recipient, classification=classification, text=text)
            for recipient in message.recipients
        ],
    )


async def run_worker(options: WorkerOptions, *, stop: asyncio.Event) -> None:
    """Run a worker until `stop` is set. Enqueues from any process wake it (wake.py)."""
    from postroom.outbox.routing import delivery_route, own_mailbox_route

    worker = Worker(options, route=delivery_route, own_mailbox_route=own_mailbox_route)
    listener = wake.OUTBOX.listener(worker.wake)
    await listener.start()
    running = asyncio.create_task(worker.run(), name="worker")
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([running, stopping], return_when=asyncio.FIRST_COMPLETED)
        worker.stop()
        await running
    finally:
        stopping.cancel()
        await listener.stop()
