"""User Master: create and change users, with the checks that keep an install manageable.

Every change writes an audit entry in the same transaction. Passwords are never recorded:
the entry says only that one was set, generated or replaced.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from django.contrib.auth import password_validation
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from email_validator import EmailNotValidError, validate_email

from postroom.accounts import selectors
from postroom.accounts.models import Role, User
from postroom.accounts.user_email import email_change_request, user_email_holder_check
from postroom.audit.services import audit_record
from postroom.core.errors import PermissionDeniedError, ValidationError
from postroom.mail.header_text import check_header_phrase

# token_urlsafe(16) gives 128 bits from the OS CSPRNG (22 characters): far beyond the
# guessing resistance NIST SP 800-63B asks of a memorized secret, and short enough to type.
GENERATED_PASSWORD_BYTES = 16
# The model fields' lengths; Django's AbstractUser uses 150 for the username.
USERNAME_MAX_LENGTH = 150
DISPLAY_NAME_MAX_LENGTH = 150
FIRST_ADMIN_USERNAME = "admin"


# Pure checks, shared by the forms (to show every error next to its field at once) and by
# the services below (so the command line and the API get the same rules).


def user_username_clean(value: str) -> str:
    username = User.normalize_username(value.strip())
    if not username:
        raise ValidationError("Enter a login name.", field="username")
    if len(username) > USERNAME_MAX_LENGTH:
        raise ValidationError(
            f"Use at most {USERNAME_MAX_LENGTH} characters for the login name.",
            field="username",
        )
    try:
        UnicodeUsernameValidator()(username)
    except DjangoValidationError:
        raise ValidationError(
            "Use only letters, digits and @ . + - _ in the login name (no spaces).",
            field="username",
        ) from None
    return username


def user_display_name_clean(value: str) -> str:
    name = value.strip()
    if len(name) > DISPLAY_NAME_MAX_LENGTH:
        raise ValidationError(
            f"Use at most {DISPLAY_NAME_MAX_LENGTH} characters for the display name.",
            field="display_name",
        )
    # It goes into the From line of the user's mail.
    check_header_phrase(name, label="Display name", what="the display name", field="display_name")
    return name


def user_email_clean(value: str) -> str:
    """Return the normalized address, or "" for none (allowed, but flagged on the user list)."""
    email = value.strip()
    if not email:
        return ""
    try:
        # Deliverability (a DNS lookup) is not checked: an internal relay may accept
        # addresses whose domain the public DNS does not know.
        return validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise ValidationError(f"This email address is not valid: {error}", field="email") from None


def user_role_clean(value: str) -> Role:
    if value not in Role.values:
        choices = ", ".join(Role.values)
        raise ValidationError(f"Choose a role: one of {choices}.", field="role")
    return Role(value)


def user_password_check(password: str, *, user: User, field: str = "password") -> None:
    """Apply Django's password validators (length, common passwords, similarity to the user)."""
    try:
        password_validation.validate_password(password, user=user)
    except DjangoValidationError as error:
        raise ValidationError(" ".join(error.messages), field=field) from None


def user_password_generate() -> str:
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


# Audit, in the audit log's convention (postroom.audit.services): changes are keyed by the
# field's label; a plain value for a new user, {"from", "to"} for an edit, and for the
# password only {"changed": True, "secret": ...}: its value never reaches the log.

_LABELS = {
    "username": "Login",
    "display_name": "Display name",
    "email": "Email address",
    "role": "Role",
    "is_active": "Active",
}
PASSWORD_LABEL = "Password"  # noqa: S105 - a label, not a password


def _audit(*, actor: User | None, action: str, user: User, changes: dict[str, Any]) -> None:
    audit_record(actor=actor, action=action, subject=f"user {user.username}", changes=changes)


def _audited(field: str, value: Any) -> Any:
    return Role(value).label if field == "role" else value


def _password_change(what: str) -> dict[str, Any]:
    return {"changed": True, "secret": what}


