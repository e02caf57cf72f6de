"""Django's SQLite backend with a write turn that every Postroom process waits for in line.

SQLite lets one transaction write at a time. A writer that finds the lock taken sleeps in
SQLite's busy handler (1, 2, 5, 10... ms) and tries again; a writer that commits and begins
again at once takes the lock back before the sleepers wake. Under the SMTP listener's
stream of commits the worker recording deliveries and a person's email being queued then
waited their turn for seconds.

So every transaction (`transaction.atomic`, which begins IMMEDIATE on SQLite) first takes an
exclusive `flock` on a file beside the database, and lets it go when it commits or rolls
back. A writer waiting for a `flock` sleeps in the kernel and wakes the moment the lock is
let go, so writers of all processes (the web, the worker, the listener) and all threads
(each has its own connection and its own open file) take turns instead of racing. The wait
has no time limit, as a PostgreSQL transaction waits for a row lock: a transaction holds the
turn only as long as it holds SQLite's write lock. Statements outside a transaction do not
take the turn; for them SQLite's busy handler and its timeout remain.
"""

from __future__ import annotations

import fcntl
import os
from typing import Any

from django.db.backends.sqlite3 import base


class DatabaseWrapper(base.DatabaseWrapper):
    # The methods overridden below are Django's own (django/db/backends/sqlite3/base.py and
    # base/base.py), private and so missing from django-stubs: hence the `type: ignore`s.

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._turn_file: int | None = None
        self._has_turn = False

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connection = super().get_new_connection(conn_params)
        if self._turn_file is None and not self.is_in_memory_db():
            path = f"{self.settings_dict['NAME']}-turn"
            self._turn_file = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
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
            self._turn_leave()
            if self._turn_file is not None:
                os.close(self._turn_file)
                self._turn_file = None

    def _turn_take(self) -> None:
        if self._turn_file is not None and not self._has_turn:
            fcntl.flock(self._turn_file, fcntl.LOCK_EX)
            self._has_turn = True

    def _turn_leave(self) -> None:
        if self._has_turn and self._turn_file is not None:
            self._has_turn = False
            fcntl.flock(self._turn_file, fcntl.LOCK_UN)
