"""OAuth in the browser (issue 12), against a real OAuth 2.0 provider on loopback and a
submission server that checks each XOAUTH2 token with it: the administrator sets up the
company's app, signs in at the provider's page, switches the relay to OAuth 2.0 and Check
connection logs in with the token; then a user connects their own mailbox."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from postroom.accounts.models import User
from postroom.company.selectors import company_get
from postroom.oauth.models import OAuthConnection, user_owner
from tests.accounts.factories import PASSWORD, user_make
from tests.browser.site import PageOpener, log_in, open_administration, screenshot
from tests.oauth.conftest import CLIENT_ID, CLIENT_SECRET, MAILBOX, oauth_relay
from tests.support.certs import CertAuthority
from tests.support.oauth_server import OAuthServer
from tests.support.smtpd import ScriptedSmtpServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def provider(live_server: LiveServer) -> Iterator[OAuthServer]:
    with OAuthServer(default_account=MAILBOX) as server:
        callback = f"{live_server.url}/oauth/callback/"
        server.register_client(CLIENT_ID, secret=CLIENT_SECRET, redirect_uri=callback)
        yield server


def accept_at_the_provider(page: Page, account: str) -> None:
    expect(page.get_by_role("heading")).to_contain_text("Sign in to Test Provider")
    page.get_by_label("Email").fill(account)
    page.get_by_role("button", name="Accept").click()


def test_an_administrator_moves_the_relay_to_oauth_and_a_user_connects_their_mailbox(
    admin_page: Page,
    open_page: PageOpener,
    provider: OAuthServer,
    test_ca: CertAuthority,
) -> None:
    page = admin_page
    with ScriptedSmtpServer(oauth_relay(test_ca, provider)) as server:
        company = company_get()
        company.sender_email = MAILBOX
        company.smtp_host, company.smtp_port = "127.0.0.1", server.port
        company.smtp_login, company.smtp_ca_certificate = MAILBOX, test_ca.pem
        company.save()

        open_administration(page, "Company")
        page.get_by_role("link", name="OAuth sign-in").click()
        expect(page.locator("#oauth-redirect-uri")).to_contain_text("/oauth/callback/")
        page.get_by_label("Provider").select_option("generic")
        page.get_by_label("Client ID").fill(CLIENT_ID)
        page.get_by_label("Client secret").fill(CLIENT_SECRET)
        page.get_by_text("Endpoints and scopes").click()
        page.get_by_label("Authorization endpoint").fill(provider.authorize_url)
        page.get_by_label("Token endpoint").fill(provider.token_url)
        page.get_by_label("Scopes").fill("https://mail.example/smtp offline_access")
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_text("OAuth settings saved.")).to_be_visible()
        page.get_by_role("button", name="Sign in", exact=True).click()
        accept_at_the_provider(page, MAILBOX)
        expect(page.get_by_text("Signed in: Postroom keeps the sign-in")).to_be_visible()
        expect(page.locator(".badge.ok").first).to_have_text("ready")
        expect(page.locator("body")).not_to_contain_text(CLIENT_SECRET)
        screenshot(page, "oauth-company-signed-in")

        page.get_by_role("navigation", name="Company").get_by_role(
            "link", name="SMTP Server Information"
        ).click()
        page.get_by_role("link", name="Edit", exact=True).click()
        page.locator("#smtp-form details > summary").click()  # Advanced
        page.get_by_label("Authentication method").select_option("XOAUTH2")
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_text("SMTP Server Information saved.")).to_be_visible()
        page.get_by_role("button", name="Check connection").click()
        expect(page.locator("#check-result .badge.ok").first).to_have_text("Connection works")
        expect(page.locator("#check-result li[data-step='auth']")).to_contain_text("XOAUTH2")
        assert [(a.login, a.is_success) for a in server.auth_attempts] == [(MAILBOX, True)]

    alice: User = user_make("alice", email="alice@acme.example")
    alice.set_password(PASSWORD)
    alice.save()
    mine = open_page()
    log_in(mine, username="alice", password=PASSWORD)
    mine.goto("/profile/")
    mine.get_by_role("link", name="My mailbox").click()
    mine.get_by_role("button", name="Connect my mailbox").click()
    accept_at_the_provider(mine, "alice@acme.example")
    expect(mine.get_by_text("It leaves through your own mailbox")).to_be_visible()
    screenshot(mine, "oauth-own-mailbox")
    assert OAuthConnection.objects.get(owner=user_owner(alice.pk)).is_signed_in
