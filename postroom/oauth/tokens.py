"""Access tokens for a route, renewed ahead of expiry and stored encrypted.

`access_token_get` is what SMTP logs in with; the worker's background loop also calls
`access_tokens_renew_due` every minute, so a refresh that fails is seen (and the people told)
before any mail needs the token. Two processes renewing at the same moment both succeed: the
providers keep the previous refresh token valid for a while, and the later write wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from dataclasses import dataclass

from django.db import close_old_connections
from django.utils import timezone

from postroom.core.secrets import secret_decrypt, secret_encrypt
from postroom.oauth.alerts import oauth_alert_send
from postroom.oauth.flows import (
    ClientSettings,
    OAuthTokenError,
    TokenSet,
    token_client_credentials,
    token_refresh,
    token_service_account,
)
from postroom.oauth.models import Flow, OAuthConnection
from postroom.oauth.providers import provider_info

# Renew this long before the access token runs out (they live an hour at both providers).
RENEW_AHEAD = dt.timedelta(minutes=5)
# The background looks this far ahead, every minute, so a token is renewed (or its failure
# seen) before a message needs it.
RENEW_WATCH = dt.timedelta(minutes=10)
# Tell people this long before a sign-in's known end (Microsoft's refresh_token_expires_in).
EXPIRY_WARNING = dt.timedelta(days=7)


def client_settings(connection: OAuthConnection) -> ClientSettings:
    secret = connection.client_secret_encrypted
    return ClientSettings(
        client_id=connection.client_id,
        client_secret=secret_decrypt(secret) if secret else "",
        token_endpoint=connection.token_endpoint,
        authorization_endpoint=connection.authorization_endpoint,
        scope=connection.scope,
        authorize_params=provider_info(connection.provider).authorize_params,
    )


def access_token_get(connection: OAuthConnection, *, mailbox: str, renew: bool = False) -> str:
    """A valid access token for `mailbox`: the stored one, or a new one when it is about to
    run out (or `renew`: the server just refused the stored one)."""
    encrypted = connection.access_token_encrypted
    expires_at = connection.access_expires_at
    if encrypted and expires_at and not renew and expires_at - RENEW_AHEAD > timezone.now():
        return secret_decrypt(encrypted)
    return _renew(connection, mailbox=mailbox).access_token


def _renew(connection: OAuthConnection, *, mailbox: str) -> TokenSet:
    try:
        tokens = _new_tokens(connection, mailbox=mailbox)
    except OAuthTokenError as error:
        is_new = not connection.failure
        connection.failure = error.message
        connection.failed_at = timezone.now()
        connection.save(update_fields=["failure", "failed_at", "updated_at"])
        if is_new:  # told once; the next success clears it
            oauth_alert_send(
                connection, subject="an OAuth sign-in stopped working", problem=error.message
            )
        raise
    tokens_store(connection, tokens)
    return tokens


def _new_tokens(connection: OAuthConnection, *, mailbox: str) -> TokenSet:
    settings = client_settings(connection)
    if connection.flow == Flow.APP_ONLY:
        return token_client_credentials(settings)
    if connection.flow == Flow.SERVICE_ACCOUNT:
        key = connection.service_account_key_encrypted
        if not key:
            raise OAuthTokenError("No service account key is stored: upload its JSON key file.")
        return token_service_account(settings, key_json=secret_decrypt(key), subject=mailbox)
    refresh = connection.refresh_token_encrypted
    if not refresh:
        raise OAuthTokenError(
            "Nobody has signed in yet: press “Sign in” so Postroom gets its refresh token."
        )
    try:
        return token_refresh(settings, refresh_token=secret_decrypt(refresh))
    except OAuthTokenError as error:
        if error.provider_error == "invalid_grant":
            raise OAuthTokenError(
                f"{error.message} The sign-in was revoked or has expired (a changed password, "
                "an administrator's revocation or a long time unused): sign in again.",
                provider_error=error.provider_error,
            ) from None
        raise


def tokens_store(connection: OAuthConnection, tokens: TokenSet) -> None:
    now = timezone.now()
    connection.access_token_encrypted = secret_encrypt(tokens.access_token)
    connection.access_expires_at = tokens.access_expires_at
    if tokens.refresh_token:
        connection.refresh_token_encrypted = secret_encrypt(tokens.refresh_token)
    if tokens.refresh_expires_at is not None:
        connection.refresh_expires_at = tokens.refresh_expires_at
        connection.expiry_alerted_at = None
    connection.refreshed_at = now
    connection.failure = ""
    connection.failed_at = None
    connection.save()


@dataclass(frozen=True)
class StoredAccessTokens:
    """The `AccessTokens` of a route (postroom.mail.config): the stored sign-in of `owner`,
    read and renewed on a thread, since the SMTP session that asks runs on an event loop."""

    owner: str
    mailbox: str

    async def get(self, *, renew: bool = False) -> str:
        return await asyncio.to_thread(self._get, renew)

    def _get(self, renew: bool) -> str:
        try:
            connection = OAuthConnection.objects.filter(owner=self.owner).first()
            if connection is None:
                raise OAuthTokenError(
                    "OAuth 2.0 is the authentication method, but no OAuth sign-in is set up."
                )
            return access_token_get(connection, mailbox=self.mailbox, renew=renew)
        finally:
            close_old_connections()


def sign_ins_watch(*, mailboxes: dict[str, str]) -> None:
    """Renew the tokens of the sign-ins in use (`mailboxes`: owner -> mailbox) that run out
    soon, and tell people of a sign-in that ends within EXPIRY_WARNING. A failure is recorded
    and told by the renewal itself."""
    now = timezone.now()
    for connection in OAuthConnection.objects.filter(owner__in=mailboxes).select_related("user"):
        expires_at = connection.access_expires_at
        if connection.is_signed_in and (expires_at is None or expires_at - RENEW_WATCH <= now):
            with contextlib.suppress(OAuthTokenError):
                _renew(connection, mailbox=mailboxes[connection.owner])
        ends_at = connection.refresh_expires_at
        if ends_at and ends_at - EXPIRY_WARNING <= now and connection.expiry_alerted_at is None:
            oauth_alert_send(
                connection,
                subject="an OAuth sign-in ends soon",
                problem=f"The provider ends this OAuth sign-in on {ends_at:%Y-%m-%d %H:%M} UTC.",
            )
            connection.expiry_alerted_at = now
            connection.save(update_fields=["expiry_alerted_at", "updated_at"])
