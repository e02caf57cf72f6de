"""When to try a message again: the outbox's backoff (postroom.queue.retry), pure and clock-free.

The defaults are Postfix's (`minimal_backoff_time` 300 s, `maximal_backoff_time` 4000 s,
`maximal_queue_lifetime` 5 d), which follow RFC 5321 §4.5.4.1: retry after at least 30
minutes for most mail, give up after 4-5 days.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from postroom.queue.retry import Backoff


@dataclass(frozen=True)
class RetryPolicy(Backoff):
    first_delay: dt.timedelta = dt.timedelta(seconds=300)
    max_delay: dt.timedelta = dt.timedelta(seconds=4000)
    give_up_after: dt.timedelta = dt.timedelta(days=5)
    # A reply that left us unsure whether the server took the message is retried once, soon:
    # the retry carries the same Message-ID, so a receiving system can drop a duplicate.
    uncertain_delay: dt.timedelta = dt.timedelta(seconds=60)

    def next_attempt_at(
        self, *, failed_attempts: int, expires_at: dt.datetime, now: dt.datetime
    ) -> dt.datetime | None:
        """The time of the next try, or None when the message must give up (it expires
        first)."""
        return self.retry_at(failed_attempts=failed_attempts, now=now, give_up_at=expires_at)


def retry_policy() -> RetryPolicy:
    """The policy the settings give (POSTROOM_RETRY_*). Settings are read here, at call time,
    so the rest of this module stays pure."""
    from django.conf import settings

    return RetryPolicy(
        first_delay=dt.timedelta(seconds=settings.POSTROOM_RETRY_FIRST_SECONDS),
        max_delay=dt.timedelta(seconds=settings.POSTROOM_RETRY_MAX_SECONDS),
        give_up_after=dt.timedelta(seconds=settings.POSTROOM_RETRY_GIVE_UP_SECONDS),
    )
