"""Company → DKIM without a browser: who may use it, the private key never on the page, what
bad input gets."""

from __future__ import annotations

import pytest
from django.test import Client

from postroom.accounts.models import Role, User
from postroom.company.selectors import company_get
from postroom.core.secrets import secret_decrypt
from postroom.dkim.models import DkimKey, KeyState
from postroom.dkim.services import dkim_key_create

pytestmark = pytest.mark.django_db

PAGE = "/company/dkim/"


def make_user(username: str, role: str, email: str = "") -> User:
    return User.objects.create(username=username, role=role, email=email)


@pytest.fixture
def admin_web(client: Client) -> Client:
    client.force_login(make_user("ada", Role.ADMINISTRATOR))
    return client


@pytest.mark.parametrize("role", [Role.STAFF, Role.MARKETER])
def test_only_administrators_may_see_or_change_keys(client: Client, role: str) -> None:
    key = dkim_key_create(actor=None, domain="example.com")
    client.force_login(make_user("someone", role))
    assert client.get(PAGE).status_code == 403
    assert client.post(f"{PAGE}new/", {"domain": "example.com"}).status_code == 403
    for action in ("check", "start", "retire"):
        assert client.post(f"{PAGE}{key.pk}/{action}/").status_code == 403
    assert DkimKey.objects.get().state == KeyState.WAITING


def test_the_page_lists_every_sending_domain_and_never_the_private_key(
    admin_web: Client,
) -> None:
    company = company_get()
    company.sender_email = "office@acme.example"
    company.save()
    make_user("bo", Role.STAFF, email="bo@bo-consulting.example")
    key = dkim_key_create(actor=None, domain="acme.example", algorithm="ed25519-sha256")
    html = admin_web.get(PAGE).content.decode()
    assert 'id="domain-acme.example"' in html
    assert 'id="domain-bo-consulting.example"' in html
    assert html.index("acme.example") < html.index("bo-consulting.example")
    assert key.record_value in html
    assert secret_decrypt(key.private_key_encrypted) not in html
    assert key.private_key_encrypted not in html


def test_a_bad_selector_is_refused_with_its_reason_and_nothing_is_made(
    admin_web: Client,
) -> None:
    response = admin_web.post(
        f"{PAGE}new/",
        {"domain": "example.com", "algorithm": "rsa-sha256", "selector": "no spaces"},
        follow=True,
    )
    assert "“no spaces” cannot be a selector" in response.content.decode()
    assert not DkimKey.objects.exists()


def test_an_unknown_key_says_so(admin_web: Client) -> None:
    response = admin_web.post(f"{PAGE}999/check/", follow=True)
    assert "This DKIM key does not exist (any more)." in response.content.decode()
