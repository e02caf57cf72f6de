"""The SMTP credentials pages: create (the password once), change, remove, who may."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from postroom.audit.models import AuditEntry
from postroom.smtpd.models import SmtpCredential
from postroom.smtpd.services import CredentialSettings, credential_create
from tests.accounts.factories import admin_make, user_make

pytestmark = pytest.mark.django_db

FORM = {
    "name": "ERP invoices",
    "username": "erp-invoices",
    "allowed_senders": "invoices@acme.example\n@billing.acme.example",
    "rate_limit_per_minute": "600",
    "max_recipients": "100",
    "networks_without_auth": "",
    "is_active": "on",
}


@pytest.fixture
def admin_client(client: Client) -> Client:
    client.force_login(admin_make("root", email="root@acme.example"))
    return client


def test_a_credential_is_created_with_its_password_shown_once_and_kept_hashed(
    admin_client: Client,
) -> None:
    page = admin_client.post("/smtp-credentials/new/", FORM).content.decode()
    password = re.search(r'id="smtp-password">([^<]+)<', page)
    assert password is not None
    credential = SmtpCredential.objects.get()
    assert credential.allowed_senders == ["@billing.acme.example", "invoices@acme.example"]
    assert password.group(1) not in credential.password_hash
    listing = admin_client.get("/smtp-credentials/").content.decode()
    assert "erp-invoices" in listing and password.group(1) not in listing
    assert "SHA-256 fingerprint" in listing or "made when the listener first starts" in listing
    assert password.group(1) not in str(AuditEntry.objects.values_list("changes", flat=True))


def test_bad_input_is_said_next_to_its_field_and_nothing_is_saved(admin_client: Client) -> None:
    bad = {**FORM, "allowed_senders": "not an address", "networks_without_auth": "10.0.0.300"}
    page = admin_client.post("/smtp-credentials/new/", bad).content.decode()
    assert "is neither an address nor @domain" in page
    assert not SmtpCredential.objects.exists()
    bad = {**FORM, "networks_without_auth": "10.0.0.300"}
    page = admin_client.post("/smtp-credentials/new/", bad).content.decode()
    assert "is not a network" in page


def test_a_credential_is_changed_and_removed(admin_client: Client) -> None:
    admin_client.post("/smtp-credentials/new/", FORM)
    credential = SmtpCredential.objects.get()
    changed = {**FORM, "max_recipients": "5", "networks_without_auth": "192.168.10.0/24"}
    admin_client.post(f"/smtp-credentials/{credential.pk}/", changed)
    credential.refresh_from_db()
    assert credential.max_recipients == 5
    assert credential.networks_without_auth == ["192.168.10.0/24"]
    admin_client.post(f"/smtp-credentials/{credential.pk}/delete/")
    assert not SmtpCredential.objects.exists()


def test_only_administrators_manage_credentials(client: Client) -> None:
    client.force_login(user_make("sam", email="sam@acme.example"))
    assert client.get("/smtp-credentials/").status_code == 403
    assert client.post("/smtp-credentials/new/", FORM).status_code == 403


def test_passwords_are_letters_and_digits_so_no_client_reads_one_as_an_option() -> None:
    # token_urlsafe's "-" first made swaks read a password as an option (a CI failure).
    settings = CredentialSettings(name="x", allowed_senders=("@acme.example",))
    passwords = [
        credential_create(actor=None, username=f"system{n}", values=settings)[1] for n in range(40)
    ]
    assert all(len(p) == 32 and p.isascii() and p.isalnum() for p in passwords)
    assert len(set(passwords)) == 40
