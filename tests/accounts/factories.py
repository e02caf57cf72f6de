"""Users for tests, made through the real service (so they obey every rule a real one does)."""

from __future__ import annotations

from postroom.accounts import services
from postroom.accounts.models import Role, User

# Long and uncommon enough for Django's default password validators.
PASSWORD = "quiet-harbor-lantern-47"


def user_make(
    username: str,
    *,
    role: str = Role.STAFF,
    email: str | None = None,
    display_name: str = "",
    password: str = PASSWORD,
) -> User:
    user, _ = services.user_create(
        actor=None,
        username=username,
        display_name=display_name,
        email=f"{username}@example.com" if email is None else email,
        role=role,
        password=password,
    )
    return user


def admin_make(username: str = "root", *, email: str | None = None) -> User:
    return user_make(username, role=Role.ADMINISTRATOR, email=email)
