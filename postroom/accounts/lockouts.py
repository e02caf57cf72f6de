"""Locked logins: which login names and client addresses django-axes refuses, until when, and
unlocking them.

django-axes (configured in postroom.settings) counts failed logins in its AccessAttempt rows,
one row per login name, client address and browser, with the time of the row's last failure.
A login name is locked while its rows newer than the cool-off hold at least the failure
limit; a client address likewise. Axes answers only "locked or not"; the end of a lock, which
the login page shows and the Users page lists, is worked out here from the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from ipaddress import ip_address

from axes.helpers import get_cool_off
from axes.models import AccessAttempt
from axes.utils import reset
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction
from django.db.models import QuerySet, Sum
from django.utils import timezone

from postroom.accounts.models import User
from postroom.audit.services import audit_record
from postroom.core.errors import ValidationError


class LockoutKind(models.TextChoices):
    ACCOUNT = "account", "Login name"
    ADDRESS = "address", "Address"


_FIELD = {LockoutKind.ACCOUNT: "username", LockoutKind.ADDRESS: "ip_address"}


@dataclass(frozen=True)
class Lockout:
    kind: LockoutKind
    value: str  # the login name as it was typed, or the client address
    failures: int
    ends_at: datetime

    @property
    def described(self) -> str:
        """What is locked, in words: "login name sam", "address 203.0.113.7"."""
        if self.kind == LockoutKind.ACCOUNT:
            return f"login name {self.value}"
        return f"address {self.value}"


def _audit_subject(kind: LockoutKind, value: str) -> str:
    # The audit log names users "user <login>" everywhere else.
    return f"user {value}" if kind == LockoutKind.ACCOUNT else f"address {value}"


def lock_end(
    rows: Iterable[tuple[datetime, int]], *, limit: int, cool_off: timedelta
) -> datetime | None:
    """When a lock ends, from (last failure at, failures) rows of one login name or address.

    Rows leave the count one by one as each one's last failure grows older than the cool-off.
    The lock holds while the newest rows still add up to the limit, so it ends when the
    oldest row needed to reach the limit leaves. None: the rows do not reach the limit.
    """
    total = 0
    for last_failure_at, failures in sorted(rows, key=lambda row: row[0], reverse=True):
        total += failures
        if total >= limit:
            return last_failure_at + cool_off
    return None


def _settings() -> tuple[int, timedelta]:
    """The failure limit and the cool-off, read as axes reads them."""
    cool_off = get_cool_off()
    # Postroom always sets both as numbers (postroom.settings); axes would also take callables.
    assert cool_off is not None
    return int(settings.AXES_FAILURE_LIMIT), cool_off


def lockout_settings_check() -> None:
    """Refuse a failure limit or a cool-off that would lock everyone, or no one, for good."""
    limit, cool_off = _settings()
    if limit < 1:
        raise ImproperlyConfigured(
            f"POSTROOM_LOGIN_FAILURE_LIMIT={limit}: use a whole number of at least 1."
        )
    if cool_off <= timedelta(0):
        raise ImproperlyConfigured(
            "POSTROOM_LOGIN_LOCK_MINUTES: use a whole number of minutes of at least 1."
        )


def _recent_attempts() -> QuerySet[AccessAttempt]:
    _, cool_off = _settings()
    return AccessAttempt.objects.filter(attempt_time__gte=timezone.now() - cool_off)


def _lockout(kind: LockoutKind, value: str) -> Lockout | None:
    limit, cool_off = _settings()
    rows = list(
        _recent_attempts()
        .filter(**{_FIELD[kind]: value})
        .values_list("attempt_time", "failures_since_start")
    )
    ends_at = lock_end(rows, limit=limit, cool_off=cool_off)
    if ends_at is None or ends_at <= timezone.now():
        return None
    return Lockout(kind=kind, value=value, failures=sum(n for _, n in rows), ends_at=ends_at)


def lockout_find(*, username: str | None, ip_address: str | None) -> list[Lockout]:
    """The locks that refuse a login with this name from this address, the longest first."""
    candidates = [(LockoutKind.ACCOUNT, username), (LockoutKind.ADDRESS, ip_address)]
    found = [_lockout(kind, value) for kind, value in candidates if value]
    return sorted((lock for lock in found if lock), key=lambda lock: lock.ends_at, reverse=True)


def lockout_for_user(*, user: User) -> Lockout | None:
    return _lockout(LockoutKind.ACCOUNT, user.username)


def lockout_list() -> list[Lockout]:
    """Every locked login name and address, the most recent lock first."""
    limit, _ = _settings()
    locks: list[Lockout] = []
    for kind, field in _FIELD.items():
        # Summing in the database first keeps this to one query per lock found, even while
        # someone tries thousands of login names.
        candidates = (
            _recent_attempts()
            .exclude(**{f"{field}__isnull": True})
            .values(field)
            .annotate(total=Sum("failures_since_start"))
            .filter(total__gte=limit)
            .values_list(field, flat=True)
        )
        locks.extend(lock for value in candidates if (lock := _lockout(kind, str(value))))
    return sorted(locks, key=lambda lock: lock.ends_at, reverse=True)


def lockout_kind_clean(value: str) -> LockoutKind:
    if value not in LockoutKind.values:
        raise ValidationError("Choose what to unlock: a login name or an address.", field="kind")
    return LockoutKind(value)


def lockout_value_clean(kind: LockoutKind, value: str) -> str:
    value = value.strip()
    if kind == LockoutKind.ADDRESS:
        try:
            return str(ip_address(value))
        except ValueError:
            raise ValidationError(f"{value!r} is not an IP address.", field="value") from None
    if not value:
        raise ValidationError("Give the login name to unlock.", field="value")
    return value


def lockout_unlock(*, actor: User | None, kind: str, value: str) -> int:
    """Forget the failed logins of a login name or an address; return how many there were.

    Unlocking a login name forgets its failures from every address, and unlocking an address
    forgets its failures at every login name, so both counts start again from zero.
    """
    lockout_kind = lockout_kind_clean(kind)
    value = lockout_value_clean(lockout_kind, value)
    field = _FIELD[lockout_kind]
    with transaction.atomic():
        failures = (
            AccessAttempt.objects.filter(**{field: value}).aggregate(
                total=Sum("failures_since_start")
            )["total"]
            or 0
        )
        if not failures:
            return 0
        if lockout_kind == LockoutKind.ACCOUNT:
            reset(username=value)
        else:
            reset(ip=value)
        audit_record(
            actor=actor,
            action="login.unlocked",
            subject=_audit_subject(lockout_kind, value),
            changes={"Failed logins cleared": failures},
        )
    return failures
