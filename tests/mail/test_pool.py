"""The connection pool against real servers, and the rate limiter with a fake clock."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from postroom.mail.classify import Classification
from postroom.mail.config import SmtpServerConfig, Timeouts, TlsPolicy
from postroom.mail.delivery import DeliveryOutcome, Envelope
from postroom.mail.pool import (
    DAY,
    MIN_RATE,
    RECOVERY_INTERVAL,
    ConnectionPool,
    RateLimiter,
    RateLimits,
    SlidingWindow,
)
from tests.support.faultsmtp import CLOSE, FaultScript, FaultSession, fault_smtp
from tests.support.smtpd import ScriptedSmtpServer

FAST = Timeouts(connect=0.5, command=0.5, data=0.5)
DATA = b"From: a@postroom.test\r\nTo: b@example.test\r\nSubject: Hi\r\n\r\nHello.\r\n"


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def config_for(server: Any) -> SmtpServerConfig:
    return SmtpServerConfig(host="127.0.0.1", port=server.port, tls=TlsPolicy.NONE, timeouts=FAST)


def envelope(n: int = 0) -> Envelope:
    return Envelope("a@postroom.test", [f"r{n}@example.test"], DATA)


def run_pool(pool_args: dict[str, Any], server: Any, count: int) -> list[DeliveryOutcome]:
    async def run() -> list[DeliveryOutcome]:
        pool = ConnectionPool(config_for(server), **pool_args)
        try:
            return await asyncio.gather(*(pool.deliver(envelope(n)) for n in range(count)))
        finally:
            await pool.close()

    return asyncio.run(run())


# --- The pool ---------------------------------------------------------------------------------


def test_fifty_messages_over_a_pool_of_four_open_at_most_four_connections() -> None:
    with ScriptedSmtpServer() as server:
        outcomes = run_pool({"size": 4}, server, 50)
    assert all(o.is_success for o in outcomes)
    assert len(server.messages) == 50
    assert 1 <= server.sessions <= 4
    assert sorted(m.rcpt_tos[0] for m in server.messages) == sorted(
        f"r{n}@example.test" for n in range(50)
    )
    assert server.verbs().count("QUIT") == server.sessions  # all closed politely


def test_a_connection_is_replaced_after_its_message_allowance() -> None:
    with ScriptedSmtpServer() as server:
        outcomes = run_pool({"size": 1, "max_messages_per_connection": 10}, server, 25)
    assert all(o.is_success for o in outcomes)
    assert server.sessions == 3
    assert [len([m for m in server.messages if m.session == s]) for s in (1, 2, 3)] == [10, 10, 5]


def test_a_421_drops_the_connection_and_slows_the_pace() -> None:
    def end_of_data(session: FaultSession, content: bytes) -> Any:
        if session.number == 1 and session.messages == 2:
            return ["421 4.7.0 Too many messages, closing connection", CLOSE]
        return "250 2.0.0 Ok"

    async def run(server: Any) -> tuple[list[DeliveryOutcome], ConnectionPool]:
        pool = ConnectionPool(config_for(server), size=1)
        outcomes = [await pool.deliver(envelope(n)) for n in range(4)]
        await pool.close()
        return outcomes, pool

    with fault_smtp(FaultScript(end_of_data=end_of_data)) as server:
        outcomes, pool = asyncio.run(run(server))
    assert [o.recipients[0].classification for o in outcomes] == [
        Classification.SUCCESS, Classification.TEMPORARY, Classification.SUCCESS,
        Classification.SUCCESS,
    ]  # fmt: skip
    assert outcomes[1].is_throttled
    assert server.sessions == 2
    assert pool.rate_limiter.ceiling is not None  # throttled: now paced


def test_idle_connections_are_closed_after_the_idle_timeout() -> None:
    clock = FakeClock()

    async def run(server: Any) -> None:
        pool = ConnectionPool(config_for(server), size=2, idle_timeout=60, clock=clock)
        await pool.deliver(envelope(1))
        assert pool.idle_connections == 1
        clock.advance(61)
        await pool.prune()
        assert pool.idle_connections == 0
        await pool.deliver(envelope(2))
        await pool.close()

    with ScriptedSmtpServer() as server:
        asyncio.run(run(server))
    assert server.sessions == 2
    assert server.verbs(1)[-1] == "QUIT"


def test_refused_sessions_for_load_shrink_the_pool() -> None:
    script = FaultScript(greeting=["421 4.7.0 Too many concurrent connections", CLOSE])

    async def run(server: Any) -> tuple[DeliveryOutcome, int]:
        pool = ConnectionPool(config_for(server), size=8)
        outcome = await pool.deliver(envelope())
        return outcome, pool.allowed_connections

    with fault_smtp(script) as server:
        outcome, allowed = asyncio.run(run(server))
    assert outcome.is_throttled
    assert outcome.recipients[0].classification is Classification.TEMPORARY
    assert allowed == 4


def test_a_rate_limited_pool_keeps_the_pace() -> None:
    with ScriptedSmtpServer() as server:
        started = time.monotonic()
        outcomes = run_pool({"size": 4, "limits": RateLimits(per_second=5)}, server, 7)
        elapsed = time.monotonic() - started
    assert all(o.is_success for o in outcomes)
    assert elapsed >= 1.0  # five in the first second, the sixth and seventh a second later


# --- The rate limiter (pure, fake clock) ------------------------------------------------------


def test_no_limits_means_no_waiting() -> None:
    limiter = RateLimiter(clock=FakeClock())
    assert all(limiter.reserve() == 0 for _ in range(10_000))


def test_a_per_second_limit() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimits(per_second=2), clock=clock)
    assert limiter.reserve() == 0
    clock.advance(0.25)
    assert limiter.reserve() == 0
    assert limiter.reserve() == pytest.approx(0.75)  # one second after the first
    clock.advance(0.75)
    assert limiter.reserve() == 0
    assert limiter.reserve() == pytest.approx(0.25)


def test_a_per_minute_limit_is_a_true_sliding_window() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimits(per_minute=3), clock=clock)
    for _ in range(3):
        assert limiter.reserve() == 0
        clock.advance(10)
    assert limiter.reserve() == pytest.approx(30)  # the first was at 0: free again at 60
    clock.advance(30)
    assert limiter.reserve() == 0
    assert limiter.reserve() == pytest.approx(10)


def test_a_daily_quota_never_lets_more_through_in_any_24_hours() -> None:
    # A token bucket of 2,000 a day would let 4,000 through from a full bucket plus a day's
    # refill; Gmail answers 550 5.4.5 past its quota, so the window must be exact.
    clock = FakeClock()
    limiter = RateLimiter(RateLimits(per_day=2000), clock=clock)
    sent_at: list[float] = []
    for _ in range(4500):
        wait = limiter.reserve()
        if wait:
            clock.advance(wait)
            assert limiter.reserve() == 0
        sent_at.append(clock.now)
        clock.advance(1)
    for index in range(2000, len(sent_at)):
        assert sent_at[index] - sent_at[index - 2000] >= DAY


def test_all_limits_apply_together() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimits(per_second=10, per_minute=12), clock=clock)
    assert [limiter.reserve() for _ in range(10)] == [0] * 10
    assert limiter.reserve() == pytest.approx(1)
    clock.advance(1)
    assert [limiter.reserve() for _ in range(2)] == [0, 0]
    assert limiter.reserve() == pytest.approx(59)


def test_throttling_halves_the_pace_and_calm_restores_it_slowly() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    for _ in range(40):  # 10 messages a second
        assert limiter.reserve() == 0
        clock.advance(0.1)
    limiter.slow_down()
    assert limiter.ceiling == pytest.approx(5)
    assert limiter.reserve() == pytest.approx(0.1)  # the last went 0.1 s ago: one per 0.2 s
    clock.advance(0.1)
    assert limiter.reserve() == 0
    assert limiter.reserve() == pytest.approx(0.2)
    limiter.slow_down()  # the same episode (other connections saying the same): no change
    assert limiter.ceiling == pytest.approx(5)
    clock.advance(2)
    limiter.slow_down()  # a new signal: halve again
    assert limiter.ceiling == pytest.approx(2.5)
    clock.advance(RECOVERY_INTERVAL + 0.1)
    limiter.delay()
    assert limiter.ceiling == pytest.approx(2.5 * 1.25)
    clock.advance(RECOVERY_INTERVAL * 6)  # 3.125 × 1.25⁶ ≥ 10, the pace before
    limiter.delay()
    assert limiter.ceiling is None  # back to the pace before throttling: no ceiling


def test_throttling_never_stops_sending_altogether() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    for _ in range(30):
        limiter.slow_down()
        clock.advance(1.5)
    assert limiter.ceiling == pytest.approx(MIN_RATE)


def test_a_sliding_window_holds_one_slot_per_unit_of_limit() -> None:
    window = SlidingWindow(3, 10)
    for t in (0, 1, 2):
        assert window.wait_time(t) == 0
        window.record(t)
    assert window.wait_time(5) == 5
    with pytest.raises(ValueError):
        SlidingWindow(0, 10)
