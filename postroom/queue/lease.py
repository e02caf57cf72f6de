"""Claim rows of a queue with a lease: the one way every queue in Postroom takes work.

A claim marks rows as one holder's with a random token and a lease (a time after which they
are due again), in one short transaction; the holder then acts only where the token is still
its own (`UPDATE ... WHERE claim_token = %s`), so a holder that outlived its lease changes
nothing another took over. A holder that dies, even with `kill -9`, leaves its rows to come
due again when the lease ends: nothing is lost, and nothing is done twice at once.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Model, Q, QuerySet

M = TypeVar("M", bound=Model)

Choose = Callable[[list[tuple[Any, ...]]], list[Any]]


def claim_token_new() -> str:
    """A token no other claim has: 128 random bits."""
    return uuid.uuid4().hex


def lease_claim(
    due: QuerySet[M],
    *,
    limit: int,
    recheck: Q,
    claim: Mapping[str, Any],
    choose: Choose | None = None,
    choose_fields: Sequence[str] = (),
    look_ahead: int = 1,
) -> int:
    """Claim up to `limit` rows of `due`, in its order; return how many were claimed.

    The rows are UPDATEd with `claim` (which sets the caller's token and lease) where
    `recheck`, the due condition, still holds; the caller reads them back by its token in
    the same transaction, which it holds. With `choose`, the first `limit * look_ahead` due
    rows are read as (pk, *choose_fields) and `choose` picks the pks to claim (a cap per
    endpoint, say).

    On PostgreSQL, `FOR UPDATE SKIP LOCKED` lets many holders claim side by side, each
    passing over the rows another is claiming; on SQLite the transaction starts IMMEDIATE
    (a write lock, settings.DATABASES), so claims are serialised. Either way the UPDATE
    repeats the due condition, so a row another holder took in between is left alone.
    """
    assert connection.in_atomic_block, "claim inside the transaction that reads the rows back"
    if connection.features.has_select_for_update_skip_locked:
        # OF self: a table joined to decide what is due (a webhook's endpoint) is read,
        # not locked.
        due = due.select_for_update(skip_locked=True, of=("self",))
    if choose is None:
        ids = list(due.values_list("pk", flat=True)[:limit])
    else:
        ids = choose(list(due.values_list("pk", *choose_fields)[: limit * look_ahead]))
    if not ids:
        return 0
    return due.model._default_manager.filter(Q(pk__in=ids) & recheck).update(**claim)


def writers_serialise(name: str, *, on_wait: Callable[[], None] | None = None) -> None:
    """Hold the lock `name` until the caller's transaction ends: one such writer at a time,
    across every process and host (two CSV imports adding the same new tags would otherwise
    deadlock, or fail on the unique name). Calls `on_wait` first if it has to wait.

    PostgreSQL: a transaction-level advisory lock. SQLite: nothing to do, as every write
    transaction already holds the database's one write lock (IMMEDIATE).
    """
    assert connection.in_atomic_block, "the lock lasts as long as the caller's transaction"
    if connection.vendor != "postgresql":
        return
    key = zlib.crc32(name.encode())  # a stable 32-bit key: Python's hash() varies by process
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [key])
        if cursor.fetchone()[0]:
            return
        if on_wait is not None:
            on_wait()
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])
