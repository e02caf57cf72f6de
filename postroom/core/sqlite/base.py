"""Django's SQLite backend with a write turn that every Postroom process waits for in line.

SQLite lets one transaction write at a time. A writer that finds the lock taken sleeps in
SQLite's busy handler (1, 2, 5, 10... ms) and tries again; a writer that commits and begins
again at once takes the lock back before the sleepers wake. Under the SMTP listener's
stream of commits the worker recording deliveries and a person's email being queued then
waited their turn for seconds.

So every transaction (`transaction.atomic`, which begins IMMEDIATE on SQLite) first takes
the turn, `flock`s on files beside the database (turn.py), and lets it go when it commits or
rolls back. A writer waiting for a `flock` sleeps in the kernel and wakes when the lock is
let go, and one that let it go cannot take it back past one that waited: so writers of all
processes (the web, the worker, the listener) and all threads (each has its own connection
and its own open files) take turns instead of racing. The wait has no time limit, as a
PostgreSQL transaction waits for a row lock: a transaction holds the turn only as long as it
holds SQLite's write lock. A statement outside a transaction that writes (an API key's rate
count: an UPDATE on its own) takes the turn for itself, through a Django execute wrapper;
reads take none (WAL lets them run beside the writer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.backends.sqlite3 import base

from postroom.core.sqlite.turn import WriteTurn


class DatabaseWrapper(base.DatabaseWrapper):
    # The methods overridden below are Django's own (django/db/backends/sqlite3/base.py and
    # base/base.py), private and so missing from django-stubs: hence the `type: ignore`s.

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._turn: WriteTurn | None = None  # none for a database in memory
        self.execute_wrappers.append(self._write_in_turn)

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connection = super().get_new_connection(conn_params)
        if self._turn is None and not self.is_in_memory_db():
            self._turn = WriteTurn(str(self.settings_dict["NAME"]))
        return connection

    def _start_transaction_under_autocommit(self) -> None:
        self._turn_take()
        try:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]
        except BaseException:
            self._turn_leave()
            raise

    def _commit(self) -> None:
        super()._commit()  # type: ignore[misc]
        self._turn_leave()

    def _rollback(self) -> None:
        try:
            super()._rollback()  # type: ignore[misc]
        finally:
            self._turn_leave()

    def _close(self) -> None:
        try:
            super()._close()  # type: ignore[misc]
        finally:
            if self._turn is not None:
                self._turn.close()
                self._turn = None

    def _write_in_turn(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        """Run a statement outside a transaction, if it may write, in its turn."""
        if (
            self._turn is None
            or self._turn.is_held
            or self.connection.in_transaction
            or sql.startswith("SELECT")
        ):
            return execute(sql, params, many, context)
        self._turn.take()
        try:
            return execute(sql, params, many, context)
        finally:
            self._turn.leave()

    def _turn_take(self) -> None:
        if self._turn is not None:
            self._turn.take()

    def _turn_leave(self) -> None:
        if self._turn is not None:
            self._turn.leave()