def _is_temporary(*, actor: User | None, user: User, generated: str | None) -> bool:
    """Whether the user must replace this password at their next login: yes when it was
    generated (someone will read it off a screen and hand it over), or when an administrator
    typed it for someone else. actor=None with a typed password is the person at the command
    line (`postroom createadmin`) choosing their own."""
    if generated is not None:
        return True
    return actor is not None and actor.pk != user.pk


def _require_administrator(actor: User | None) -> None:
    # actor=None is the command line or the first run, which act as the install itself.
    if actor is not None and not (actor.is_active and actor.is_administrator):
        raise PermissionDeniedError("Only an administrator can manage users.")


# Services.


def user_create(
    *,
    actor: User | None,
    username: str,
    display_name: str,
    email: str,
    role: str,
    password: str | None = None,
) -> tuple[User, str | None]:
    """Create an active user. Without `password`, generate one and return it to show once."""
    _require_administrator(actor)
    username = user_username_clean(username)
    if selectors.user_username_taken(username=username):
        raise ValidationError(
            f"The login name {username!r} is taken (compared without regard to case). "
            "Choose another one.",
            field="username",
        )
    user = User(
        username=username,
        display_name=user_display_name_clean(display_name),
        email=user_email_clean(email),
        role=user_role_clean(role),
        is_active=True,
    )
    user_email_holder_check(user.email)

    generated: str | None = None
    if password:
        user_password_check(password, user=user)
    else:
        password = generated = user_password_generate()
    user.set_password(password)
    user.has_temporary_password = _is_temporary(actor=actor, user=user, generated=generated)

    try:
        with transaction.atomic():
            user.save()
            _audit(
                actor=actor,
                action="user.created",
                user=user,
                changes={
                    **{_LABELS[field]: _audited(field, getattr(user, field)) for field in _LABELS},
                    PASSWORD_LABEL: _password_change("generated" if generated else "set"),
                },
            )
    except IntegrityError:
        # Another request created the same login or address between the checks and the save.
        raise ValidationError(
            "Another user with this login name or email address was just created. "
            "Reload the user list and choose another one.",
            field="username",
        ) from None
    return user, generated


def user_update(
    *,
    actor: User,
    user: User,
    display_name: str,
    email: str,
    role: str,
    is_active: bool,
) -> User:
    """Change a user's name, address, role and active flag (an administrator's edit)."""
    _require_administrator(actor)
    new_values: dict[str, Any] = {
        "display_name": user_display_name_clean(display_name),
        "email": user_email_clean(email),
        "role": user_role_clean(role),
        "is_active": is_active,
    }
    user_email_holder_check(new_values["email"], exclude_user_pk=user.pk)
    stays_administrator = new_values["role"] == Role.ADMINISTRATOR and is_active
    if actor.pk == user.pk:
        _own_edit_check(is_active=is_active, stays_administrator=stays_administrator)

    with transaction.atomic():
        # Lock the administrators' rows so two administrators demoting each other at the
        # same moment cannot leave the install with none; judge by the rows, not by a
        # `user` object that another request may have made stale.
        is_administrator_now = (
            selectors.user_active_administrators().select_for_update().filter(pk=user.pk).exists()
        )
        if is_administrator_now and not stays_administrator:
            others = list(
                selectors.user_active_administrators()
                .select_for_update()
                .exclude(pk=user.pk)
                .values_list("pk", flat=True)
            )
            if not others:
                raise ValidationError(
                    f"{user.name} is the last active administrator. Make another user an "
                    "administrator first, or nobody could manage Postroom.",
                    field="is_active" if not is_active else "role",
                )
        changed_fields, changes = _apply(user, new_values)
        if changes:
            try:
                with transaction.atomic():
                    user.save(update_fields=changed_fields)
            except IntegrityError:
                raise ValidationError(
                    "Another user was just given this email address. Choose another one.",
                    field="email",
                ) from None
            _audit(actor=actor, action="user.updated", user=user, changes=changes)
    return user


