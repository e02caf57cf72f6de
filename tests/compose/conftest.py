"""Fixtures of the Contact Email tests: the company, a staff user with an address, contacts,
and sending as the compose page does."""

from __future__ import annotations

from typing import Any

import pytest

from postroom.accounts.models import Role, User
from postroom.company.models import Company, SendAsPolicy
from postroom.company.selectors import company_get
from postroom.compose.services import (
    ComposePreview,
    ComposeRequest,
    compose_form_key,
    message_compose,
    message_compose_preview,
)
from postroom.contacts import services
from postroom.contacts.models import Contact
from postroom.outbox.models import Message, Source
from tests.accounts.factories import user_make


def contact_make(email: str, **fields: Any) -> Contact:
    return services.contact_create(actor=None, email=email, **fields)


@pytest.fixture
def company(db: None) -> Company:
    company = company_get()
    company.name = "Acme"
    company.sender_name = "Acme"
    company.sender_email = "office@acme.example"
    company.send_as_policy = SendAsPolicy.AS_USER
    company.save()
    return company


@pytest.fixture
def alice(db: None) -> User:
    return user_make(
        "alice", email="alice@acme.example", display_name="Alice Smith", role=Role.STAFF
    )


@pytest.fixture
def ann(db: None) -> Contact:
    return contact_make(
        "ann@globex.example", first_name="Ann", last_name="Lee", organization_name="Globex"
    )


@pytest.fixture
def bob(db: None) -> Contact:
    return contact_make("Bob@Initech.example", first_name="Bob", last_name="Stone")


def compose_send(*, user: User, send_key: str | None = None, **fields: Any) -> list[Message]:
    """Send as the Contact Email page does: `message_compose` with the form's fields."""
    return message_compose(
        request=ComposeRequest(
            source=Source.COMPOSE,
            user=user,
            idempotency_key=compose_form_key(key=send_key),
            **fields,
        )
    )


def compose_preview(*, user: User, number: int = 1, **fields: Any) -> ComposePreview:
    """Preview as the Contact Email page does."""
    return message_compose_preview(
        request=ComposeRequest(source=Source.COMPOSE, user=user, **fields), number=number
    )
