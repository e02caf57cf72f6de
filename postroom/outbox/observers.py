"""Who wants to know what the worker recorded about bulk mail.

Campaigns count their outcomes (to pause a campaign whose messages keep failing, and to
notice that it finished) without the outbox knowing campaigns: an app above registers an
observer when it starts, and the recorder tells every observer what became of each bulk
message, inside the transaction that records it (a second durable commit per recorded
batch would cost the worker more than the observing). Each observer runs in a savepoint of
its own: one that fails is rolled back alone and logged with its traceback, and never
undoes or holds up the delivery it observes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.db import transaction

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BulkOutcome:
    template_id: int
    message_pk: int
    address: str
    status: str  # the recipient's status after the attempt (a RecipientStatus value)


BulkObserver = Callable[[Sequence[BulkOutcome]], None]
_observers: list[BulkObserver] = []


def bulk_observer_add(observer: BulkObserver) -> None:
    """Register `observer` (once, however often this is called with it)."""
    if observer not in _observers:
        _observers.append(observer)


def bulk_outcomes_tell(outcomes: Sequence[BulkOutcome]) -> None:
    """Tell every observer, each in a savepoint of the caller's transaction."""
    for observer in list(_observers):
        try:
            with transaction.atomic():
                observer(outcomes)
        except Exception:
            # The outcomes are recorded whatever an observer does; what it missed (a
            # campaign's failure count) is shown wrong until the next batch, not lost mail.
            logger.exception("A bulk outcome observer failed (%s)", observer)
