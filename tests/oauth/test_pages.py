"""The OAuth pages through Django's test client, with the real provider on loopback: set up,
Sign in (the redirect with PKCE), the provider's return, a wrong state, who may see what, and
no secret on any page."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from postroom.accounts.models import User
from postroom.core.secrets import secret_decrypt
from postroom.oauth.models import COMPANY_OWNER, OAuthConnection, user_owner
from postroom.outbox.pauses import server_pause
from tests.accounts.factories import user_make
from tests.oauth.conftest import CLIENT_ID, CLIENT_SECRET, MAILBOX, provider_accepts
from tests.support.oauth_server import OAuthServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client: Client, admin: User) -> Client:
    client.force_login(admin)
    return client


def form_for(provider: OAuthServer) -> dict[str, str]:
    return {
        "provider": "generic",
        "flow": "delegated",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "authorization_endpoint": provider.authorize_url,
        "token_endpoint": provider.token_url,
        "scope": "https://mail.example/smtp offline_access",
    }


def sign_in_on_the_pages(client: Client, sign_in_url: str, account: str = MAILBOX) -> str:
    """Press Sign in, accept at the provider, come back: the page Postroom shows then."""
    to_provider = client.post(sign_in_url)
    assert to_provider.status_code == 302
    code, state = provider_accepts(to_provider["Location"], account=account)
    back = client.get("/oauth/callback/", {"code": code, "state": state}, follow=True)
    return back.content.decode()


def test_an_administrator_sets_up_and_signs_in_and_no_secret_shows(
    admin_client: Client, provider: OAuthServer
) -> None:
    page = admin_client.get("/company/oauth/").content.decode()
    assert "http://testserver/oauth/callback/" in page  # to register at the provider
    saved = admin_client.post("/company/oauth/", form_for(provider), follow=True)
    assert "OAuth settings saved." in saved.content.decode()
    to_provider = admin_client.post("/company/oauth/sign-in/")
    query = parse_qs(urlsplit(to_provider["Location"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["client_id"] == [CLIENT_ID]
    page = sign_in_on_the_pages(admin_client, "/company/oauth/sign-in/")
    assert "Signed in: Postroom keeps the sign-in" in page
    connection = OAuthConnection.objects.get(owner=COMPANY_OWNER)
    secrets = [
        CLIENT_SECRET,
        secret_decrypt(connection.access_token_encrypted),
        secret_decrypt(connection.refresh_token_encrypted),
    ]
    for url in ["/company/oauth/", "/", "/audit/"]:
        shown = admin_client.get(url).content.decode()
        assert not any(secret in shown for secret in secrets), url


def test_an_answer_with_another_state_is_refused(
    admin_client: Client, provider: OAuthServer
) -> None:
    admin_client.post("/company/oauth/", form_for(provider))
    to_provider = admin_client.post("/company/oauth/sign-in/")
    code, _ = provider_accepts(to_provider["Location"])
    page = admin_client.get("/oauth/callback/", {"code": code, "state": "forged"}, follow=True)
    assert "did not match the sign-in" in page.content.decode()
    assert not OAuthConnection.objects.get().is_signed_in


def test_a_cancelled_sign_in_says_what_the_provider_said(
    admin_client: Client, provider: OAuthServer
) -> None:
    admin_client.post("/company/oauth/", form_for(provider))
    to_provider = admin_client.post("/company/oauth/sign-in/")
    state = parse_qs(urlsplit(to_provider["Location"]).query)["state"][0]
    page = admin_client.get(
        "/oauth/callback/", {"error": "access_denied", "state": state}, follow=True
    )
    assert "The provider did not sign you in: access_denied" in page.content.decode()


def test_staff_may_not_touch_the_company_sign_in(client: Client, provider: OAuthServer) -> None:
    client.force_login(user_make("sam", email="sam@acme.example"))
    assert client.get("/company/oauth/").status_code == 403
    assert client.post("/company/oauth/sign-in/").status_code == 403


def test_a_user_connects_their_own_mailbox_with_the_companys_app(
    admin_client: Client, provider: OAuthServer
) -> None:
    alice = user_make("alice", email="alice@acme.example")
    client = Client()
    client.force_login(alice)
    page = client.get("/profile/mailbox/").content.decode()
    assert "An administrator must first set up the company's OAuth app" in page
    admin_client.post("/company/oauth/", form_for(provider))
    page = client.get("/profile/mailbox/").content.decode()
    assert "Connect my mailbox" in page
    page = sign_in_on_the_pages(client, "/profile/mailbox/sign-in/", account="alice@acme.example")
    assert "Signed in" in page
    connection = OAuthConnection.objects.get(owner=user_owner(alice.pk))
    assert connection.is_signed_in and connection.user == alice
    shown = client.get("/profile/mailbox/").content.decode()
    assert "It leaves through your own mailbox" in shown
    assert secret_decrypt(connection.refresh_token_encrypted) not in shown
    removed = client.post("/profile/mailbox/disconnect/", follow=True)
    assert "The OAuth sign-in and its tokens are removed." in removed.content.decode()
    assert not OAuthConnection.objects.filter(owner=user_owner(alice.pk)).exists()


def test_a_relay_refusing_password_login_offers_the_way_to_oauth(admin_client: Client) -> None:
    server_pause(
        server="smtp.office365.com:587",
        code=535,
        reason="The server refused password login: basic authentication is disabled "
        "(535 5.7.139 Authentication unsuccessful, basic authentication is disabled).",
    )
    for url in ["/", "/company/smtp/"]:
        page = admin_client.get(url).content.decode()
        assert "Switch to OAuth:" in page and 'href="/company/oauth/"' in page, url
