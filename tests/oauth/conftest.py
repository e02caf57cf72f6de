"""An OAuth provider on loopback (tests/support/oauth_server.py) and a company relay that
logs in to a scripted SMTP server with its tokens (XOAUTH2)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from postroom.accounts.models import User
from postroom.company.models import AuthMethod, Company
from postroom.company.selectors import company_get
from postroom.oauth import services
from postroom.oauth.models import COMPANY_OWNER, Flow, OAuthConnection, Provider
from tests.accounts.factories import admin_make
from tests.support.certs import CertAuthority
from tests.support.oauth_server import OAuthServer
from tests.support.smtpd import ScriptedSmtpServer, SmtpdScript

CLIENT_ID = "postroom-app"
CLIENT_SECRET = "app-secret-do-not-show-1"  # noqa: S105 (a test provider's)
# Django's test client calls the site "testserver".
CALLBACK = "http://testserver/oauth/callback/"
MAILBOX = "office@acme.example"


@pytest.fixture(autouse=True)
def mail_through_the_outbox(settings: Any) -> None:
    """Alerts are real outbox mail here (pytest-django would collect them in memory)."""
    settings.EMAIL_BACKEND = "postroom.outbox.backend.OutboxEmailBackend"


@pytest.fixture
def provider() -> Iterator[OAuthServer]:
    with OAuthServer(default_account=MAILBOX) as server:
        server.register_client(CLIENT_ID, secret=CLIENT_SECRET, redirect_uri=CALLBACK)
        yield server


@pytest.fixture
def admin(db: None) -> User:
    company = company_get()
    company.sender_email = "postroom@acme.example"
    company.save()
    return admin_make("root", email="root@acme.example")


def app_settings(server: OAuthServer, **changes: str) -> services.OAuthSettingsInput:
    values = {
        "provider": Provider.GENERIC,
        "flow": Flow.DELEGATED,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "authorization_endpoint": server.authorize_url,
        "token_endpoint": server.token_url,
        "scope": "https://mail.example/smtp offline_access",
        **changes,
    }
    return services.OAuthSettingsInput(**values)


def provider_accepts(start_url: str, *, account: str = MAILBOX) -> tuple[str, str]:
    """Do what the person does on the provider's page: sign in as `account`, Accept.
    Returns (code, state) from the redirect to Postroom."""
    with httpx.Client(timeout=5) as http:
        page = http.get(start_url)
        assert page.status_code == 200, page.text
        request_id = re.search(r'name="request" value="([^"]+)"', page.text)
        assert request_id is not None
        answer = http.post(
            start_url.split("?")[0],
            data={"request": request_id.group(1), "account": account, "action": "accept"},
        )
    assert answer.status_code in {302, 303}, answer.text
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    return query["code"][0], query["state"][0]


def signed_in_company(provider: OAuthServer, admin: User, **changes: str) -> OAuthConnection:
    """The company's OAuth app saved, and the mailbox signed in through the provider."""
    connection = services.connection_save(
        actor=admin, owner=COMPANY_OWNER, values=app_settings(provider, **changes)
    )
    start = services.sign_in_start(connection, redirect_uri=CALLBACK)
    code, state = provider_accepts(start.url)
    assert state == start.state
    services.sign_in_finish(
        connection,
        actor=admin,
        redirect_uri=CALLBACK,
        code=code,
        code_verifier=start.code_verifier,
    )
    connection.refresh_from_db()
    return connection


def oauth_relay(test_ca: CertAuthority, provider: OAuthServer, **script: object) -> SmtpdScript:
    """A submission server that takes only XOAUTH2, with tokens from `provider`, over TLS."""
    fields: dict[str, object] = {
        "cert": test_ca.issue(),
        "auth_mechanisms": ("XOAUTH2",),
        "oauth": provider,
        "require_auth_reply": "530 5.7.0 Authentication required",
        **script,
    }
    return SmtpdScript(**fields)  # type: ignore[arg-type]


def company_on_oauth_relay(
    server: ScriptedSmtpServer, test_ca: CertAuthority, *, login: str = MAILBOX
) -> Company:
    company = company_get()
    company.name = "Acme"
    company.sender_email = login
    company.smtp_host = "127.0.0.1"
    company.smtp_port = server.port
    company.smtp_secure_required = True
    company.smtp_ca_certificate = test_ca.pem
    company.smtp_login = login
    company.smtp_auth_method = AuthMethod.XOAUTH2
    company.smtp_timeout_connect = 5
    company.smtp_timeout_command = 5
    company.smtp_timeout_data = 5
    company.save()
    return company
