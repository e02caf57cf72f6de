"""Reused SMTP sessions per server, a pace per server, and a limit on concurrent sessions.

`ConnectionPool.deliver(envelope)` is what a worker calls: it takes an idle session (or opens
one), waits for the rate limiter, delivers, and puts the session back unless the server said
421 or it has carried `max_messages_per_connection` transactions. The pool watches outcomes:
a throttling reply halves the pace (and, when it came while opening a session, the number of
sessions); calm time restores them slowly. Pausing a server is the worker's decision, on
`outcome.should_pause`.
"""

from __future__ import annotations

import array
import asyncio
import collections
import contextlib
import math
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from postroom.mail.config import SmtpServerConfig
from postroom.mail.delivery import DeliveryOutcome, Envelope, SmtpConnection
from postroom.mail.replies import Stage
from postroom.mail.tls import client_tls_context

Clock = Callable[[], float]

SECOND, MINUTE, DAY = 1.0, 60.0, 86400.0
# RFC 5321 §4.5.3.2.7: a server waits at least 5 minutes for the next command. Leaving idle
# sessions after a minute means we close them, not a firewall that forgets them silently.
DEFAULT_IDLE_TIMEOUT = 60.0
# Our choice: long enough to spare the TLS handshake and AUTH on busy days, short enough that
# a server-side leak or a slowly failing session does not live long.
DEFAULT_MAX_MESSAGES_PER_CONNECTION = 100
# Adaptive pace (in the spirit of TCP's congestion control, RFC 5681: halve at once on a
# signal, grow back slowly): a throttling reply halves the pace; each calm interval raises it
# by a quarter until it is back where it was.
RECOVERY_INTERVAL = 30.0
RECOVERY_FACTOR = 1.25
SLOWDOWN_HOLD = 1.0  # throttling replies within a second of a halving are the same episode
MIN_RATE = 1 / 60  # never slower than a message a minute: deferrals do the rest
_RECENT_SENDS = 32  # sends kept to measure the current pace


@dataclass(frozen=True)
class RateLimits:
    """A server's sending limits, in messages; 0 means no limit (as providers publish them:
    Gmail 2,000 a day, Microsoft 365 30 a minute)."""

    per_second: int = 0
    per_minute: int = 0
    per_day: int = 0


class SlidingWindow:
    """At most `limit` sends in any `window` seconds, exactly.

    A ring of the last `limit` send times: a send is allowed when the oldest of them is at
    least `window` old. Exact where a token bucket lets twice the limit through a window,
    which matters for daily quotas (Gmail answers 550 5.4.5 past its daily limit). Memory:
    8 bytes per unit of limit.
    """

    def __init__(self, limit: int, window: float) -> None:
        if limit < 1:
            raise ValueError("a window needs a limit of at least 1")
        self.limit = limit
        self.window = window
        self._times = array.array("d", [-math.inf]) * limit
        self._next = 0  # the slot of the oldest send, overwritten by the next

    def wait_time(self, now: float) -> float:
        return max(0.0, self._times[self._next] + self.window - now)

    def record(self, now: float) -> None:
        self._times[self._next] = now
        self._next = (self._next + 1) % self.limit


