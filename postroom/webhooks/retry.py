"""When to post a failed webhook again: backoff for three days (postroom.queue.retry), pure.

30 s, 1 min, 2 min, … doubling up to one attempt an hour: a receiver that restarts is
caught within a minute, one that is down for a weekend still gets every event when it comes
back, and a dead one costs one request an hour per pending event. The Standard Webhooks
spec recommends a schedule "spanning multiple days"; three days is the issue's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from postroom.queue.retry import Backoff

# A server's Retry-After (on 429 or 503) is honoured up to this: a longer one would let a
# misconfigured receiver postpone an event past the give-up time in one answer.
MAX_RETRY_AFTER = dt.timedelta(hours=1)


@dataclass(frozen=True)
class WebhookRetryPolicy(Backoff):
    first_delay: dt.timedelta = dt.timedelta(seconds=30)
    max_delay: dt.timedelta = dt.timedelta(hours=1)
    give_up_after: dt.timedelta = dt.timedelta(days=3)

    def next_attempt_at(
        self,
        *,
        failed_attempts: int,
        created_at: dt.datetime,
        now: dt.datetime,
        retry_after: dt.timedelta | None = None,
    ) -> dt.datetime | None:
        """The time of the next try, or None when the delivery gives up."""
        return self.retry_at(
            failed_attempts=failed_attempts,
            now=now,
            give_up_at=created_at + self.give_up_after,
            at_least=None if retry_after is None else min(retry_after, MAX_RETRY_AFTER),
        )


DEFAULT_POLICY = WebhookRetryPolicy()


def retry_after_parse(value: str, *, now: dt.datetime) -> dt.timedelta | None:
    """A Retry-After header (RFC 9110 §10.2.3: seconds or an HTTP date) as a wait, or None."""
    value = value.strip()
    if value.isascii() and value.isdigit():
        # Ten digits is over 300 years: anything longer is treated as that (and capped).
        return dt.timedelta(seconds=int(value) if len(value) <= 10 else 10**10)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT
        when = when.replace(tzinfo=dt.UTC)
    return max(when - now, dt.timedelta(0))
