"""User Master services: the rules every way of changing a user goes through."""

from __future__ import annotations

import json
import re

import pytest
from django.core.mail import EmailMessage
from django.db import IntegrityError

from postroom.accounts import services
from postroom.accounts.models import Role, User
from postroom.audit.models import AuditEntry
from postroom.core.errors import PermissionDeniedError, ValidationError
from tests.accounts.factories import PASSWORD, admin_make, user_make

pytestmark = pytest.mark.django_db


def create(**overrides: object) -> tuple[User, str | None]:
    values: dict[str, object] = {
        "actor": None,
        "username": "alice",
        "display_name": "Alice Smith",
        "email": "alice@example.com",
        "role": Role.STAFF,
        "password": PASSWORD,
    }
    values.update(overrides)
    return services.user_create(**values)  # type: ignore[arg-type]


# Email addresses


def test_an_address_is_stored_normalized() -> None:
    user, _ = create(email="  Alice@Example.COM ")
    assert user.email == "Alice@example.com"


@pytest.mark.parametrize("email", ["alice@", "alice example.com", "a b@example.com", "a@localhost"])
def test_a_malformed_address_is_refused_with_the_reason(email: str) -> None:
    with pytest.raises(ValidationError) as caught:
        create(email=email)
    assert caught.value.field == "email"
    assert "not valid" in caught.value.message
    assert not User.objects.exists()


def test_an_address_another_user_has_in_other_case_is_refused() -> None:
    create(username="alice", email="alice@example.com")
    with pytest.raises(ValidationError) as caught:
        create(username="alice2", email="ALICE@example.com")
    assert caught.value.field == "email"
    assert "is already the address of the user" in caught.value.message
    assert User.objects.count() == 1


def test_the_database_itself_refuses_an_address_twice_in_other_case() -> None:
    create(username="alice", email="alice@example.com")
    with pytest.raises(IntegrityError):
        User.objects.create(username="bob", email="Alice@Example.com")


def test_users_without_an_address_are_allowed_and_not_duplicates_of_each_other() -> None:
    create(username="alice", email="")
    create(username="bob", email="")
    assert User.objects.filter(email="").count() == 2


# Display names