class RateLimiter:
    """The pace of one server: fixed limits plus an adaptive ceiling that throttling lowers.

    Pure apart from `acquire` (which sleeps): give it a fake `clock` to test it.
    """

    def __init__(self, limits: RateLimits | None = None, *, clock: Clock = time.monotonic) -> None:
        limits = limits or RateLimits()
        self.limits = limits
        self._clock = clock
        self._windows = [
            SlidingWindow(limit, window)
            for limit, window in (
                (limits.per_second, SECOND),
                (limits.per_minute, MINUTE),
                (limits.per_day, DAY),
            )
            if limit > 0
        ]
        self._recent = array.array("d", [-math.inf]) * _RECENT_SENDS
        self._recent_next = 0
        self._last_send = -math.inf
        self.ceiling: float | None = None  # messages per second while throttled
        self._ceiling_lifted_at: float | None = None  # the pace before throttling began
        self._changed_at = -math.inf

    def delay(self) -> float:
        """Seconds until the next send is allowed; 0 means now."""
        now = self._clock()
        self._recover(now)
        waits = [window.wait_time(now) for window in self._windows]
        if self.ceiling is not None:
            waits.append(self._last_send + 1 / self.ceiling - now)
        return max([0.0, *waits])

    def reserve(self) -> float:
        """Take a send now and return 0, or return how long to wait before asking again."""
        wait = self.delay()
        if wait > 0:
            return wait
        now = self._clock()
        for window in self._windows:
            window.record(now)
        self._recent[self._recent_next] = now
        self._recent_next = (self._recent_next + 1) % _RECENT_SENDS
        self._last_send = now
        return 0.0

    async def acquire(self) -> None:
        """Wait until a send is allowed, and take it."""
        while (wait := self.reserve()) > 0:
            await asyncio.sleep(wait)

    def current_rate(self) -> float:
        """Messages per second over the recent sends (0 if fewer than two)."""
        times = sorted(t for t in self._recent if t != -math.inf)
        if len(times) < 2 or times[-1] <= times[0]:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    def slow_down(self) -> None:
        """The server throttled us: halve the pace (once per episode)."""
        now = self._clock()
        if now - self._changed_at < SLOWDOWN_HOLD:
            return
        measured = self.current_rate() or 1.0
        pace = min(self.ceiling, measured) if self.ceiling is not None else measured
        if self._ceiling_lifted_at is None:
            self._ceiling_lifted_at = max(pace, MIN_RATE)
        self.ceiling = max(MIN_RATE, pace / 2)
        self._changed_at = now

    def _recover(self, now: float) -> None:
        if self.ceiling is None:
            return
        intervals = int((now - self._changed_at) // RECOVERY_INTERVAL)
        if intervals <= 0:
            return
        self.ceiling *= RECOVERY_FACTOR**intervals
        self._changed_at += intervals * RECOVERY_INTERVAL
        assert self._ceiling_lifted_at is not None
        if self.ceiling >= self._ceiling_lifted_at:
            self.ceiling = self._ceiling_lifted_at = None


class ConnectionPool:
    """Up to `size` sessions with one server, reused; `deliver` is safe to call concurrently."""

    def __init__(
        self,
        config: SmtpServerConfig,
        *,
        size: int = 4,
        limits: RateLimits | None = None,
        max_messages_per_connection: int = DEFAULT_MAX_MESSAGES_PER_CONNECTION,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        clock: Clock = time.monotonic,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        if size < 1:
            raise ValueError("a pool needs at least one connection")
        self.config = config
        self.size = size
        self.max_messages_per_connection = max_messages_per_connection
        self.idle_timeout = idle_timeout
        self.rate_limiter = RateLimiter(limits, clock=clock)
        self._clock = clock
        self._tls_context = tls_context
        self._idle: list[tuple[SmtpConnection, float]] = []  # with the time it became idle
        self._in_use = 0
        self._allowed = size  # lowered while the server refuses sessions for load
        self._allowed_changed_at = -math.inf
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._is_closed = False

    @property
    def allowed_connections(self) -> int:
        """How many sessions may be open now: `size`, less while the server pushes back."""
        self._recover_allowed()
        return self._allowed

    @property
    def idle_connections(self) -> int:
        return len(self._idle)

    def _tls(self) -> ssl.SSLContext:
        if self._tls_context is None:
            # Built once: loading the system's CA store takes milliseconds.
            self._tls_context = client_tls_context(ca_pem=self.config.ca_pem)
        return self._tls_context

    async def deliver(self, envelope: Envelope) -> DeliveryOutcome:
        """Deliver on a pooled session at the server's pace; never raises for SMTP trouble."""
        async with self.connection() as connection:
            await self.rate_limiter.acquire()
            outcome = await connection.deliver(envelope)
        self.observe(outcome)
        return outcome

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[SmtpConnection]:
        """Lend a session (idle, or new and not yet opened: `deliver` opens it)."""
        await self._take_slot()
        try:
            connection = await self._take_idle()
            try:
                yield connection
            finally:
                await self._give_back(connection)
        finally:
            self._release_slot()

    async def _take_slot(self) -> None:
        while self._in_use >= self.allowed_connections:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # we were handed a slot we will not use: pass it on
                raise
            finally:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
        self._in_use += 1

    def _release_slot(self) -> None:
        self._in_use -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        for waiter in self._waiters:  # first come, first served
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _take_idle(self) -> SmtpConnection:
        now = self._clock()
        while self._idle:
            connection, idle_since = self._idle.pop()  # the most recent: others may time out
            if connection.is_usable and now - idle_since < self.idle_timeout:
                return connection
            await connection.close()
        return SmtpConnection(self.config, tls_context=self._tls())

    async def _give_back(self, connection: SmtpConnection) -> None:
        is_worn = connection.transaction_count >= self.max_messages_per_connection
        if connection.is_usable and not is_worn and not self._is_closed:
            self._idle.append((connection, self._clock()))
        else:
            await connection.close()

    def observe(self, outcome: DeliveryOutcome) -> None:
        """Adapt to what the server said: slow down when it throttles."""
        if not outcome.is_throttled:
            return
        self.rate_limiter.slow_down()
        if outcome.stage in _OPENING_STAGES:
            # Refused while opening a session ("421 too many connections"): fewer sessions.
            now = self._clock()
            if now - self._allowed_changed_at >= SLOWDOWN_HOLD:
                self._allowed = max(1, self._allowed // 2)
                self._allowed_changed_at = now

    def _recover_allowed(self) -> None:
        if self._allowed >= self.size:
            return
        intervals = int((self._clock() - self._allowed_changed_at) // RECOVERY_INTERVAL)
        if intervals > 0:
            self._allowed = min(self.size, self._allowed + intervals)
            self._allowed_changed_at += intervals * RECOVERY_INTERVAL

    async def prune(self) -> None:
        """Close sessions idle for longer than `idle_timeout` (call it now and then)."""
        now = self._clock()
        fresh = [(c, t) for c, t in self._idle if c.is_usable and now - t < self.idle_timeout]
        stale = [c for c, t in self._idle if (c, t) not in fresh]
        self._idle = fresh
        for connection in stale:
            await connection.close()

    async def close(self) -> None:
        """QUIT every idle session; sessions in use are closed when given back."""
        self._is_closed = True
        idle, self._idle = self._idle, []
        await asyncio.gather(*(connection.close() for connection, _ in idle))


_OPENING_STAGES = frozenset({Stage.CONNECT, Stage.GREETING, Stage.EHLO, Stage.STARTTLS, Stage.AUTH})
