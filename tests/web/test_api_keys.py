"""The API keys page: administrators create keys (shown once), see them, and revoke them."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from postroom.accounts.api_keys import api_key_hash
from postroom.accounts.models import ApiKey, User
from postroom.audit.models import AuditEntry
from postroom.company.selectors import company_get
from tests.accounts.factories import admin_make, user_make

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Settings) -> None:
    # PBKDF2 at Django 5.2's 1,000,000 rounds costs seconds per login on a small CI machine.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin() -> User:
    return admin_make("root", email="root@acme.example")


@pytest.fixture
def as_admin(admin: User) -> Client:
    client = Client()
    client.force_login(admin)
    return client


@pytest.fixture
def alice() -> User:
    return user_make("alice", email="alice@acme.example", display_name="Alice Smith")


def create(client: Client, **overrides: object) -> tuple[object, str | None]:
    form: dict[str, object] = {
        "name": "ERP invoices",
        "scopes": ["send", "read"],
        "sender_user": "",
        "allowed_from": "",
        "rate_limit_per_minute": "600",
    }
    form.update(overrides)
    response = client.post("/api-keys/new/", form)
    match = re.search(
        r'<code class="secret" id="api-key">(pr_[^<]+)</code>', response.content.decode()
    )
    return response, match.group(1) if match else None


def test_only_administrators_reach_the_keys_pages(alice: User, admin: User) -> None:
    key = ApiKey.objects.create(name="k", prefix="00000000", key_hash="0" * 64, scopes=["send"])
    staff = Client()
    staff.force_login(alice)
    for url in ("/api-keys/", "/api-keys/new/", f"/api-keys/{key.pk}/revoke/"):
        assert staff.get(url).status_code == 403, url
        assert Client().get(url).status_code == 302, url  # to the login page
    assert staff.post(f"/api-keys/{key.pk}/revoke/").status_code == 403
    assert ApiKey.objects.get().revoked_at is None


def test_the_administration_links_the_page_for_administrators_only(
    as_admin: Client, alice: User
) -> None:
    # The section's tabs are on every administration page, the current one marked.
    page = as_admin.get("/webhooks/").content.decode()
    assert '<a href="/api-keys/">API keys</a>' in page
    assert '<a href="/webhooks/" aria-current="page">Webhooks</a>' in page
    staff = Client()
    staff.force_login(alice)
    assert 'href="/api-keys/"' not in staff.get("/").content.decode()
    assert 'href="/administration/"' not in staff.get("/").content.decode()


def test_a_created_key_is_shown_once_and_works(as_admin: Client) -> None:
    company = company_get()
    company.sender_email = "office@acme.example"
    company.save()
    response, key = create(as_admin)
    assert response.status_code == 200  # type: ignore[attr-defined]
    assert key is not None
    assert "no-store" in response["Cache-Control"]  # type: ignore[index]
    api_key = ApiKey.objects.get()
    assert api_key.key_hash == api_key_hash(key)
    assert api_key.scopes == ["send", "read"]
    assert api_key.created_by is not None and api_key.created_by.username == "root"
    listing = as_admin.get("/api-keys/").content.decode()
    assert "ERP invoices" in listing
    assert f"pr_{api_key.prefix}_…" in listing
    assert key not in listing
    sent = Client().post(
        "/api/v1/messages",
        '{"to": ["bob@example.org"], "subject": "Hi", "text": "Hello"}',
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert sent.status_code == 202
    assert "never" not in as_admin.get("/api-keys/").content.decode().split("ERP invoices")[1]


def test_the_form_shows_errors_next_to_their_field(as_admin: Client) -> None:
    response, key = create(as_admin, name="", scopes=[], allowed_from="not an address")
    assert key is None
    html = response.content.decode()  # type: ignore[attr-defined]
    assert html.count('class="field-error"') == 3
    assert "Allowed From address 1" in html
    assert not ApiKey.objects.exists()


def test_a_key_can_be_restricted_to_a_user_and_addresses(as_admin: Client, alice: User) -> None:
    _, key = create(as_admin, sender_user=str(alice.pk), allowed_from="Invoices@Acme.example\n\n")
    assert key is not None
    api_key = ApiKey.objects.get()
    assert api_key.sender_user == alice
    assert api_key.allowed_from == ["Invoices@acme.example"]
    listing = as_admin.get("/api-keys/").content.decode()
    assert "only user alice, Invoices@acme.example" in listing


def test_revoking_asks_first_then_stops_the_key(as_admin: Client) -> None:
    _, key = create(as_admin)
    api_key = ApiKey.objects.get()
    confirm = as_admin.get(f"/api-keys/{api_key.pk}/revoke/")
    assert "Revoke key" in confirm.content.decode()
    assert ApiKey.objects.get().revoked_at is None
    response = as_admin.post(f"/api-keys/{api_key.pk}/revoke/", follow=True)
    assert "is revoked" in response.content.decode()
    assert ApiKey.objects.get().revoked_at is not None
    assert "revoked" in as_admin.get("/api-keys/").content.decode()
    call = Client().get("/api/v1/messages", headers={"Authorization": f"Bearer {key}"})
    assert call.status_code == 401
    actions = list(AuditEntry.objects.order_by("id").values_list("action", flat=True))
    assert actions[-2:] == ["api_key.created", "api_key.revoked"]


def test_revoking_an_unknown_key_is_404(as_admin: Client) -> None:
    assert as_admin.post("/api-keys/999/revoke/").status_code == 404
