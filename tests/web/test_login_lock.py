"""Password guessing (issue 7, finding 4): failed logins lock the login name and the client
address, each on its own; the login page says so and when the lock ends; the audit log
records failed, locked and refused logins, never the password tried."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta

import pytest
from django.http import HttpResponse
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings

from postroom.audit.models import AuditEntry
from tests.accounts.factories import PASSWORD, admin_make, user_make

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Settings) -> None:
    # PBKDF2 at Django 5.2's 1,000,000 rounds costs seconds per login on a small CI machine.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def limit(settings: Settings) -> int:
    return int(settings.AXES_FAILURE_LIMIT)


def log_in(client: Client, username: str, password: str = PASSWORD) -> HttpResponse:
    return client.post("/login/", {"username": username, "password": password})


def is_logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def fail(client: Client, username: str, times: int) -> None:
    for number in range(times):
        response = log_in(client, username, f"wrong-guess-{number}")
        assert not is_logged_in(client)
        assert response.status_code in (200, 429)


def lock_ends_at(response: HttpResponse) -> datetime:
    match = re.search(r'<time datetime="([^"]+)"', response.content.decode())
    assert match, response.content.decode()
    return datetime.fromisoformat(match.group(1))


def text(response: HttpResponse) -> str:
    """The page's words, without tags and with spaces collapsed, as a person reads them."""
    return " ".join(re.sub(r"<[^>]+>", " ", response.content.decode()).split())


# The finding


def test_forty_wrong_passwords_then_the_right_one_does_not_log_in() -> None:
    admin_make("root")
    client = Client()
    fail(client, "root", 40)
    response = log_in(client, "root")
    assert not is_logged_in(client)
    assert response.status_code == 429
    assert "locked" in text(response)


def test_a_few_typos_do_not_lock_anyone_out(limit: int) -> None:
    admin_make("root")
    client = Client()
    fail(client, "root", limit - 1)
    response = log_in(client, "root")
    assert response.status_code == 302 and is_logged_in(client)


# Per account and per address


def test_guesses_at_one_account_from_many_addresses_lock_that_account(limit: int) -> None:
    admin_make("root")
    user_make("sam")
    for number in range(limit):
        fail(Client(REMOTE_ADDR=f"198.51.100.{number + 1}"), "root", 1)

    elsewhere = Client(REMOTE_ADDR="192.0.2.50")
    refused = log_in(elsewhere, "root")
    assert refused.status_code == 429 and not is_logged_in(elsewhere)
    assert "Too many failed logins for the login name root" in text(refused)
    # Only that login is locked: another person logs in from the same address.
    assert log_in(elsewhere, "sam").status_code == 302 and is_logged_in(elsewhere)


def test_guesses_at_many_accounts_from_one_address_lock_that_address(limit: int) -> None:
    admin_make("root")
    guesser = Client(REMOTE_ADDR="203.0.113.7")
    for number in range(limit):
        fail(guesser, f"someone-{number}", 1)

    refused = log_in(guesser, "root")
    assert refused.status_code == 429 and not is_logged_in(guesser)
    assert "Too many failed logins from your address 203.0.113.7" in text(refused)
    # The login name itself is not locked: its owner logs in from their own address.
    owner = Client(REMOTE_ADDR="192.0.2.60")
    assert log_in(owner, "root").status_code == 302 and is_logged_in(owner)


def test_a_locked_address_sees_the_lock_before_trying_again(limit: int) -> None:
    guesser = Client(REMOTE_ADDR="203.0.113.7")
    for number in range(limit):
        fail(guesser, f"someone-{number}", 1)
    page = guesser.get("/login/")
    assert page.status_code == 200
    assert "Too many failed logins from your address 203.0.113.7" in text(page)
    assert "Too many failed logins" not in text(Client(REMOTE_ADDR="192.0.2.1").get("/login/"))


