"""Readiness: may this web process be given requests? What `/readyz` answers a load balancer.

A process is ready when the database answers, every migration its code knows is applied,
and its secret key decrypts the stored secrets. The last catches a host started with another
`POSTROOM_SECRET_KEY`: it could not send with the stored SMTP password, and would sign out
every user whose session another host signed.

A database that is ahead of the code (migrated for a newer version while this one still runs,
as during an upgrade) is ready: the migrations of an upgrade are written so that the previous
version keeps working (docs/deployment.md), and a load balancer that dropped every old
process at once would stop the site.

Each problem is told in words safe for anyone to read (the page needs no login); the log
says more, once per change, not at every probe.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor

from postroom.company.services import company_verify_secrets
from postroom.core.errors import SecretKeyError

logger = logging.getLogger(__name__)

OK = "ok"
NOT_CHECKED = "not checked: an earlier check failed"


@dataclass(frozen=True)
class Readiness:
    """Each check's name and "ok" or what is wrong, in the order they ran; `details` has
    what only the log may say (host names, the migrations' names)."""

    checks: dict[str, str]
    details: dict[str, str] = field(default_factory=dict)

    @property
    def is_ready(self) -> bool:
        return all(result == OK for result in self.checks.values())

    def as_json(self) -> dict[str, object]:
        return {"ready": self.is_ready, "checks": self.checks}


def readiness_check() -> Readiness:
    """Check the database, then (once it answers) the migrations, then the secret key."""
    checks: dict[str, str] = {}
    details: dict[str, str] = {}
    for name, check in (
        ("database", _database_check),
        ("migrations", _migrations_check),
        ("secret_key", _secret_key_check),
    ):
        if any(result != OK for result in checks.values()):
            checks[name] = NOT_CHECKED  # each check needs the ones before it to pass
            continue
        checks[name], detail = check()
        if detail:
            details[name] = detail
    readiness = Readiness(checks, details)
    _problem_log.changed_to(readiness)
    return readiness


def _database_check() -> tuple[str, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as error:
        # The error names hosts and users: for the log, not for the page.
        return "the database does not answer (the log of this process says why)", str(error)
    return OK, ""


def _migrations_check() -> tuple[str, str]:
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if not plan:
        return OK, ""
    names = ", ".join(f"{migration.app_label}.{migration.name}" for migration, _ in plan)
    problem = f"{len(plan)} migration(s) of this version are not applied: run `postroom migrate`"
    return problem, f"not applied: {names}"


def _secret_key_check() -> tuple[str, str]:
    try:
        company_verify_secrets()
    except SecretKeyError as error:
        problem = (
            "this process's POSTROOM_SECRET_KEY does not decrypt the stored secrets: give every "
            "Postroom process the same key (the log says which secret)"
        )
        return problem, error.message
    return OK, ""


class _ProblemLog:
    """Tells the log when readiness changes, rather than at every probe of it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: Readiness | None = None

    def changed_to(self, readiness: Readiness) -> None:
        with self._lock:
            last, self._last = self._last, readiness
        if last == readiness:
            return
        if readiness.is_ready:
            if last is not None:
                logger.info("Ready again.")
            return
        for name, result in readiness.checks.items():
            if result not in (OK, NOT_CHECKED):
                detail = readiness.details.get(name, "")
                logger.warning("Not ready: %s: %s. %s", name, result, detail)


_problem_log = _ProblemLog()
