"""The tallies behind the counters: counted once, the same for every reader, never less.

A tally counts any table; these tests count `SenderRefusal` rows by server, a table whose
rows are easy to make with the ids a test chooses (to play a transaction that commits late).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from postroom.ops.models import Tally
from postroom.ops.tallies import SETTLE, TallySource, tally_read
from postroom.outbox.models import SenderRefusal

pytestmark = pytest.mark.django_db

REFUSALS = TallySource(name="test.refusals", model=SenderRefusal, labels=("server",))
T0 = dt.datetime(2030, 1, 1, 9, 0, tzinfo=dt.UTC)


def refusal(pk: int, server: str = "relay:587") -> None:
    SenderRefusal.objects.create(
        pk=pk, address=f"a{pk}@example.com", server=server, refused_at=timezone.now()
    )


def counts_at(now: dt.datetime) -> dict[tuple[str, ...], int]:
    return tally_read(REFUSALS, now=now).counts


def test_the_first_reading_counts_the_whole_table_and_keeps_it() -> None:
    for pk in (1, 2, 3):
        refusal(pk, server="relay:587" if pk < 3 else "other:25")

    assert counts_at(T0) == {("relay:587",): 2, ("other:25",): 1}
    tally = Tally.objects.get(name=REFUSALS.name)
    assert (tally.through_id, tally.seen_id, tally.started_at) == (3, 3, T0)
    assert tally.counts == [["other:25", 1], ["relay:587", 2]]


def test_rows_above_the_checkpoint_are_counted_at_every_reading() -> None:
    counts_at(T0)
    refusal(10)
    refusal(11)
    assert counts_at(T0 + dt.timedelta(seconds=15)) == {("relay:587",): 2}
    assert counts_at(T0 + dt.timedelta(seconds=30)) == {("relay:587",): 2}
    assert Tally.objects.get(name=REFUSALS.name).through_id == 0  # not settled yet


def test_the_checkpoint_moves_to_what_was_seen_a_settle_ago_and_the_figures_stay() -> None:
    refusal(1)
    counts_at(T0)  # through 1, seen 1
    refusal(5)
    assert counts_at(T0 + SETTLE) == {("relay:587",): 2}  # seen 5, through still 1
    refusal(7)
    assert counts_at(T0 + 2 * SETTLE) == {("relay:587",): 3}
    tally = Tally.objects.get(name=REFUSALS.name)
    assert (tally.through_id, tally.seen_id) == (5, 7)
    assert tally.counts == [["relay:587", 2]]


def test_a_row_that_appears_below_the_seen_id_before_it_settles_is_counted_once() -> None:
    refusal(1)
    counts_at(T0)
    refusal(9)
    counts_at(T0 + SETTLE)  # seen 9: ids 2 to 8 may still be in open transactions
    refusal(4)  # one of them commits
    later = T0 + SETTLE + dt.timedelta(minutes=1)
    assert counts_at(later) == {("relay:587",): 3}
    assert counts_at(T0 + 2 * SETTLE) == {("relay:587",): 3}  # the checkpoint passes it
    assert counts_at(T0 + 3 * SETTLE) == {("relay:587",): 3}
    assert Tally.objects.get(name=REFUSALS.name).through_id == 9


def test_every_source_has_its_own_tally() -> None:
    refusal(1)
    other = TallySource(name="test.refusals.by-address", model=SenderRefusal, labels=("address",))
    assert counts_at(T0) == {("relay:587",): 1}
    assert tally_read(other, now=T0).counts == {("a1@example.com",): 1}
    assert Tally.objects.count() == 2
