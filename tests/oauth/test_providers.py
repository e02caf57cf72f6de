"""The provider presets fill in what each provider needs (nothing here reaches them)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from postroom.accounts.models import User
from postroom.core.errors import ValidationError
from postroom.oauth import services
from postroom.oauth.models import COMPANY_OWNER, Flow, OAuthConnection, Provider

pytestmark = pytest.mark.django_db


def saved(admin: User, provider: str, flow: str, tenant: str = "") -> OAuthConnection:
    values = services.OAuthSettingsInput(
        provider=provider, flow=flow, client_id="app-id", client_secret="s", tenant=tenant
    )
    return services.connection_save(actor=admin, owner=COMPANY_OWNER, values=values)


def test_microsoft_365_delegated_asks_for_smtp_send_and_offline_access_in_the_tenant(
    admin: User,
) -> None:
    connection = saved(admin, Provider.MICROSOFT365, Flow.DELEGATED, tenant="acme.example")
    assert connection.token_endpoint == (
        "https://login.microsoftonline.com/acme.example/oauth2/v2.0/token"
    )
    start = services.sign_in_start(connection, redirect_uri="https://postroom.acme.example/cb/")
    url = urlsplit(start.url)
    query = parse_qs(url.query)
    assert url.netloc == "login.microsoftonline.com"
    assert url.path == "/acme.example/oauth2/v2.0/authorize"
    assert query["scope"] == ["https://outlook.office.com/SMTP.Send offline_access"]
    assert query["code_challenge_method"] == ["S256"]


def test_microsoft_365_app_only_asks_for_the_default_scope(admin: User) -> None:
    connection = saved(admin, Provider.MICROSOFT365, Flow.APP_ONLY)
    assert connection.scope == "https://outlook.office365.com/.default"
    assert "/organizations/" in connection.token_endpoint  # no tenant given


def test_google_asks_for_offline_access_so_a_refresh_token_comes(admin: User) -> None:
    connection = saved(admin, Provider.GOOGLE, Flow.DELEGATED)
    query = parse_qs(
        urlsplit(services.sign_in_start(connection, redirect_uri="https://x/cb/").url).query
    )
    assert query["scope"] == ["https://mail.google.com/"]
    assert (query["access_type"], query["prompt"]) == (["offline"], ["consent"])


def test_a_flow_the_provider_does_not_offer_is_refused_in_words(admin: User) -> None:
    with pytest.raises(ValidationError, match="does not offer") as refused:
        saved(admin, Provider.GOOGLE, Flow.APP_ONLY)
    assert refused.value.field == "flow"
