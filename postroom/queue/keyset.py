"""Keyset pagination: pages of a list ordered by a unique key, never by OFFSET.

An outbox holds millions of rows, and an OFFSET page deep in it costs a scan of every row
before it; a keyset page (`WHERE id < last seen ORDER BY id DESC LIMIT n`) costs one index
seek wherever it is. The key must be unique and never change (the primary key): then a row
added, removed or edited between two pages is never shown twice or skipped.

A page is asked for relative to a row the reader has seen: `following=k` is the page after
the row with key `k` in the list's order, `preceding=k` the page before it. Each page says
which keys to pass for its neighbours, or None where there is none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db.models import Model, QuerySet

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class KeysetPage(Generic[M]):
    rows: list[M]  # in the list's order
    following: int | None  # pass as `following` for the next page; None on the last page
    preceding: int | None  # pass as `preceding` for the previous page; None on the first page


def keyset_page(
    rows: QuerySet[M],
    *,
    size: int,
    descending: bool = True,
    following: int | None = None,
    preceding: int | None = None,
    key: str = "id",
    prepare: Callable[[QuerySet[M]], QuerySet[M]] | None = None,
) -> KeysetPage[M]:
    """One page of `rows` ordered by `key` (newest first when `descending`).

    `prepare` shapes the query that reads the page (annotations, prefetches) without
    changing which rows it holds; it is not applied to the existence checks.
    """
    shape = prepare or _unchanged
    order = f"-{key}" if descending else key
    reverse = key if descending else f"-{key}"
    # The rows after a key in the list's order, and those before it.
    after = f"{key}__lt" if descending else f"{key}__gt"
    before = f"{key}__gt" if descending else f"{key}__lt"
    if preceding is not None:
        # Walk back from `preceding`, then turn the page round into the list's order.
        found = list(shape(rows.filter(**{before: preceding})).order_by(reverse)[: size + 1])
        has_previous = len(found) > size
        found = found[:size][::-1]
        has_next = bool(found) and rows.filter(**{after: _key_of(found[-1], key)}).exists()
    else:
        if following is not None:
            rows = rows.filter(**{after: following})
        found = list(shape(rows).order_by(order)[: size + 1])
        has_next = len(found) > size
        found = found[:size]
        # Coming from a page means there is one to go back to (unless this one is empty).
        has_previous = following is not None and bool(found)
    return KeysetPage(
        rows=found,
        following=_key_of(found[-1], key) if has_next and found else None,
        preceding=_key_of(found[0], key) if has_previous and found else None,
    )


def _unchanged(rows: QuerySet[M]) -> QuerySet[M]:
    return rows


def _key_of(row: Any, key: str) -> int:
    return int(getattr(row, key))