def test_a_forged_forwarded_for_header_does_not_get_around_the_address_lock(limit: int) -> None:
    # Postroom is served directly by default: the header is anyone's to write.
    admin_make("root")
    guesser = Client(REMOTE_ADDR="203.0.113.7")
    for number in range(limit):
        guesser.post(
            "/login/",
            {"username": f"someone-{number}", "password": "wrong-guess"},
            headers={"X-Forwarded-For": f"10.0.0.{number + 1}"},
        )
    refused = guesser.post(
        "/login/",
        {"username": "root", "password": PASSWORD},
        headers={"X-Forwarded-For": "10.9.9.9"},
    )
    assert refused.status_code == 429 and not is_logged_in(guesser)


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_one_locked(
    settings: Settings, limit: int
) -> None:
    settings.POSTROOM_TRUSTED_PROXIES = ["127.0.0.1"]
    admin_make("root")

    def through_proxy(client_address: str, username: str, password: str) -> HttpResponse:
        # What nginx's $proxy_add_x_forwarded_for sends: what the client claimed, then the
        # address the proxy saw. Only the last one is the proxy's word.
        return Client(REMOTE_ADDR="127.0.0.1").post(
            "/login/",
            {"username": username, "password": password},
            headers={"X-Forwarded-For": f"10.1.1.1, {client_address}"},
        )

    for number in range(limit):
        through_proxy("203.0.113.9", f"someone-{number}", "wrong-guess")
    refused = through_proxy("203.0.113.9", "root", PASSWORD)
    assert refused.status_code == 429
    assert "203.0.113.9" in text(refused)
    # Everyone else behind the same proxy still logs in.
    assert through_proxy("203.0.113.10", "root", PASSWORD).status_code == 302


# What the person is told


def test_the_lock_says_in_plain_words_when_it_ends(settings: Settings, limit: int) -> None:
    admin_make("root")
    client = Client()
    fail(client, "root", limit)
    before = timezone.now()
    response = log_in(client, "root")
    assert response.status_code == 429

    ends_at = lock_ends_at(response)
    cool_off: timedelta = settings.AXES_COOLOFF_TIME
    assert before - timedelta(seconds=30) < ends_at - cool_off <= timezone.now()
    words = text(response)
    local_end = timezone.localtime(ends_at)
    assert f"locked until {local_end:%H:%M} {settings.TIME_ZONE}" in words
    assert "in 14 minutes" in words or "in 15 minutes" in words
    assert "ask an administrator to unlock it" in words
    assert int(response["Retry-After"]) == pytest.approx(cool_off.total_seconds(), abs=30)
    # The form is still there, with the login name kept, for the try after the lock.
    assert 'name="username"' in response.content.decode()
    assert 'value="root"' in response.content.decode()


def test_a_try_during_the_lock_does_not_push_its_end_back(limit: int) -> None:
    admin_make("root")
    client = Client()
    fail(client, "root", limit)
    first = lock_ends_at(log_in(client, "root", "wrong-again"))
    time.sleep(1.1)
    second = lock_ends_at(log_in(client, "root"))
    assert second == first


def test_the_lock_ends_by_itself_after_the_cool_off(settings: Settings, limit: int) -> None:
    settings.AXES_COOLOFF_TIME = timedelta(seconds=2)
    admin_make("root")
    client = Client()
    fail(client, "root", limit)
    assert log_in(client, "root").status_code == 429
    time.sleep(2.2)
    assert log_in(client, "root").status_code == 302 and is_logged_in(client)


# The audit log


def test_failed_locked_and_refused_logins_are_audited_without_the_passwords(limit: int) -> None:
    admin_make("root")
    client = Client(REMOTE_ADDR="203.0.113.7")
    fail(client, "root", limit)
    log_in(client, "root")  # the right password, refused because of the lock
    log_in(client, "nobody", "wrong-guess-x")

    entries = list(AuditEntry.objects.filter(action__startswith="login.").order_by("id"))
    actions = [entry.action for entry in entries]
    assert actions == ["login.failed"] * limit + ["login.locked", "login.refused", "login.refused"]
    failed, locked, refused = entries[0], entries[limit], entries[limit + 1]
    assert failed.subject == "user root"
    assert failed.changes == {"Client address": "203.0.113.7"}
    assert locked.subject == "user root"
    assert locked.changes["Client address"] == "203.0.113.7"
    # Failures at root from one address lock both the login name and the address.
    assert locked.changes["Locked"] == "login name root, address 203.0.113.7"
    assert datetime.fromisoformat(locked.changes["Until"]) > timezone.now()
    assert refused.subject == "user root"
    assert entries[-1].subject == "unknown login nobody"

    everything = json.dumps([[e.actor_name, e.subject, e.changes] for e in entries])
    assert PASSWORD not in everything
    assert "wrong-guess" not in everything


def test_the_audit_page_shows_failed_logins(limit: int) -> None:
    admin = admin_make("root")
    fail(Client(REMOTE_ADDR="203.0.113.7"), "sam", 1)
    client = Client()
    client.force_login(admin)
    page = text(client.get("/audit/?action=login.failed"))
    assert "failed to log in: unknown login sam" in page and "203.0.113.7" in page
