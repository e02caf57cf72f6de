"""The backoff every queue uses: doubling from the first delay to the cap, until give-up."""

from __future__ import annotations

import datetime as dt

from postroom.queue.retry import Backoff

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
BACKOFF = Backoff(
    first_delay=dt.timedelta(seconds=30),
    max_delay=dt.timedelta(minutes=5),
    give_up_after=dt.timedelta(hours=1),
)


def test_the_wait_doubles_after_each_failure_up_to_the_cap() -> None:
    waits = [BACKOFF.delay(failures).total_seconds() for failures in range(1, 7)]
    assert waits == [30, 60, 120, 240, 300, 300]


def test_thousands_of_failures_still_wait_the_cap() -> None:
    assert BACKOFF.delay(10_000) == dt.timedelta(minutes=5)


def test_no_retry_is_scheduled_past_the_give_up_time() -> None:
    give_up_at = NOW + dt.timedelta(seconds=45)
    assert BACKOFF.retry_at(
        failed_attempts=1, now=NOW, give_up_at=give_up_at
    ) == NOW + dt.timedelta(seconds=30)
    assert BACKOFF.retry_at(failed_attempts=2, now=NOW, give_up_at=give_up_at) is None


def test_a_longer_wait_asked_for_is_honoured() -> None:
    when = BACKOFF.retry_at(
        failed_attempts=1,
        now=NOW,
        give_up_at=NOW + dt.timedelta(hours=1),
        at_least=dt.timedelta(minutes=10),
    )
    assert when == NOW + dt.timedelta(minutes=10)
