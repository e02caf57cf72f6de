import datetime as dt

from postroom.outbox.retry import RetryPolicy

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


def test_the_first_retry_waits_five_minutes_then_doubles() -> None:
    policy = RetryPolicy()
    assert [policy.delay(n).total_seconds() for n in (1, 2, 3, 4)] == [300, 600, 1200, 2400]


def test_the_delay_is_capped_at_about_66_minutes() -> None:
    policy = RetryPolicy()
    assert policy.delay(5).total_seconds() == 4000
    assert policy.delay(500).total_seconds() == 4000


def test_a_retry_past_the_expiry_gives_up() -> None:
    policy = RetryPolicy()
    expires_at = NOW + dt.timedelta(minutes=4)
    assert policy.next_attempt_at(failed_attempts=1, expires_at=expires_at, now=NOW) is None


def test_a_retry_before_the_expiry_is_scheduled() -> None:
    policy = RetryPolicy()
    expires_at = NOW + dt.timedelta(days=5)
    when = policy.next_attempt_at(failed_attempts=2, expires_at=expires_at, now=NOW)
    assert when == NOW + dt.timedelta(minutes=10)
