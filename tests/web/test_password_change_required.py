"""A password someone else chose (the first administrator's, `createadmin --no-input`'s, one an
administrator set or generated for a user) must be replaced at the first login: until then
every page leads to Change password. API keys are not affected."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from pytest_django.fixtures import Settings

from postroom.accounts import services
from postroom.accounts.api_keys import api_key_create
from postroom.accounts.models import ApiScope, Role, User
from postroom.audit.models import AuditEntry
from tests.accounts.factories import PASSWORD, admin_make, user_make

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "new-brass-kettle-88"
PAGES = ["/", "/users/", "/profile/", "/outbox/", "/audit/"]


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Settings) -> None:
    # PBKDF2 at Django 5.2's 1,000,000 rounds costs seconds per login on a small CI machine.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def logged_in_as(username: str, password: str) -> Client:
    client = Client()
    response = client.post("/login/", {"username": username, "password": password})
    assert response.status_code == 302, response.content.decode()
    return client


def change_password(client: Client, old: str, new: str = NEW_PASSWORD) -> str:
    response = client.post(
        "/account/password/",
        {"old_password": old, "new_password1": new, "new_password2": new},
    )
    return response["Location"] if response.status_code == 302 else response.content.decode()


def asks_for_a_new_password(client: Client) -> bool:
    """Whether every page sends the user to Change password."""
    return all(client.get(page)["Location"] == "/account/password/" for page in PAGES)


def test_the_first_administrator_must_choose_a_password_at_first_login() -> None:
    made = services.user_ensure_first_admin()
    assert made is not None
    admin, one_time = made
    assert admin.has_temporary_password

    client = logged_in_as("admin", one_time)
    assert asks_for_a_new_password(client)
    page = client.get("/account/password/")
    assert page.status_code == 200
    assert "one-time password" in page.content.decode()

    assert change_password(client, one_time) == "/account/password/done/"
    assert client.get("/").status_code == 200
    assert client.get("/users/").status_code == 200
    admin.refresh_from_db()
    assert not admin.has_temporary_password
    entry = AuditEntry.objects.get(action="user.password_changed")
    assert (entry.actor_name, entry.subject) == ("admin", "user admin")
    assert entry.changes == {"Password": {"changed": True, "secret": "replaced"}}


def test_the_new_password_cannot_be_the_one_time_password() -> None:
    made = services.user_ensure_first_admin()
    assert made is not None
    client = logged_in_as("admin", made[1])
    page = change_password(client, made[1], made[1])
    assert "different from your current one" in page
    assert asks_for_a_new_password(client)


def test_createadmin_without_input_makes_an_administrator_who_must_change_it() -> None:
    out = StringIO()
    call_command("createadmin", "--no-input", "--username", "ops", stdout=out)
    match = re.search(r"One-time password: (\S+)", out.getvalue())
    assert match
    assert "asked to choose their own password" in out.getvalue()
    assert User.objects.get(username="ops").has_temporary_password
    assert asks_for_a_new_password(logged_in_as("ops", match.group(1)))


def test_a_password_typed_at_the_command_line_by_its_owner_is_kept() -> None:
    user, generated = services.user_create(
        actor=None,
        username="ops",
        display_name="",
        email="",
        role=Role.ADMINISTRATOR,
        password=PASSWORD,
    )
    assert generated is None and not user.has_temporary_password
    assert logged_in_as("ops", PASSWORD).get("/").status_code == 200


@pytest.mark.parametrize("typed", [True, False], ids=["typed", "generated"])
def test_a_user_an_administrator_creates_must_change_the_password(typed: bool) -> None:
    admin = admin_make("root")
    user, generated = services.user_create(
        actor=admin,
        username="alice",
        display_name="Alice",
        email="alice@example.com",
        role=Role.STAFF,
        password=PASSWORD if typed else None,
    )
    assert user.has_temporary_password
    client = logged_in_as("alice", PASSWORD if typed else str(generated))
    assert asks_for_a_new_password(client)
    change_password(client, PASSWORD if typed else str(generated))
    assert client.get("/").status_code == 200


def test_a_password_an_administrator_sets_for_someone_else_must_be_changed() -> None:
    admin = admin_make("root")
    sam = user_make("sam")
    assert not sam.has_temporary_password
    services.user_set_password(actor=admin, user=sam, password=NEW_PASSWORD)
    assert asks_for_a_new_password(logged_in_as("sam", NEW_PASSWORD))


def test_an_administrators_own_new_password_needs_no_change() -> None:
    admin = admin_make("root")
    services.user_set_password(actor=admin, user=admin, password=NEW_PASSWORD)
    admin.refresh_from_db()
    assert not admin.has_temporary_password


def test_users_made_by_the_test_factories_need_no_change() -> None:
    user_make("sam")
    assert logged_in_as("sam", PASSWORD).get("/").status_code == 200


def test_a_user_who_must_change_the_password_can_still_log_out() -> None:
    admin = admin_make("root")
    services.user_set_password(actor=admin, user=user_make("sam"), password=NEW_PASSWORD)
    client = logged_in_as("sam", NEW_PASSWORD)
    response = client.post("/logout/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert "_auth_user_id" not in client.session


def test_a_form_post_elsewhere_is_not_carried_out_before_the_change() -> None:
    admin = admin_make("root")
    sam = user_make("sam", display_name="Sam")
    services.user_set_password(actor=admin, user=sam, password=NEW_PASSWORD)
    client = logged_in_as("sam", NEW_PASSWORD)
    response = client.post("/profile/", {"display_name": "Mallory", "email": "sam@example.com"})
    assert response["Location"] == "/account/password/"
    sam.refresh_from_db()
    assert sam.display_name == "Sam"


def test_api_keys_keep_working_for_a_user_who_must_change_the_password() -> None:
    admin = admin_make("root", email="root@example.com")
    _, key = api_key_create(actor=admin, name="ERP", scopes=[ApiScope.READ])
    services.user_set_password(actor=admin_make("other"), user=admin, password=NEW_PASSWORD)
    # Even with that user's session cookie in the same client, the API answers the key.
    client = logged_in_as("root", NEW_PASSWORD)
    response = client.get("/api/v1/messages", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.content
