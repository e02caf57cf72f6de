"""A user's display name goes into the From line of their mail: an encoded word that decodes
to a line break is refused whether an administrator or the user types it."""

from __future__ import annotations

import pytest

from postroom.accounts import services
from postroom.accounts.models import Role, User
from postroom.core.errors import ValidationError
from tests.accounts.factories import admin_make, user_make

pytestmark = pytest.mark.django_db

# The finding: a profile display name like this injected lines into From.
INJECTION = "=?utf-8?q?Alice=0D=0ABcc:_everyone@corp.example?="


def test_an_administrator_cannot_create_a_user_with_it() -> None:
    with pytest.raises(ValidationError, match="encoded word") as caught:
        services.user_create(
            actor=admin_make(),
            username="alice",
            display_name=INJECTION,
            email="alice@corp.example",
            role=Role.STAFF,
        )
    assert caught.value.field == "display_name"
    assert not User.objects.filter(username="alice").exists()


def test_an_administrator_cannot_give_it_to_a_user() -> None:
    alice = user_make("alice", email="alice@corp.example", display_name="Alice")
    with pytest.raises(ValidationError, match="encoded word"):
        services.user_update(
            actor=admin_make(),
            user=alice,
            display_name=INJECTION,
            email=alice.email,
            role=Role.STAFF,
            is_active=True,
        )
    alice.refresh_from_db()
    assert alice.display_name == "Alice"


def test_a_user_cannot_put_it_in_their_profile() -> None:
    alice = user_make("alice", email="alice@corp.example", display_name="Alice")
    with pytest.raises(ValidationError, match="encoded word") as caught:
        services.profile_update(
            user=alice, display_name=INJECTION, email=alice.email, confirm_url=str
        )
    assert caught.value.field == "display_name"
    alice.refresh_from_db()
    assert alice.display_name == "Alice"
