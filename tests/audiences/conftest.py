"""Contacts, sent mail and users for the audiences tests, made through the real services."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from pytest_django.fixtures import Settings

from postroom.accounts.models import Role, User
from postroom.contacts import services as contact_services
from postroom.contacts.models import Contact
from postroom.outbox.models import Recipient, RecipientStatus
from tests.accounts.factories import admin_make, user_make
from tests.outbox.message_factories import message_queue


@pytest.fixture(autouse=True)
def own_data_dir(settings: Settings, tmp_path: Path) -> Path:
    """Uploads (CSV imports) in the test's own directory: the database rolls back, files
    would not."""
    settings.DATA_DIR = tmp_path / "data"
    return settings.DATA_DIR


@pytest.fixture
def marketer(db: Any) -> User:
    return user_make("mia", role=Role.MARKETER, display_name="Mia Marketer")


@pytest.fixture
def staff(db: Any) -> User:
    return user_make("sam", role=Role.STAFF)


@pytest.fixture
def admin(db: Any) -> User:
    return admin_make("root")


def contact_make(email: str, **fields: Any) -> Contact:
    return contact_services.contact_create(actor=None, email=email, **fields)


def mail_sent_to(address: str, *, at: dt.datetime, status: str = RecipientStatus.SENT) -> None:
    """A message queued to `address` whose delivery ended with `status` at `at` (the
    outbox's record of it, as the worker leaves it)."""
    message = message_queue(to=[address])
    Recipient.objects.filter(message=message).update(
        status=status, sent_at=at if status == RecipientStatus.SENT else None, updated_at=at
    )