@pytest.mark.parametrize(
    "name",
    [
        "Alice\r\nBcc: victim@example.com",
        "Alice\nSmith",
        "Alice\x00",
        "Alice\tSmith",
        "Ali\x85ce",  # NEL, a C1 control
        "Alice\u2028Smith",  # line separator
        "Alice \u202eevil",  # right-to-left override
    ],
)
def test_control_characters_in_the_display_name_are_refused(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        create(display_name=name)
    assert caught.value.field == "display_name"
    assert re.search("line break|NUL|control character|tab|bidi", caught.value.message)
    assert not User.objects.exists()


def test_a_display_name_with_accents_and_punctuation_is_kept() -> None:
    user, _ = create(display_name="  Zoë O'Brien-Łukasiewicz (Sales) ")
    assert user.display_name == "Zoë O'Brien-Łukasiewicz (Sales)"


# Logins, roles, passwords


def test_a_login_differing_only_in_case_is_refused() -> None:
    create(username="alice")
    with pytest.raises(ValidationError) as caught:
        create(username="Alice", email="other@example.com")
    assert caught.value.field == "username"


@pytest.mark.parametrize("username", ["", "al ice", "alice!", "x" * 151])
def test_a_malformed_login_is_refused(username: str) -> None:
    with pytest.raises(ValidationError) as caught:
        create(username=username)
    assert caught.value.field == "username"


def test_an_unknown_role_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        create(role="superuser")
    assert caught.value.field == "role"


@pytest.mark.parametrize("password", ["short1", "password123", "12345678901", "alice@example.com"])
def test_a_weak_password_is_refused(password: str) -> None:
    with pytest.raises(ValidationError) as caught:
        create(password=password)
    assert caught.value.field == "password"
    assert not User.objects.exists()


def test_without_a_password_a_strong_one_is_generated_and_works() -> None:
    user, generated = create(password=None)
    assert generated is not None and len(generated) >= 22
    assert user.check_password(generated)
    _, other = create(username="bob", email="bob@example.com", password=None)
    assert other != generated


def test_with_a_typed_password_nothing_is_generated() -> None:
    user, generated = create()
    assert generated is None
    assert user.check_password(PASSWORD)


def test_a_staff_user_cannot_create_users() -> None:
    staff = user_make("sam")
    with pytest.raises(PermissionDeniedError):
        create(actor=staff)


# Guard rails on edits


def update(actor: User, user: User, **overrides: object) -> User:
    values: dict[str, object] = {
        "display_name": user.display_name,
        "email": user.email,
        "role": user.role,
        "is_active": user.is_active,
    }
    values.update(overrides)
    return services.user_update(actor=actor, user=user, **values)  # type: ignore[arg-type]


def test_an_administrator_cannot_deactivate_themself() -> None:
    admin = admin_make()
    admin_make("other")
    with pytest.raises(ValidationError) as caught:
        update(admin, User.objects.get(pk=admin.pk), is_active=False)
    assert caught.value.field == "is_active"
    assert User.objects.get(pk=admin.pk).is_active


def test_an_administrator_cannot_remove_their_own_administrator_role() -> None:
    admin = admin_make()
    admin_make("other")
    with pytest.raises(ValidationError) as caught:
        update(admin, User.objects.get(pk=admin.pk), role=Role.STAFF)
    assert caught.value.field == "role"
    assert User.objects.get(pk=admin.pk).role == Role.ADMINISTRATOR


def test_an_administrator_can_demote_another_while_one_remains() -> None:
    admin = admin_make()
    other = admin_make("other")
    update(admin, other, role=Role.MARKETER, is_active=False)
    other.refresh_from_db()
    assert (other.role, other.is_active) == (Role.MARKETER, False)


def test_two_administrators_demoting_each_other_leave_one() -> None:
    a = admin_make("a")
    b = admin_make("b")
    b_as_loaded_by_its_request = User.objects.get(pk=b.pk)
    update(a, b, role=Role.STAFF)
    with pytest.raises(ValidationError) as caught:
        update(b_as_loaded_by_its_request, User.objects.get(pk=a.pk), role=Role.STAFF)
    assert "last active administrator" in caught.value.message
    assert User.objects.get(pk=a.pk).role == Role.ADMINISTRATOR


def test_an_edit_may_change_an_address_to_another_case_of_itself() -> None:
    admin = admin_make()
    user = user_make("sam", email="sam@example.com")
    update(admin, user, email="Sam@example.com")
    assert User.objects.get(pk=user.pk).email == "Sam@example.com"


def test_an_edit_to_an_address_another_user_has_is_refused() -> None:
    admin = admin_make()
    user = user_make("sam")
    with pytest.raises(ValidationError) as caught:
        update(admin, user, email="ROOT@example.com")
    assert caught.value.field == "email"


# Passwords set by an administrator


def test_an_administrator_sets_a_typed_password_and_the_old_one_stops_working() -> None:
    admin = admin_make()
    user = user_make("sam")
    assert (
        services.user_set_password(actor=admin, user=user, password="new-brass-kettle-88") is None
    )
    user.refresh_from_db()
    assert user.check_password("new-brass-kettle-88")
    assert not user.check_password(PASSWORD)


def test_a_generated_password_reset_works() -> None:
    admin = admin_make()
    user = user_make("sam")
    generated = services.user_set_password(actor=admin, user=user)
    user.refresh_from_db()
    assert generated and user.check_password(generated)


def test_a_weak_password_reset_is_refused() -> None:
    admin = admin_make()
    user = user_make("sam")
    with pytest.raises(ValidationError) as caught:
        services.user_set_password(actor=admin, user=user, password="sam12345")
    assert caught.value.field == "new_password"
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


# Profile


def confirm_url(token: str) -> str:
    return f"https://postroom.example/profile/email/{token}/"


def test_a_profile_update_changes_the_name_and_mails_a_link_for_a_new_address(
    mailoutbox: list[EmailMessage],
) -> None:
    user = user_make("sam", display_name="Sam", email="sam@example.com")
    pending = services.profile_update(
        user=user, display_name="Sam Jones", email="sam.jones@example.com", confirm_url=confirm_url
    )
    user.refresh_from_db()
    assert (user.display_name, user.email, user.role, user.is_active) == (
        "Sam Jones",
        "sam@example.com",
        Role.STAFF,
        True,
    )
    assert pending == "sam.jones@example.com"
    (mail,) = mailoutbox
    assert mail.to == ["sam.jones@example.com"]
    assert "https://postroom.example/profile/email/" in str(mail.body)


def test_a_profile_update_to_a_taken_address_is_refused() -> None:
    user_make("alice")
    sam = user_make("sam")
    with pytest.raises(ValidationError):
        services.profile_update(
            user=sam, display_name="", email="Alice@example.com", confirm_url=confirm_url
        )


# Audit


def test_every_change_is_audited_and_no_password_is_recorded() -> None:
    admin = admin_make()
    user, generated = create(actor=admin, password=None)
    update(admin, user, display_name="Alice Jones", role=Role.MARKETER)
    services.user_set_password(actor=admin, user=user, password="new-brass-kettle-88")
    services.profile_update(
        user=user, display_name="Alice J.", email="aj@example.com", confirm_url=confirm_url
    )

    entries = list(AuditEntry.objects.filter(subject="user alice").order_by("id"))
    assert [e.action for e in entries] == [
        "user.created",
        "user.updated",
        "user.password_set",
        "user.profile_updated",
        "user.email_change_requested",
    ]
    created, updated, password_set, profile, email_change = entries
    assert email_change.changes == {
        "Email address": {"from": "alice@example.com", "to": "aj@example.com"}
    }
    assert created.actor == admin and created.actor_name == "root"
    assert created.changes == {
        "Login": "alice",
        "Display name": "Alice Smith",
        "Email address": "alice@example.com",
        "Role": "Staff",
        "Active": True,
        "Password": {"changed": True, "secret": "generated"},
    }
    assert updated.changes == {
        "Display name": {"from": "Alice Smith", "to": "Alice Jones"},
        "Role": {"from": "Staff", "to": "Marketer"},
    }
    assert password_set.changes == {"Password": {"changed": True, "secret": "replaced"}}
    assert profile.actor == user

    everything = json.dumps([[e.actor_name, e.subject, e.changes] for e in entries])
    assert generated is not None and generated not in everything
    assert "new-brass-kettle-88" not in everything
    assert PASSWORD not in json.dumps(list(AuditEntry.objects.values_list("changes", flat=True)))


def test_an_edit_that_changes_nothing_writes_no_audit_entry() -> None:
    admin = admin_make()
    user = user_make("sam")
    before = AuditEntry.objects.count()
    update(admin, user)
    services.profile_update(
        user=user, display_name=user.display_name, email=user.email, confirm_url=confirm_url
    )
    assert AuditEntry.objects.count() == before


# First administrator


def test_the_first_administrator_is_made_once_with_a_one_time_password() -> None:
    made = services.user_ensure_first_admin()
    assert made is not None
    user, password = made
    assert (user.username, user.role, user.is_active) == ("admin", Role.ADMINISTRATOR, True)
    assert user.check_password(password)
    assert services.user_ensure_first_admin() is None
    assert User.objects.count() == 1
    assert password not in json.dumps(list(AuditEntry.objects.values_list("changes", flat=True)))


def test_no_first_administrator_is_made_when_any_user_exists() -> None:
    user_make("sam")
    assert services.user_ensure_first_admin() is None
    assert not User.objects.filter(role=Role.ADMINISTRATOR).exists()


def test_two_first_runs_generate_different_passwords() -> None:
    first = services.user_ensure_first_admin()
    User.objects.all().delete()
    second = services.user_ensure_first_admin()
    assert first and second and first[1] != second[1]
