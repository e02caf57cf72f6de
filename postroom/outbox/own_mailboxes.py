"""The worker's connections to users' own mailboxes (send-as OWN_MAILBOX): one route and
connection pool per mailbox, read again now and then, so a removed sign-in or a changed
setting is seen without a restart."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from postroom.mail.pool import ConnectionPool
from postroom.outbox.routing import DeliveryRoute
from postroom.queue.dbthread import DatabaseThread

RouteSource = Callable[[str], DeliveryRoute | None]


class OwnMailboxPools:
    def __init__(self, source: RouteSource, db: DatabaseThread, *, refresh_seconds: float):
        self._source = source
        self._db = db
        self._refresh_seconds = refresh_seconds
        # owner -> (route, its pool, when the route was read)
        self._known: dict[str, tuple[DeliveryRoute | None, ConnectionPool | None, float]] = {}

    async def get(self, owner: str) -> tuple[DeliveryRoute, ConnectionPool] | None:
        """The route and pool of `owner`'s mailbox; None once its sign-in is gone."""
        route, pool, read_at = self._known.get(owner, (None, None, -math.inf))
        if time.monotonic() - read_at >= self._refresh_seconds:
            fresh = await self._db.run(self._source, owner)
            if fresh != route:
                if pool is not None:
                    await pool.close()
                route, pool = fresh, None
                if fresh is not None:
                    pool = ConnectionPool(fresh.config, size=fresh.connections, limits=fresh.limits)
            self._known[owner] = (route, pool, time.monotonic())
        if route is None or pool is None:
            return None
        return route, pool

    async def close(self) -> None:
        for _, pool, _ in self._known.values():
            if pool is not None:
                await pool.close()
        self._known.clear()
