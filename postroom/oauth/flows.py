"""The OAuth 2.0 exchanges with a provider, through Authlib: start and finish a sign-in
(authorization code with PKCE, RFC 7636), renew with a refresh token, get an app-only token
(client credentials) or a service account's (JWT bearer, RFC 7523).

Plain data in, a `TokenSet` out; nothing here touches the database. Every failure becomes an
`OAuthTokenError` in plain words, with the provider's error code but never a secret.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import httpx2
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import AssertionClient, OAuth2Client
from django.utils import timezone
from joserfc.jwk import RSAKey

from postroom.mail.auth import TokenUnavailableError

# A token endpoint answers in milliseconds; one that does not is down.
TOKEN_TIMEOUT_SECONDS = 20.0


class OAuthTokenError(TokenUnavailableError):
    """A token could not be had: the provider refused, or could not be reached."""

    code = "oauth_token"

    def __init__(self, message: str, *, provider_error: str = "") -> None:
        super().__init__(message)
        self.provider_error = provider_error  # "invalid_grant", "" when none came


@dataclass(frozen=True)
class ClientSettings:
    """What the exchanges need of a connection, decrypted."""

    client_id: str
    token_endpoint: str
    scope: str
    client_secret: str = field(default="", repr=False)
    authorization_endpoint: str = ""
    authorize_params: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class TokenSet:
    access_token: str = field(repr=False)
    access_expires_at: dt.datetime
    refresh_token: str = field(default="", repr=False)
    refresh_expires_at: dt.datetime | None = None


@dataclass(frozen=True)
class SignInStart:
    url: str  # where the browser goes to sign in
    state: str = field(repr=False)
    code_verifier: str = field(repr=False)


def _client(settings: ClientSettings, **kwargs: Any) -> OAuth2Client:
    return OAuth2Client(
        client_id=settings.client_id,
        client_secret=settings.client_secret or None,
        # A public client (no secret) authenticates by PKCE alone.
        token_endpoint_auth_method="client_secret_post" if settings.client_secret else "none",
        scope=settings.scope,
        timeout=TOKEN_TIMEOUT_SECONDS,
        **kwargs,
    )


def sign_in_start(settings: ClientSettings, *, redirect_uri: str) -> SignInStart:
    verifier = generate_token(64)
    with _client(settings, redirect_uri=redirect_uri, code_challenge_method="S256") as client:
        url, state = client.create_authorization_url(
            settings.authorization_endpoint,
            code_verifier=verifier,
            **dict(settings.authorize_params),
        )
    return SignInStart(url=url, state=state, code_verifier=verifier)


def sign_in_finish(
    settings: ClientSettings, *, redirect_uri: str, code: str, code_verifier: str
) -> TokenSet:
    with _client(settings, redirect_uri=redirect_uri) as client:
        return _token_request(
            lambda: client.fetch_token(
                settings.token_endpoint, code=code, code_verifier=code_verifier
            ),
            doing="finishing the sign-in",
        )


def token_refresh(settings: ClientSettings, *, refresh_token: str) -> TokenSet:
    with _client(settings) as client:
        tokens = _token_request(
            lambda: client.refresh_token(settings.token_endpoint, refresh_token=refresh_token),
            doing="renewing the sign-in",
        )
    if not tokens.refresh_token:  # Google keeps the refresh token it issued once
        tokens = TokenSet(
            tokens.access_token, tokens.access_expires_at, refresh_token, tokens.refresh_expires_at
        )
    return tokens


def token_client_credentials(settings: ClientSettings) -> TokenSet:
    with _client(settings) as client:
        return _token_request(
            lambda: client.fetch_token(settings.token_endpoint, grant_type="client_credentials"),
            doing="getting an app-only token",
        )


def token_service_account(settings: ClientSettings, *, key_json: str, subject: str) -> TokenSet:
    """A Google service account's token to act as `subject` (domain-wide delegation)."""
    key = service_account_key_parse(key_json)
    client = AssertionClient(
        token_endpoint=settings.token_endpoint,
        issuer=key["client_email"],
        subject=subject,
        audience=settings.token_endpoint,
        claims={"scope": settings.scope},
        key=_private_key(key["private_key"]),
        header={"alg": "RS256", "kid": key.get("private_key_id", "")},
        timeout=TOKEN_TIMEOUT_SECONDS,
    )
    with client:
        return _token_request(client.refresh_token, doing="getting the service account's token")


def service_account_key_parse(key_json: str) -> dict[str, str]:
    """The fields of a service account's JSON key file that the JWT bearer grant needs."""
    try:
        key = json.loads(key_json)
    except json.JSONDecodeError:
        key = None
    if not isinstance(key, dict) or not {"client_email", "private_key"} <= key.keys():
        raise OAuthTokenError(
            "The service account key must be the JSON key file Google gives you (it holds "
            "client_email and private_key)."
        )
    fields = {"client_email", "private_key", "private_key_id"}
    parsed = {name: str(value) for name, value in key.items() if name in fields}
    _private_key(parsed["private_key"])
    return parsed


def _private_key(pem: str) -> RSAKey:
    """The service account's key as a key object (Authlib's preferred form)."""
    try:
        return RSAKey.import_key(pem)
    except (ValueError, TypeError):
        raise OAuthTokenError(
            "The service account key's private_key is not an RSA private key: download a new "
            "JSON key for the service account."
        ) from None


def _token_request(request: Any, *, doing: str) -> TokenSet:
    try:
        token = request()
    except OAuthError as error:
        raise OAuthTokenError(
            f"The provider refused {doing}: {error.error}"
            + (f" ({error.description})" if error.description else "")
            + ".",
            provider_error=error.error or "",
        ) from None
    except httpx2.HTTPError as error:
        raise OAuthTokenError(
            f"The provider's token endpoint could not be reached while {doing}: "
            f"{type(error).__name__} {error}."
        ) from None
    return _token_set(token)


def _token_set(token: dict[str, Any]) -> TokenSet:
    now = timezone.now()
    access_token = token.get("access_token")
    if not access_token:
        raise OAuthTokenError("The provider answered without an access token.")
    expires_in = _seconds(token.get("expires_in")) or 3600
    refresh_in = _seconds(token.get("refresh_token_expires_in"))
    return TokenSet(
        access_token=str(access_token),
        access_expires_at=now + dt.timedelta(seconds=expires_in),
        refresh_token=str(token.get("refresh_token") or ""),
        refresh_expires_at=now + dt.timedelta(seconds=refresh_in) if refresh_in else None,
    )


def _seconds(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0