def _own_edit_check(*, is_active: bool, stays_administrator: bool) -> None:
    if not is_active:
        raise ValidationError(
            "You cannot deactivate your own user. Another administrator can do it.",
            field="is_active",
        )
    if not stays_administrator:
        raise ValidationError(
            "You cannot remove your own administrator role. Another administrator can do it.",
            field="role",
        )


def user_set_password(*, actor: User | None, user: User, password: str | None = None) -> str | None:
    """Set `user`'s password; without `password`, generate one and return it to show once.

    The user's other sessions end, because Django ties a session to the password hash. A
    password set for someone else must be changed by them at their next login.
    """
    _require_administrator(actor)
    generated: str | None = None
    if password:
        user_password_check(password, user=user, field="new_password")
    else:
        password = generated = user_password_generate()
    with transaction.atomic():
        user.set_password(password)
        user.has_temporary_password = _is_temporary(actor=actor, user=user, generated=generated)
        user.save(update_fields=["password", "has_temporary_password"])
        _audit(
            actor=actor,
            action="user.password_set",
            user=user,
            changes={PASSWORD_LABEL: _password_change("generated" if generated else "replaced")},
        )
    return generated


def user_change_own_password(*, user: User, password: str) -> None:
    """A user replaces their own password (checked by the form: the old one, the rules).

    A temporary password stops being temporary: the user alone knows the new one.
    """
    with transaction.atomic():
        user.set_password(password)
        user.has_temporary_password = False
        user.save(update_fields=["password", "has_temporary_password"])
        _audit(
            actor=user,
            action="user.password_changed",
            user=user,
            changes={PASSWORD_LABEL: _password_change("replaced")},
        )


def profile_update(
    *, user: User, display_name: str, email: str, confirm_url: Callable[[str], str]
) -> str:
    """A user changes their own display name, and asks for a new address.

    The name changes at once, and so does removing the address or changing its case. A new
    address does not: a link to confirm it is mailed there, made by `confirm_url` from a token
    (user_email). Return the address that link went to, or "".
    """
    pending_email = ""
    new_values: dict[str, Any] = {
        "display_name": user_display_name_clean(display_name),
        "email": user_email_clean(email),
    }
    if new_values["email"] and new_values["email"].lower() != user.email.lower():
        # Not applied: mailed to the new address first (postroom.accounts.user_email).
        pending_email = new_values.pop("email")
        user_email_holder_check(pending_email, exclude_user_pk=user.pk)
    changed_fields, changes = _apply(user, new_values)
    if changes:
        with transaction.atomic():
            user.save(update_fields=changed_fields)
            _audit(actor=user, action="user.profile_updated", user=user, changes=changes)
    if pending_email:
        email_change_request(user=user, new_email=pending_email, confirm_url=confirm_url)
    return pending_email


def user_ensure_first_admin() -> tuple[User, str] | None:
    """On an install without any user, create the administrator `admin` and return its
    one-time password, which must be changed at the first login; otherwise return None.
    There is never a fixed default password."""
    if User.objects.exists():
        return None
    try:
        user, password = user_create(
            actor=None,
            username=FIRST_ADMIN_USERNAME,
            display_name="Administrator",
            email="",
            role=Role.ADMINISTRATOR,
        )
    except ValidationError:
        # Another process started at the same moment and created it first.
        if User.objects.exists():
            return None
        raise
    assert password is not None  # no password was given, so one was generated
    return user, password


def _apply(user: User, new_values: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Set the changed attributes on `user`; return their names and their audit record."""
    changed_fields: list[str] = []
    changes: dict[str, Any] = {}
    for field, new in new_values.items():
        old = getattr(user, field)
        if old != new:
            changed_fields.append(field)
            changes[_LABELS[field]] = {
                "from": _audited(field, old),
                "to": _audited(field, new),
            }
            setattr(user, field, new)
    return changed_fields, changes
