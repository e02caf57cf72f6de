"""Login on every page, logout, password change, CSRF."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, reverse
from pytest_django.fixtures import Settings

from postroom.accounts.models import User
from tests.accounts.factories import PASSWORD, admin_make, user_make

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "new-brass-kettle-88"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Settings) -> None:
    # PBKDF2 at Django 5.2's 1,000,000 rounds costs seconds per login on a small CI machine.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# The login page, and the probes a load balancer and Prometheus call (postroom.ops: they
# show no data; /metrics has its own token).
OPEN_WITHOUT_LOGIN = {"login", "healthz", "readyz", "metrics"}


def pages_without_arguments() -> list[str]:
    """Every named route that needs no argument, from the live URL configuration."""
    names: list[str] = []

    def walk(patterns: list[URLPattern | URLResolver]) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns)
            elif pattern.name:
                try:
                    reverse(pattern.name)
                except NoReverseMatch:
                    continue
                names.append(pattern.name)

    walk(get_resolver().url_patterns)
    return names


def test_the_known_pages_are_among_those_checked() -> None:
    expected = {
        "dashboard",
        "user_list",
        "user_create",
        "profile",
        "password_change",
        "company_smtp",
        "audit_log",
    }
    assert expected <= set(pages_without_arguments())


def test_every_page_sends_an_anonymous_visitor_to_the_login() -> None:
    client = Client()
    checked = []
    for name in pages_without_arguments():
        if name in OPEN_WITHOUT_LOGIN:
            continue
        url = reverse(name)
        response = client.get(url)
        assert response.status_code == 302, (name, response.status_code)
        assert response["Location"].startswith("/login/?next="), (name, response["Location"])
        checked.append(name)
    assert len(checked) >= 7


def test_pages_with_arguments_also_need_a_login() -> None:
    sam = user_make("sam")
    response = Client().get(f"/users/{sam.pk}/edit/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_an_anonymous_post_creates_nothing() -> None:
    response = Client().post(
        "/users/new/",
        {"username": "mallory", "role": "administrator", "display_name": "", "email": ""},
    )
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert not User.objects.filter(username="mallory").exists()


# Login and logout


def test_the_login_page_is_open_and_a_good_password_lands_on_the_dashboard() -> None:
    admin_make("root")
    client = Client()
    assert client.get("/login/").status_code == 200
    response = client.post("/login/", {"username": "root", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_login_returns_to_the_page_asked_for() -> None:
    admin_make("root")
    client = Client()
    response = client.post(
        "/login/?next=/users/", {"username": "root", "password": PASSWORD, "next": "/users/"}
    )
    assert response["Location"] == "/users/"


def test_a_wrong_password_is_refused_with_a_message() -> None:
    admin_make("root")
    client = Client()
    response = client.post("/login/", {"username": "root", "password": "wrong-password-1"})
    assert response.status_code == 200
    assert "correct username and password" in response.content.decode()
    assert client.get("/").status_code == 302


def test_an_inactive_user_cannot_log_in() -> None:
    sam = user_make("sam")
    User.objects.filter(pk=sam.pk).update(is_active=False)
    response = Client().post("/login/", {"username": "sam", "password": PASSWORD})
    assert response.status_code == 200
    assert not Client().login(username="sam", password=PASSWORD)


def test_a_deactivated_users_open_session_ends() -> None:
    sam = user_make("sam")
    client = Client()
    client.force_login(sam)
    assert client.get("/profile/").status_code == 200
    User.objects.filter(pk=sam.pk).update(is_active=False)
    assert client.get("/profile/").status_code == 302


def test_logout_is_a_post_and_ends_the_session() -> None:
    client = Client()
    client.force_login(user_make("sam"))
    assert client.get("/logout/").status_code == 405
    assert client.get("/profile/").status_code == 200
    response = client.post("/logout/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert client.get("/profile/").status_code == 302


# Password change


def test_a_user_changes_their_password_and_stays_logged_in() -> None:
    user_make("sam")
    client = Client()
    assert client.login(username="sam", password=PASSWORD)
    assert client.get("/account/password/").status_code == 200
    response = client.post(
        "/account/password/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302 and response["Location"] == "/account/password/done/"
    assert client.get("/account/password/done/").status_code == 200
    assert client.get("/profile/").status_code == 200
    assert Client().login(username="sam", password=NEW_PASSWORD)
    assert not Client().login(username="sam", password=PASSWORD)


def test_a_password_change_needs_the_old_password_and_a_strong_new_one() -> None:
    user_make("sam")
    client = Client()
    client.login(username="sam", password=PASSWORD)
    wrong_old = client.post(
        "/account/password/",
        {"old_password": "nope", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert wrong_old.status_code == 200 and "old password was entered incorrectly" in (
        wrong_old.content.decode()
    )
    weak = client.post(
        "/account/password/",
        {"old_password": PASSWORD, "new_password1": "12345678", "new_password2": "12345678"},
    )
    assert weak.status_code == 200 and "too common" in weak.content.decode()
    assert Client().login(username="sam", password=PASSWORD)


def test_a_password_change_ends_the_users_other_sessions() -> None:
    user_make("sam")
    elsewhere = Client()
    elsewhere.login(username="sam", password=PASSWORD)
    here = Client()
    here.login(username="sam", password=PASSWORD)
    here.post(
        "/account/password/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert here.get("/profile/").status_code == 200
    assert elsewhere.get("/profile/").status_code == 302


# CSRF


def test_a_login_post_without_a_csrf_token_is_refused() -> None:
    admin_make("root")
    client = Client(enforce_csrf_checks=True)
    response = client.post("/login/", {"username": "root", "password": PASSWORD})
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("url", "form"),
    [
        (
            "/users/new/",
            {"username": "mallory", "role": "administrator", "display_name": "", "email": ""},
        ),
        ("/profile/", {"display_name": "Mallory", "email": "mallory@example.com"}),
        ("/logout/", {}),
    ],
)
def test_a_post_without_a_csrf_token_is_refused(url: str, form: dict[str, str]) -> None:
    admin = admin_make("root")
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    assert client.post(url, form).status_code == 403
    assert not User.objects.filter(username="mallory").exists()
    admin.refresh_from_db()
    assert admin.display_name == ""
    assert client.get("/profile/").status_code == 200  # still logged in


def test_the_same_post_with_the_pages_token_is_accepted() -> None:
    admin = admin_make("root")
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    client.get("/profile/")
    token = client.cookies["csrftoken"].value
    response = client.post(
        "/profile/",
        {"display_name": "Root", "email": "root@example.com", "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302
    admin.refresh_from_db()
    assert admin.display_name == "Root"
