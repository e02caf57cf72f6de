"""Fixtures of the Contact Email tests: the company, a staff user with an address, contacts."""

from __future__ import annotations

from typing import Any

import pytest

from postroom.accounts.models import Role, User
from postroom.company.models import Company, SendAsPolicy
from postroom.company.selectors import company_get
from postroom.contacts import services
from postroom.contacts.models import Contact
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
