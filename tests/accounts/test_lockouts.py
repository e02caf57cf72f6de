"""Locked logins: when a lock ends, which locks exist, and `postroom unlock`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from pytest_django.fixtures import Settings

from postroom.accounts import lockouts
from postroom.accounts.lockouts import LockoutKind, lock_end
from postroom.audit.models import AuditEntry
from tests.accounts.factories import PASSWORD, user_make

NOON = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)
MINUTES_15 = timedelta(minutes=15)


def minutes_before_noon(minutes: int) -> datetime:
    return NOON - timedelta(minutes=minutes)


# When a lock ends (pure)


def test_one_source_of_failures_locks_until_its_last_failure_plus_the_cool_off() -> None:
    rows = [(minutes_before_noon(1), 10)]
    assert lock_end(rows, limit=10, cool_off=MINUTES_15) == NOON + timedelta(minutes=14)


def test_fewer_failures_than_the_limit_lock_nothing() -> None:
    rows = [(minutes_before_noon(1), 6), (minutes_before_noon(2), 3)]
    assert lock_end(rows, limit=10, cool_off=MINUTES_15) is None


def test_with_several_sources_the_lock_ends_when_the_oldest_needed_one_expires() -> None:
    # 4 + 4 failures recently and 4 long ago: the limit of 10 needs the oldest source too,
    # so the lock ends when that one leaves the cool-off window.
    rows = [(minutes_before_noon(1), 4), (minutes_before_noon(2), 4), (minutes_before_noon(10), 4)]
    assert lock_end(rows, limit=10, cool_off=MINUTES_15) == NOON + timedelta(minutes=5)


def test_the_order_the_sources_come_in_does_not_matter() -> None:
    rows = [(minutes_before_noon(10), 4), (minutes_before_noon(1), 4), (minutes_before_noon(2), 4)]
    assert lock_end(rows, limit=10, cool_off=MINUTES_15) == NOON + timedelta(minutes=5)


# The locks that exist, and unlocking (database)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def fail_from(address: str, username: str, times: int) -> None:
    client = Client(REMOTE_ADDR=address)
    for number in range(times):
        client.post("/login/", {"username": username, "password": f"wrong-{number}"})


@pytest.mark.django_db
def test_the_list_has_each_locked_login_and_address_once(settings: Settings) -> None:
    limit = settings.AXES_FAILURE_LIMIT
    fail_from("203.0.113.7", "sam", limit)
    fail_from("203.0.113.8", "alex", limit - 1)
    found = {(lock.kind, lock.value, lock.failures) for lock in lockouts.lockout_list()}
    assert found == {
        (LockoutKind.ACCOUNT, "sam", limit),
        (LockoutKind.ADDRESS, "203.0.113.7", limit),
    }


@pytest.mark.django_db
def test_postroom_unlock_lists_and_unlocks_a_login(settings: Settings) -> None:
    user_make("sam")
    fail_from("203.0.113.7", "sam", settings.AXES_FAILURE_LIMIT)

    listing = StringIO()
    call_command("unlock", stdout=listing)
    assert "login name sam" in listing.getvalue()
    assert "address 203.0.113.7" in listing.getvalue()

    out = StringIO()
    call_command("unlock", "--login", "sam", stdout=out)
    assert "Logins as sam are unlocked" in out.getvalue()
    response = Client(REMOTE_ADDR="192.0.2.1").post(
        "/login/", {"username": "sam", "password": PASSWORD}
    )
    assert response.status_code == 302
    entry = AuditEntry.objects.get(action="login.unlocked")
    assert (entry.actor_name, entry.subject) == ("system", "user sam")


@pytest.mark.django_db
def test_postroom_unlock_unlocks_an_address(settings: Settings) -> None:
    fail_from("203.0.113.7", "someone", settings.AXES_FAILURE_LIMIT)
    out = StringIO()
    call_command("unlock", "--address", "203.0.113.7", stdout=out)
    assert "Logins from 203.0.113.7 are unlocked" in out.getvalue()
    assert not lockouts.lockout_list()


@pytest.mark.django_db
def test_postroom_unlock_says_when_there_is_nothing_to_unlock() -> None:
    out = StringIO()
    call_command("unlock", stdout=out)
    assert "Nothing is locked" in out.getvalue()
    with pytest.raises(CommandError, match="not locked"):
        call_command("unlock", "--login", "sam", stdout=StringIO())
    with pytest.raises(CommandError, match="not an IP address"):
        call_command("unlock", "--address", "example.com", stdout=StringIO())
