"""Counters the database answers cheaply at every scrape: a checkpointed tally per table.

The metrics' counters (messages accepted, delivery attempts) are counts of rows of tables that
grow with every message. Counting them whole at each scrape would read millions of rows every
15 seconds; instead a `Tally` row keeps the counts up to a checkpoint id, and a scrape counts
only the rows above it, a range of the primary key. All processes read and move the same
tally, so whichever web process answers a scrape gives the same figures, and they only grow.

Why the checkpoint trails: an id is taken when a row is inserted, not when its transaction
commits, so a row with a lower id can appear after one with a higher id. A tally notes the
highest id it sees and when (`seen_id`, `seen_at`), and moves the checkpoint to that id only
`SETTLE` later, when every transaction that took an id below it has long committed or rolled
back. A row is therefore counted once, and only a transaction open for longer than `SETTLE`
could see its rows never counted.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

from django.db.models import Count, F, Max, Model, Q

from postroom.ops.models import Tally

# Postroom's transactions that insert messages or attempts (an API batch, a page of a
# campaign's expansion, a worker's group commit) last milliseconds to seconds; five minutes
# is ample. A scrape counts the rows of the last SETTLE to 2 * SETTLE.
SETTLE = dt.timedelta(minutes=5)

Labels = tuple[str, ...]


@dataclass(frozen=True)
class TallySource:
    """A table counted by some of its columns: `name` keys its `Tally` row."""

    name: str
    model: type[Model]
    labels: tuple[str, ...]


@dataclass(frozen=True)
class TallyReading:
    counts: dict[Labels, int]
    started_at: dt.datetime


def tally_read(source: TallySource, *, now: dt.datetime) -> TallyReading:
    """The counts of `source`'s rows by label as of now; move the checkpoint when it is due.

    The first reading of a source counts its whole table, once, and stores the result.
    """
    newest = _newest_id(source)
    tally, _ = Tally.objects.get_or_create(
        name=source.name,
        defaults={
            "through_id": newest,
            # A callable: the whole table is counted only when the tally is created.
            "counts": lambda: _rows_from(_count(source, above=0, through=newest)),
            "seen_id": newest,
            "seen_at": now,
            "started_at": now,
        },
    )
    is_settled = tally.seen_at <= now - SETTLE
    settle_to = tally.seen_id if is_settled else tally.through_id
    kept = _counts_from(tally.counts)
    settled: Counter[Labels] = Counter()
    total = Counter(kept)
    for *labels, all_rows, settled_rows in (
        source.model._default_manager.filter(pk__gt=tally.through_id)
        .order_by()
        .values_list(*source.labels)
        .annotate(all_rows=Count("pk"), settled_rows=Count("pk", filter=Q(pk__lte=settle_to)))
    ):
        total[tuple(labels)] += all_rows
        settled[tuple(labels)] += settled_rows
    if is_settled:
        # A conditional UPDATE: of two processes moving the checkpoint at once, one writes;
        # the other's figures were right all the same.
        Tally.objects.filter(pk=tally.pk, version=tally.version).update(
            through_id=settle_to,
            counts=_rows_from(kept + settled),
            seen_id=max(newest, settle_to),
            seen_at=now,
            version=F("version") + 1,
        )
    return TallyReading(counts=dict(total), started_at=tally.started_at)


def _newest_id(source: TallySource) -> int:
    # MAX of the primary key reads one end of its index.
    return source.model._default_manager.aggregate(newest=Max("pk"))["newest"] or 0


def _count(source: TallySource, *, above: int, through: int) -> Counter[Labels]:
    rows = (
        source.model._default_manager.filter(pk__gt=above, pk__lte=through)
        .order_by()
        .values_list(*source.labels)
        .annotate(rows=Count("pk"))
    )
    return Counter({tuple(labels): count for *labels, count in rows})


def _counts_from(stored: list[list[str | int]]) -> Counter[Labels]:
    return Counter({tuple(str(label) for label in row[:-1]): int(row[-1]) for row in stored})


def _rows_from(counts: Counter[Labels]) -> list[list[str | int]]:
    return [[*labels, count] for labels, count in sorted(counts.items()) if count]
