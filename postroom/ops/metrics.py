"""The `/metrics` page: the outbox in the Prometheus format, read from the database at scrape time.

A custom collector (prometheus_client's `Collector`) asks the database when Prometheus asks,
so every web process answers with the same figures, and no process keeps counters of its own
that a restart would lose or that would need adding up across processes and hosts. Which
figure means what, and what to alert on, is in docs/deployment.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from django.utils import timezone
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from postroom.ops import selectors
from postroom.outbox.models import ACTIVE_MESSAGE_STATUSES, Classification, Lane, Source

PREFIX = "postroom_outbox_"


class OutboxCollector(Collector):
    """The outbox's queue, pauses and counters as of `now`."""

    def __init__(self, *, now: dt.datetime) -> None:
        self.now = now

    def collect(self) -> Iterator[Metric]:
        yield from self._queue()
        yield from self._waiting()
        yield from self._pauses()
        yield from self._counters()

    def _queue(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            PREFIX + "queue_messages",
            "Messages still to be sent, by lane and status (queued, sending, deferred); held "
            "ones included.",
            labels=["lane", "status"],
        )
        depths = selectors.message_queue_depths()
        for lane in Lane.values:
            for status in ACTIVE_MESSAGE_STATUSES:
                depth.add_metric([lane, status], depths.get((lane, status), 0))
        yield depth
        yield GaugeMetricFamily(
            PREFIX + "held_messages",
            "Messages in the queue held by a paused campaign: not sent until it resumes.",
            value=selectors.message_held_count(now=self.now),
        )

    def _waiting(self) -> Iterator[Metric]:
        oldest = GaugeMetricFamily(
            PREFIX + "oldest_queued_age_seconds",
            "Age of the oldest message still to be sent, retries included (held mail and mail "
            "scheduled for later left out); 0 with none.",
            labels=["lane"],
        )
        accepted_at = selectors.message_oldest_waiting_by_lane(now=self.now)
        due = GaugeMetricFamily(
            PREFIX + "due_wait_seconds",
            "How long the message due longest has waited for a worker; 0 when the workers keep up.",
            labels=["lane"],
        )
        due_since = selectors.message_due_since_by_lane(now=self.now)
        for lane in Lane.values:
            oldest.add_metric([lane], self._seconds_since(accepted_at.get(lane)))
            due.add_metric([lane], self._seconds_since(due_since.get(lane)))
        yield oldest
        yield due

    def _pauses(self) -> Iterator[Metric]:
        pauses = selectors.server_pause_summary()
        yield GaugeMetricFamily(
            PREFIX + "paused_servers",
            "Servers (or users' own mailboxes) that sending is paused to until an administrator "
            "acts: a wrong password, a refused login.",
            value=pauses.count,
        )
        yield GaugeMetricFamily(
            PREFIX + "longest_pause_seconds",
            "How long the oldest pause has lasted; 0 with none.",
            value=self._seconds_since(pauses.oldest_at),
        )

    def _counters(self) -> Iterator[Metric]:
        accepted = selectors.message_accepted_tally(now=self.now)
        family = CounterMetricFamily(
            PREFIX + "messages_accepted",
            "Messages accepted into the outbox, by lane and source (api, smtp, campaign, ...).",
            labels=["lane", "source"],
        )
        created = accepted.started_at.timestamp()
        for lane in Lane.values:
            for source in Source.values:
                count = accepted.counts.get((lane, source), 0)
                family.add_metric([lane, source], count, created=created)
        yield family
        attempts = selectors.attempt_tally(now=self.now)
        family = CounterMetricFamily(
            PREFIX + "delivery_attempts",
            "Delivery attempts recorded, by classification: success, temporary, permanent, "
            "uncertain, config (our settings are wrong).",
            labels=["classification"],
        )
        created = attempts.started_at.timestamp()
        for classification in Classification.values:
            count = attempts.counts.get((classification,), 0)
            family.add_metric([classification], count, created=created)
        yield family

    def _seconds_since(self, moment: dt.datetime | None) -> float:
        if moment is None:
            return 0.0
        return max(0.0, (self.now - moment).total_seconds())


def metrics_render(*, accept: str) -> tuple[bytes, str]:
    """The metrics page's body and content type, in the format the scraper accepts."""
    # auto_describe off: registering must not run the collector's queries.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OutboxCollector(now=timezone.now()))
    encode, content_type = choose_encoder(accept)
    return encode(registry), content_type
