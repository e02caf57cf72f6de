"""The User Master pages: the list, new user, edit user, and a user's own profile."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from postroom.accounts.models import Role, User
from postroom.audit.models import AuditEntry
from tests.accounts.factories import PASSWORD, admin_make, user_make

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Settings) -> None:
    # PBKDF2 at Django 5.2's 1,000,000 rounds costs seconds per login on a small CI machine.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin() -> User:
    return admin_make("root", email="root@example.com")


@pytest.fixture
def as_admin(admin: User) -> Client:
    client = Client()
    client.force_login(admin)
    return client


def new_user_form(**overrides: str) -> dict[str, str]:
    form = {
        "username": "alice",
        "display_name": "Alice Smith",
        "email": "alice@example.com",
        "role": Role.STAFF,
        "password": "",
        "password_confirm": "",
    }
    form.update(overrides)
    return form


def edit_form(user: User, **overrides: object) -> dict[str, object]:
    form: dict[str, object] = {
        "display_name": user.display_name,
        "email": user.email,
        "role": user.role,
        "new_password": "",
        "new_password_confirm": "",
    }
    if user.is_active:
        form["is_active"] = "on"
    form.update(overrides)
    return {key: value for key, value in form.items() if value is not None}


def field_errors(html: str) -> str:
    """The text of every error shown next to a field or above the form."""
    return " ".join(re.findall(r'class="(?:field|form)-error"[^>]*>([^<]*)<', html))


def login_works(username: str, password: str) -> bool:
    return Client().login(username=username, password=password)


# The list


def test_the_list_shows_each_user_and_flags_those_without_an_address(as_admin: Client) -> None:
    user_make("sam", display_name="Sam Jones", email="")
    user_make("mia", display_name="Mia Chen", role=Role.MARKETER)
    html = as_admin.get("/users/").content.decode()
    assert "Sam Jones" in html and "Mia Chen" in html and "mia@example.com" in html
    assert "Marketer" in html
    flags = re.findall(r'<span class="badge warn" title="([^"]+)">no email address</span>', html)
    assert len(flags) == 1
    assert "from their own address" in flags[0]
    assert "1 active user without an email address" in html


def test_the_count_of_users_without_an_address_ignores_inactive_users(
    as_admin: Client, admin: User
) -> None:
    user_make("sam", email="")
    gone = user_make("old", email="")
    User.objects.filter(pk=gone.pk).update(is_active=False)
    user_make("tom", email="")
    html = as_admin.get("/users/").content.decode()
    assert "2 active users without an email address" in html
    assert html.count(">no email address</span>") == 3


def test_no_warning_when_every_active_user_has_an_address(as_admin: Client) -> None:
    user_make("sam")
    html = as_admin.get("/users/").content.decode()
    assert "without an email address" not in html


def test_the_list_searches_and_filters(as_admin: Client) -> None:
    user_make("sam", display_name="Sam Jones")
    user_make("mia", display_name="Mia Chen", role=Role.MARKETER, email="")
    inactive = user_make("old", display_name="Old Timer")
    User.objects.filter(pk=inactive.pk).update(is_active=False)

    def names(query: str) -> set[str]:
        html = as_admin.get("/users/" + query).content.decode()
        return set(re.findall(r'<td><a href="/users/\d+/edit/">([^<]+)</a>', html))

    assert names("?q=jones") == {"Sam Jones"}
    assert names("?q=MIA") == {"Mia Chen"}
    assert names("?q=sam%40example") == {"Sam Jones"}
    assert names("?role=marketer") == {"Mia Chen"}
    assert names("?status=inactive") == {"Old Timer"}
    assert names("?email=missing") == {"Mia Chen"}
    assert names("?role=staff&status=active") == {"Sam Jones"}
    assert names("?role=nonsense") == {"root", "Sam Jones", "Mia Chen", "Old Timer"}


def test_the_list_says_users_are_deactivated_not_deleted(as_admin: Client) -> None:
    assert "never deleted" in as_admin.get("/users/").content.decode()


# New user


def test_a_new_user_with_a_typed_password_can_log_in(as_admin: Client) -> None:
    response = as_admin.post(
        "/users/new/",
        new_user_form(
            password="amber-orchard-violin-31", password_confirm="amber-orchard-violin-31"
        ),
    )
    assert response.status_code == 302 and response["Location"] == "/users/"
    user = User.objects.get(username="alice")
    assert (user.display_name, user.email, user.role) == (
        "Alice Smith",
        "alice@example.com",
        "staff",
    )
    assert login_works("alice", "amber-orchard-violin-31")


def test_a_generated_password_is_shown_once_and_logs_in(as_admin: Client) -> None:
    response = as_admin.post("/users/new/", new_user_form())
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    assert "it is not shown again" in html
    match = re.search(r'<code class="secret" id="one-time-password">([^<]+)</code>', html)
    assert match
    password = match.group(1)
    assert login_works("alice", password)
    for page in ["/users/", f"/users/{User.objects.get(username='alice').pk}/edit/", "/audit/"]:
        assert password not in as_admin.get(page).content.decode()


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"email": "alice@"}, "email", "not valid"),
        ({"email": "alice at example.com"}, "email", "not valid"),
        ({"display_name": "Alice\r\nBcc: victim@example.com"}, "display_name", "line break"),
        ({"username": "alice smith"}, "username", "no spaces"),
        ({"password": "password1", "password_confirm": "password1"}, "password", "too common"),
        ({"password": "alice-1", "password_confirm": "alice-1"}, "password", "too short"),
        (
            {"password": "amber-orchard-violin-31", "password_confirm": "amber-orchard-violin-32"},
            "password_confirm",
            "differ",
        ),
    ],
)
def test_a_bad_new_user_is_refused_with_the_error_next_to_its_field(
    as_admin: Client, overrides: dict[str, str], field: str, message: str
) -> None:
    response = as_admin.post("/users/new/", new_user_form(**overrides))
    assert response.status_code == 200
    html = response.content.decode()
    assert message in field_errors(html)
    block = html.split(f'for="id_{field}"')[0].rsplit('<div class="field', 1)[1]
    assert block.startswith(" has-error")
    assert not User.objects.filter(username__in=["alice", "alice smith"]).exists()


def test_an_address_another_user_has_in_other_case_is_refused(as_admin: Client) -> None:
    user_make("sam", email="sam@example.com")
    response = as_admin.post("/users/new/", new_user_form(email="SAM@Example.com"))
    assert "already the address of the user" in field_errors(response.content.decode())
    assert not User.objects.filter(username="alice").exists()


def test_a_login_another_user_has_is_refused(as_admin: Client) -> None:
    user_make("alice", email="a1@example.com")
    response = as_admin.post("/users/new/", new_user_form(username="ALICE"))
    assert "taken" in field_errors(response.content.decode())


# Edit


def test_an_administrator_edits_a_user(as_admin: Client) -> None:
    sam = user_make("sam", display_name="Sam")
    response = as_admin.post(
        f"/users/{sam.pk}/edit/",
        edit_form(
            sam,
            display_name="Sam Jones",
            email="Sam.Jones@Example.com",
            role=Role.MARKETER,
            is_active=None,
        ),
    )
    assert response.status_code == 302
    sam.refresh_from_db()
    assert (sam.display_name, sam.email, sam.role, sam.is_active) == (
        "Sam Jones",
        "Sam.Jones@example.com",
        Role.MARKETER,
        False,
    )
    assert sam.check_password(PASSWORD)
    assert not login_works("sam", PASSWORD)  # deactivated


def test_an_administrator_sets_a_new_password_for_a_user(as_admin: Client) -> None:
    sam = user_make("sam")
    as_admin.post(
        f"/users/{sam.pk}/edit/",
        edit_form(
            sam, new_password="new-brass-kettle-88", new_password_confirm="new-brass-kettle-88"
        ),
    )
    assert login_works("sam", "new-brass-kettle-88")
    assert not login_works("sam", PASSWORD)


def test_an_administrator_generates_a_new_password_shown_once(as_admin: Client) -> None:
    sam = user_make("sam")
    response = as_admin.post(f"/users/{sam.pk}/edit/", edit_form(sam, generate_password="on"))
    match = re.search(
        r'<code class="secret" id="one-time-password">([^<]+)</code>', response.content.decode()
    )
    assert match and login_works("sam", match.group(1))


def test_a_weak_new_password_changes_nothing(as_admin: Client) -> None:
    sam = user_make("sam", display_name="Sam")
    response = as_admin.post(
        f"/users/{sam.pk}/edit/",
        edit_form(sam, display_name="Samuel", new_password="sam", new_password_confirm="sam"),
    )
    assert "too short" in field_errors(response.content.decode())
    sam.refresh_from_db()
    assert sam.display_name == "Sam" and sam.check_password(PASSWORD)


def test_an_administrator_cannot_deactivate_themself_on_the_page(
    as_admin: Client, admin: User
) -> None:
    admin_make("other")
    response = as_admin.post(f"/users/{admin.pk}/edit/", edit_form(admin, is_active=None))
    assert "cannot deactivate your own user" in field_errors(response.content.decode())
    admin.refresh_from_db()
    assert admin.is_active


def test_an_administrator_cannot_remove_their_own_administrator_role_on_the_page(
    as_admin: Client, admin: User
) -> None:
    response = as_admin.post(f"/users/{admin.pk}/edit/", edit_form(admin, role=Role.STAFF))
    assert "cannot remove your own administrator role" in field_errors(response.content.decode())
    admin.refresh_from_db()
    assert admin.role == Role.ADMINISTRATOR


def test_an_administrator_changing_their_own_password_stays_logged_in(
    as_admin: Client, admin: User
) -> None:
    as_admin.post(
        f"/users/{admin.pk}/edit/",
        edit_form(
            admin, new_password="new-brass-kettle-88", new_password_confirm="new-brass-kettle-88"
        ),
    )
    assert as_admin.get("/users/").status_code == 200
    assert login_works("root", "new-brass-kettle-88")


def test_editing_a_user_that_does_not_exist_is_404(as_admin: Client) -> None:
    assert as_admin.get("/users/99999/edit/").status_code == 404


def test_the_edit_page_explains_that_history_is_kept(as_admin: Client) -> None:
    sam = user_make("sam")
    html = as_admin.get(f"/users/{sam.pk}/edit/").content.decode()
    assert "never deleted" in html and "keeps its history" in html
    assert "delete" not in re.sub(r"never deleted", "", html).lower()


# Roles


@pytest.mark.parametrize("role", [Role.STAFF, Role.MARKETER])
def test_staff_and_marketers_are_forbidden_the_user_pages(role: Role) -> None:
    person = user_make("person", role=role)
    other = user_make("other")
    client = Client()
    client.force_login(person)
    for url in ["/users/", "/users/new/", f"/users/{other.pk}/edit/", f"/users/{person.pk}/edit/"]:
        assert client.get(url).status_code == 403, url
    assert client.post("/users/new/", new_user_form()).status_code == 403
    response = client.post(f"/users/{person.pk}/edit/", edit_form(person, role=Role.ADMINISTRATOR))
    assert response.status_code == 403
    person.refresh_from_db()
    assert person.role == role
    assert not User.objects.filter(username="alice").exists()


def test_the_users_link_is_shown_to_administrators_only(as_admin: Client) -> None:
    assert 'href="/administration/"' in as_admin.get("/profile/").content.decode()
    assert 'href="/users/"' in as_admin.get("/administration/").content.decode()
    staff = Client()
    staff.force_login(user_make("sam"))
    assert 'href="/users/"' not in staff.get("/profile/").content.decode()


# Profile


def test_a_user_edits_their_own_name_and_the_case_of_their_address() -> None:
    # A new address is confirmed from a link first: tests/web/test_email_change.py.
    sam = user_make("sam", display_name="Sam", email="sam@example.com")
    client = Client()
    client.force_login(sam)
    response = client.post("/profile/", {"display_name": "Sam Jones", "email": "Sam@Example.com"})
    assert response.status_code == 302 and response["Location"] == "/profile/"
    sam.refresh_from_db()
    assert (sam.display_name, sam.email) == ("Sam Jones", "Sam@example.com")
    entry = AuditEntry.objects.get(action="user.profile_updated")
    assert entry.actor == sam


def test_posting_a_role_or_active_flag_to_the_profile_does_nothing() -> None:
    sam = user_make("sam", display_name="Sam")
    client = Client()
    client.force_login(sam)
    client.post(
        "/profile/",
        {
            "display_name": "Sam",
            "email": "sam@example.com",
            "role": "administrator",
            "is_active": "",
            "username": "boss",
        },
    )
    sam.refresh_from_db()
    assert (sam.username, sam.role, sam.is_active) == ("sam", Role.STAFF, True)


def test_the_profile_refuses_a_bad_name_and_a_taken_address() -> None:
    user_make("alice")
    sam = user_make("sam", display_name="Sam")
    client = Client()
    client.force_login(sam)
    html = client.post("/profile/", {"display_name": "Sam\nX", "email": "x@"}).content.decode()
    errors = field_errors(html)
    assert "line break" in errors and "not valid" in errors
    html = client.post(
        "/profile/", {"display_name": "Sam", "email": "ALICE@example.com"}
    ).content.decode()
    assert "already the address of the user" in field_errors(html)
    sam.refresh_from_db()
    assert (sam.display_name, sam.email) == ("Sam", "sam@example.com")


def test_the_profile_links_to_the_password_change_and_warns_without_an_address() -> None:
    sam = user_make("sam", email="")
    client = Client()
    client.force_login(sam)
    html = client.get("/profile/").content.decode()
    assert 'href="/account/password/"' in html
    assert "You have no email address yet" in html
