"""Administrators see locked logins and addresses on the Users pages and unlock them."""

from __future__ import annotations

import re

import pytest
from django.http import HttpResponse
from django.test import Client
from pytest_django.fixtures import Settings

from postroom.accounts.models import User
from postroom.audit.models import AuditEntry
from tests.accounts.factories import PASSWORD, admin_make, user_make

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Settings) -> None:
    # PBKDF2 at Django 5.2's 1,000,000 rounds costs seconds per login on a small CI machine.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin() -> User:
    return admin_make("root")


@pytest.fixture
def as_admin(admin: User) -> Client:
    client = Client()
    client.force_login(admin)
    return client


def lock_login(username: str, limit: int) -> None:
    for number in range(limit):
        Client(REMOTE_ADDR=f"198.51.100.{number + 1}").post(
            "/login/", {"username": username, "password": f"wrong-{number}"}
        )


def lock_address(address: str, limit: int) -> None:
    client = Client(REMOTE_ADDR=address)
    for number in range(limit):
        client.post("/login/", {"username": f"someone-{number}", "password": "wrong"})


def logs_in(username: str, *, address: str = "192.0.2.1") -> bool:
    response = Client(REMOTE_ADDR=address).post(
        "/login/", {"username": username, "password": PASSWORD}
    )
    return response.status_code == 302


def text(response: HttpResponse) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", response.content.decode()).split())


def test_the_users_page_lists_locks_and_an_administrator_unlocks_a_login(
    as_admin: Client, settings: Settings
) -> None:
    user_make("sam")
    lock_login("sam", settings.AXES_FAILURE_LIMIT)
    assert not logs_in("sam")

    page = text(as_admin.get("/users/"))
    assert "Locked logins" in page
    assert f"Login name sam {settings.AXES_FAILURE_LIMIT} failed logins locked until" in page

    response = as_admin.post("/users/unlock/", {"kind": "account", "value": "sam"})
    assert response.status_code == 302 and response["Location"] == "/users/"
    assert "Logins as sam are unlocked." in text(as_admin.get("/users/"))
    assert logs_in("sam")

    entry = AuditEntry.objects.get(action="login.unlocked")
    assert (entry.actor_name, entry.subject) == ("root", "user sam")
    assert entry.changes == {"Failed logins cleared": settings.AXES_FAILURE_LIMIT}


def test_an_administrator_unlocks_an_address(as_admin: Client, settings: Settings) -> None:
    user_make("sam")
    lock_address("203.0.113.7", settings.AXES_FAILURE_LIMIT)
    assert not logs_in("sam", address="203.0.113.7")
    assert "Address 203.0.113.7" in text(as_admin.get("/users/"))

    as_admin.post("/users/unlock/", {"kind": "address", "value": "203.0.113.7"})
    assert logs_in("sam", address="203.0.113.7")
    assert AuditEntry.objects.get(action="login.unlocked").subject == "address 203.0.113.7"
    assert "Locked logins" not in text(as_admin.get("/users/"))


def test_the_users_own_page_shows_the_lock_and_unlocks_it(
    as_admin: Client, settings: Settings
) -> None:
    sam = user_make("sam")
    lock_login("sam", settings.AXES_FAILURE_LIMIT)
    page = as_admin.get(f"/users/{sam.pk}/edit/")
    assert "Logins as sam are locked until" in text(page)
    assert 'action="/users/unlock/"' in page.content.decode()

    response = as_admin.post(
        "/users/unlock/",
        {"kind": "account", "value": "sam", "next": f"/users/{sam.pk}/edit/"},
    )
    assert response["Location"] == f"/users/{sam.pk}/edit/"
    assert "are locked until" not in text(as_admin.get(f"/users/{sam.pk}/edit/"))
    assert logs_in("sam")


def test_unlock_goes_back_only_to_a_page_of_this_site(as_admin: Client) -> None:
    response = as_admin.post(
        "/users/unlock/",
        {"kind": "account", "value": "sam", "next": "https://evil.example/"},
    )
    assert response["Location"] == "/users/"


def test_an_unknown_kind_of_lock_unlocks_nothing(as_admin: Client, settings: Settings) -> None:
    user_make("sam")
    lock_login("sam", settings.AXES_FAILURE_LIMIT)
    response = as_admin.post("/users/unlock/", {"kind": "everything", "value": "sam"})
    assert response.status_code == 400
    assert not logs_in("sam")


def test_staff_cannot_unlock(settings: Settings) -> None:
    sam = user_make("sam")
    user_make("alex")
    lock_login("alex", settings.AXES_FAILURE_LIMIT)
    client = Client()
    client.force_login(sam)
    assert client.post("/users/unlock/", {"kind": "account", "value": "alex"}).status_code == 403
    assert not logs_in("alex")


def test_unlock_is_a_post_with_a_csrf_token(admin: User, settings: Settings) -> None:
    user_make("sam")
    lock_login("sam", settings.AXES_FAILURE_LIMIT)
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    assert client.get("/users/unlock/").status_code == 405
    assert client.post("/users/unlock/", {"kind": "account", "value": "sam"}).status_code == 403
    assert not logs_in("sam")

    client.get("/users/")
    token = client.cookies["csrftoken"].value
    client.post("/users/unlock/", {"kind": "account", "value": "sam", "csrfmiddlewaretoken": token})
    assert logs_in("sam")


def test_unlocking_a_lock_that_has_ended_says_so_and_audits_nothing(as_admin: Client) -> None:
    response = as_admin.post("/users/unlock/", {"kind": "account", "value": "sam"}, follow=True)
    assert "sam was not locked any more" in text(response)
    assert not AuditEntry.objects.filter(action="login.unlocked").exists()
