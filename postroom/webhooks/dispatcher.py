"""The webhook dispatcher: fan events out, post due deliveries, record what the endpoints said.

One loop, in the worker process beside the outbox worker (or alone: `postroom webhooks`):
- fan out new outbox events into deliveries (delivery.events_fan_out);
- claim due deliveries with a lease, at most `concurrency` in flight and `per_endpoint`
  per endpoint, and post each in its own task;
- each task records its outcome as soon as it has it;
- sleep until the next due delivery, a finished request or a poke, at most
  `IDLE_WAKE_SECONDS`, which bounds how late an event from another process is noticed.
Every ORM call runs on one database thread (postroom.queue.dbthread), as in the outbox
worker. A crash loses nothing: a claimed delivery whose outcome was not recorded is due again
when its lease ends, and is posted again with the same webhook-id, which the receiver can use
to drop the duplicate.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any

import httpx
from django.utils import timezone

from postroom.outbox import wake as outbox_wake
from postroom.queue.dbthread import DatabaseThread
from postroom.queue.wake import seconds_until
from postroom.webhooks import delivery, signing, wake
from postroom.webhooks.delivery import ClaimedDelivery, PostOutcome
from postroom.webhooks.retry import retry_after_parse
from postroom.webhooks.targets import (
    Resolve,
    TargetLookupError,
    TargetRefusedError,
    system_resolve,
)
from postroom.webhooks.transport import ALLOW_INTERNAL, WebhookTransport

logger = logging.getLogger(__name__)

# Requests in flight at once. Eight keeps a handful of receivers busy without letting one
# Postroom flood them; each waits at most REQUEST_TIMEOUT_SECONDS.
CONCURRENCY = 8
# Half the slots at most for one endpoint: a dead one (every request waiting out its
# timeout) cannot stall the others' events.
PER_ENDPOINT = 4
# The whole request, connect to last byte read. The Standard Webhooks spec suggests giving
# receivers 15-30 s; the issue asks for 10 s, which a receiver that acknowledges first and
# works afterwards meets easily.
REQUEST_TIMEOUT_SECONDS = 10.0
# Look for new events and due deliveries at least this often. Pokes from this process (a
# queued message, a resend) come at once; events written by other processes wait this long.
IDLE_WAKE_SECONDS = 2.0
# Rounds start at least this far apart: a burst of pokes (a bulk enqueue wakes the loop
# for every message) then costs a few rounds a second, not one per message.
MIN_ROUND_SECONDS = 0.05
# Recording an outcome is tried this many times before the lease is left to bring the
# delivery back (posted again, same webhook-id).
RECORD_TRIES = 3
# Retry-After is read on the answers that carry it by the Standard Webhooks spec's advice.
_RETRY_AFTER_CODES = (429, 503)


class Dispatcher:
    def __init__(
        self,
        *,
        concurrency: int = CONCURRENCY,
        per_endpoint: int = PER_ENDPOINT,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
        resolve: Resolve = system_resolve,
    ) -> None:
        self.concurrency = concurrency
        self.per_endpoint = per_endpoint
        self.timeout = timeout
        self.resolve = resolve
        self._db = DatabaseThread("postroom-webhooks-db")
        self._in_flight: dict[asyncio.Task[None], int] = {}  # task -> endpoint id
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_round_at = 0.0

    # -- lifecycle -------------------------------------------------------------------------

    def poke(self) -> None:
        """Thread-safe: there may be new work."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self, *, stop: asyncio.Event) -> None:
        """Dispatch until `stop` is set; requests in flight then finish and are recorded."""
        self._loop = asyncio.get_running_loop()
        wake.DISPATCHERS.add(self.poke)
        outbox_wake.OUTBOX.local.add(self.poke)
        try:
            async with http_client(self.concurrency, self.timeout, resolve=self.resolve) as client:
                try:
                    while not stop.is_set():
                        await self._round(client, stop)
                finally:
                    # Each request ends within the timeout, so stopping takes at most that.
                    await asyncio.gather(*self._in_flight, return_exceptions=True)
        finally:
            wake.DISPATCHERS.remove(self.poke)
            outbox_wake.OUTBOX.local.remove(self.poke)
            await self._db.close()

    async def _round(self, client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        since_last = time.monotonic() - self._last_round_at
        if since_last < MIN_ROUND_SECONDS:
            await asyncio.sleep(MIN_ROUND_SECONDS - since_last)
        self._last_round_at = time.monotonic()
        self._wake.clear()
        try:
            fanned_out = await self._db.run(delivery.events_fan_out)
            claimed = await self._claim_and_start(client)
            if fanned_out >= delivery.FAN_OUT_BATCH:
                return  # more events are waiting: no sleep
            if claimed and len(self._in_flight) < self.concurrency:
                return  # there may be more due work for the free slots
            next_due = await self._db.run(delivery.delivery_next_due_at)
        except Exception:
            # The database is away (restarting, locked): try again after a pause.
            logger.exception("Webhook dispatch failed; trying again in %s s", IDLE_WAKE_SECONDS)
            await self._sleep(stop, IDLE_WAKE_SECONDS)
            return
        wait = seconds_until(next_due, cap=IDLE_WAKE_SECONDS)
        if wait == 0 and self._in_flight:
            # Due work this dispatcher may not take yet (slots full, or its endpoint at its
            # share): a finished request wakes the loop.
            wait = IDLE_WAKE_SECONDS
        await self._sleep(stop, wait)

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _claim_and_start(self, client: httpx.AsyncClient) -> int:
        free = self.concurrency - len(self._in_flight)
        if free <= 0:
            return 0
        claimed = await self._db.run(
            delivery.delivery_claim_batch,
            limit=free,
            per_endpoint=self.per_endpoint,
            busy=Counter(self._in_flight.values()),
        )
        for item in claimed:
            task = asyncio.create_task(self._deliver(client, item), name=f"webhook-{item.id}")
            self._in_flight[task] = item.endpoint_id
            task.add_done_callback(self._finished)
        return len(claimed)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.pop(task, None)
        self._wake.set()
        if not task.cancelled() and task.exception() is not None:
            logger.error("A webhook delivery task failed", exc_info=task.exception())

    # -- one delivery ------------------------------------------------------------------------

    async def _deliver(self, client: httpx.AsyncClient, claimed: ClaimedDelivery) -> None:
        outcome = await post_delivery(client, claimed, timeout=self.timeout)
        for attempt in range(1, RECORD_TRIES + 1):
            try:
                await self._db.run(delivery.delivery_record, claimed=claimed, outcome=outcome)
            except Exception:
                logger.exception(
                    "Recording webhook delivery %s failed (try %d of %d)",
                    claimed.webhook_id,
                    attempt,
                    RECORD_TRIES,
                )
            else:
                return
                await asyncio.sleep(attempt)
        # Unrecorded: the lease brings the delivery back and it is posted again.


def http_client(
    concurrency: int = CONCURRENCY,
    timeout: float = REQUEST_TIMEOUT_SECONDS,
    *,
    resolve: Resolve = system_resolve,
) -> httpx.AsyncClient:
    """The client every delivery is posted with: it connects only to checked addresses."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(
        transport=WebhookTransport(limits=limits, resolve=resolve),
        # Redirects are not followed (Standard Webhooks: update the URL instead); a 3xx is a
        # failure whose message names the new address. Following one would also skip the
        # address check of the new URL's host.
        follow_redirects=False,
        timeout=httpx.Timeout(timeout),
    )


async def post_delivery(
    client: httpx.AsyncClient, claimed: ClaimedDelivery, *, timeout: float = REQUEST_TIMEOUT_SECONDS
) -> PostOutcome:
    """POST one delivery, signed for this attempt, and say what came of it. Never raises."""
    at = timezone.now()
    started = time.monotonic()

    def outcome(**fields: Any) -> PostOutcome:
        return PostOutcome(at=at, duration_ms=round((time.monotonic() - started) * 1000), **fields)

    if claimed.key_error:
        return outcome(error=claimed.key_error)
    body = claimed.body.encode("utf-8")
    headers = signing.request_headers(
        keys=claimed.keys, webhook_id=claimed.webhook_id, timestamp=int(at.timestamp()), body=body
    )
    try:
        async with (
            asyncio.timeout(timeout),
            client.stream(
                "POST",
                claimed.url,
                content=body,
                headers=headers,
                extensions={ALLOW_INTERNAL: claimed.is_internal_allowed},
            ) as response,
        ):
            is_success = 200 <= response.status_code < 300
            excerpt = "" if is_success else await _excerpt(response)
    except (TargetRefusedError, TargetLookupError) as error:
        return outcome(error=error.message)
    except TimeoutError:
        return outcome(error=f"No complete answer within {timeout:g} s.")
    except httpx.ConnectError as error:
        return outcome(error=f"Could not connect: {_reason(error)}")
    except httpx.HTTPError as error:
        return outcome(error=f"The request failed: {_reason(error)}")
    code = response.status_code
    if 200 <= code < 300:
        return outcome(status_code=code, response_excerpt=excerpt)
    retry_after = None
    if code in _RETRY_AFTER_CODES and "retry-after" in response.headers:
        retry_after = retry_after_parse(response.headers["retry-after"], now=at)
    return outcome(
        status_code=code,
        response_excerpt=excerpt,
        error=_failure_text(response),
        retry_after=retry_after,
    )


# UTF-8 needs at most 4 bytes a character: this many bytes hold the excerpt's characters.
_EXCERPT_READ_BYTES = delivery.RESPONSE_EXCERPT_CHARS * 4


async def _excerpt(response: httpx.Response) -> str:
    """The start of a failing answer's body, read no further than the excerpt needs."""
    kept = bytearray()
    async for chunk in response.aiter_bytes():
        kept += chunk
        if len(kept) > _EXCERPT_READ_BYTES:
            break
    text = bytes(kept[:_EXCERPT_READ_BYTES]).decode("utf-8", "replace")
    return delivery.response_excerpt_clip(text, has_more=len(kept) > _EXCERPT_READ_BYTES)


def _failure_text(response: httpx.Response) -> str:
    code = response.status_code
    answered = f"The endpoint answered {code} {response.reason_phrase}".rstrip() + "."
    if 300 <= code < 400:
        location = response.headers.get("location", "")[:300]
        return (
            f"{answered} Postroom does not follow redirects: set the endpoint's URL to "
            f"{location or 'the address it redirects to'}."
        )
    if code == 410:
        return (
            f"{answered} The receiver says it wants no more of these events: delete or turn "
            "off the endpoint, or correct its URL."
        )
    return answered


def _reason(error: BaseException) -> str:
    # httpx wraps the OS error; its text ("[Errno 111] Connection refused") is the useful part.
    return str(error) or type(error).__name__


async def run_webhook_dispatcher(*, stop: asyncio.Event) -> None:
    """Run the webhook dispatcher until `stop` is set."""
    await Dispatcher().run(stop=stop)
