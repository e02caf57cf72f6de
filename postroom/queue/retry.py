"""Exponential backoff: how long to wait after a failure, and when to give up (pure).

Each queue keeps its own numbers, with the reason for them: the outbox Postfix's (5 min
doubling to 66 min 40 s, for 5 days; postroom.outbox.retry), webhooks the Standard Webhooks
advice (30 s doubling to an hour, for 3 days; postroom.webhooks.retry).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

# 2**20 times any first delay is far past any sane cap; bounding the exponent keeps the
# arithmetic small after thousands of failures.
_MAX_EXPONENT = 20


@dataclass(frozen=True)
class Backoff:
    first_delay: dt.timedelta
    max_delay: dt.timedelta
    give_up_after: dt.timedelta

    def delay(self, failed_attempts: int) -> dt.timedelta:
        """The wait after the `failed_attempts`-th failure in a row (1 = the first)."""
        exponent = min(max(failed_attempts - 1, 0), _MAX_EXPONENT)
        return min(self.first_delay * 2**exponent, self.max_delay)

    def retry_at(
        self,
        *,
        failed_attempts: int,
        now: dt.datetime,
        give_up_at: dt.datetime,
        at_least: dt.timedelta | None = None,
    ) -> dt.datetime | None:
        """When to try again, waiting `at_least` if longer; None when that is past
        `give_up_at`."""
        wait = self.delay(failed_attempts)
        if at_least is not None:
            wait = max(wait, at_least)
        when = now + wait
        return None if when > give_up_at else when
