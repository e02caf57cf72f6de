"""The Test Provider's rules and state without sockets: clients, codes, tokens and grants.

tests/support/oauth_server.py puts HTTP in front of it. Each refusal names the RFC rule it
applies, so a refusal a Postroom test meets is one a real provider could give. Tokens are
random strings kept here, not JWTs: only this provider (and ScriptedSmtpServer, by asking
`token_subject`) can tell whose they are, as with Google's opaque tokens.
"""

from __future__ import annotations

import hmac
import json
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tests.support.jws import InvalidJwtError, unverified_claims, verify_rs256
from tests.support.oauth_checks import (
    JWT_BEARER,
    OAuthError,
    assertion_subject,
    basic_credentials,
    check_code_verifier,
    claimed_client_id,
    code_challenge,
    invalid_client,
    with_query,
)

# RFC 6749 §4.1.2: "A maximum authorization code lifetime of 10 minutes is RECOMMENDED."
CODE_LIFETIME = 600.0
# Tokens stay short on purpose: aiosmtpd refuses an AUTH line over 512 bytes (RFC 5321
# §4.5.3.1.4), so "AUTH XOAUTH2 <base64>" must fit with the login inside.
_TOKEN_BYTES = 24


@dataclass(frozen=True)
class TokenRequest:
    """One request to the token endpoint as recorded: never a secret, code or token."""

    grant_type: str
    client_id: str | None  # as claimed by the request, None when it named none
    error: str | None  # the OAuth error code of a refusal; None when tokens were issued


@dataclass(frozen=True)
class _Client:
    client_id: str
    secret: str | None  # None: a public client (a browser or desktop app)
    redirect_uri: str | None
    require_pkce: bool
    public_key_pem: str | None  # for jwt-bearer assertions signed by this client


@dataclass(frozen=True)
class PendingAuthorization:
    """An authorization request shown on the sign-in page and not yet answered."""

    client_id: str
    redirect_uri: str
    scope: str
    state: str
    code_challenge: str | None


@dataclass
class _Code:
    pending: PendingAuthorization
    account: str
    grant_id: str
    expires_at: float  # time.monotonic()
    is_used: bool = False


@dataclass
class _Token:
    client_id: str
    account: str  # the mailbox the token acts for; the client itself for client_credentials
    scope: str
    grant_id: str  # shared by every token one authorization produced (for revocation)
    expires_at: float | None  # time.monotonic(); None: never
    is_revoked: bool = False

    def is_valid(self, now: float) -> bool:
        return not self.is_revoked and (self.expires_at is None or now < self.expires_at)


Grant = Callable[[_Client, dict[str, str]], dict[str, object]]


class OAuthProvider:
    """Clients, codes and tokens, guarded by one lock: the HTTP server answers each request
    in its own thread while the test reads and changes the same state."""

    def __init__(
        self,
        *,
        access_token_lifetime: float,
        refresh_token_lifetime: float | None,
        rotate_refresh_tokens: bool,
    ) -> None:
        self.access_token_lifetime = access_token_lifetime
        self.refresh_token_lifetime = refresh_token_lifetime
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.requests: list[TokenRequest] = []
        self.revocation_requests = 0
        self._clients: dict[str, _Client] = {}
        self._pending: dict[str, PendingAuthorization] = {}
        self._codes: dict[str, _Code] = {}
        self._access_tokens: dict[str, _Token] = {}
        self._refresh_tokens: dict[str, _Token] = {}
        # Mailboxes an app's own tokens (client_credentials) may act as: Microsoft's
        # Add-MailboxPermission for a service principal.
        self._mailbox_grants: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    # What tests do and ask.
    def register_client(
        self,
        client_id: str,
        *,
        secret: str | None = None,
        redirect_uri: str | None = None,
        require_pkce: bool = True,
        public_key_pem: str | None = None,
    ) -> None:
        """Register (or replace) a client. A service account for jwt-bearer is a client
        whose id is its email (the assertion's `iss`) with `public_key_pem`."""
        with self._lock:
            self._clients[client_id] = _Client(
                client_id, secret, redirect_uri, require_pkce, public_key_pem
            )

    def token_subject(self, access_token: str) -> str | None:
        """The account an access token acts for; None if unknown, expired or revoked."""
        with self._lock:
            token = self._access_tokens.get(access_token)
            return token.account if token and token.is_valid(time.monotonic()) else None

    def grant_mailbox(self, client_id: str, mailbox: str) -> None:
        """Let `client_id`'s app-only tokens act as `mailbox` (Microsoft's app-only SMTP)."""
        with self._lock:
            self._mailbox_grants.setdefault(client_id, set()).add(mailbox.lower())

    def token_may_act_as(self, access_token: str, mailbox: str) -> bool:
        """Whether a valid access token may log in as `mailbox`: it acts for that account,
        or it is an app's own token and the app was granted the mailbox."""
        with self._lock:
            token = self._access_tokens.get(access_token)
            if token is None or not token.is_valid(time.monotonic()):
                return False
            if token.account.lower() == mailbox.lower():
                return True
            is_app_token = token.account == token.client_id
            return is_app_token and mailbox.lower() in self._mailbox_grants.get(token.client_id, ())

    def expire_access_tokens(self) -> None:
        """Make every access token issued so far expired now; later ones are not."""
        now = time.monotonic()
        with self._lock:
            for token in self._access_tokens.values():
                token.expires_at = now

    def revoke_refresh_tokens(self, account: str) -> int:
        """Revoke the account's refresh tokens, as when its owner removes the app's access.
        Access tokens already issued keep working until they expire (as Microsoft's do);
        add expire_access_tokens() for a provider that ends them too. Returns how many."""
        with self._lock:
            tokens = [
                token
                for token in self._refresh_tokens.values()
                if token.account.lower() == account.lower() and not token.is_revoked
            ]
            for token in tokens:
                token.is_revoked = True
        return len(tokens)

    def revoke_all(self) -> None:
        """Revoke every token, access and refresh."""
        with self._lock:
            for token in [*self._access_tokens.values(), *self._refresh_tokens.values()]:
                token.is_revoked = True

    @property
    def codes_issued(self) -> int:
        return len(self._codes)

    @property
    def access_tokens_issued(self) -> int:
        return len(self._access_tokens)

    @property
    def refresh_tokens_issued(self) -> int:
        return len(self._refresh_tokens)

    # The authorization endpoint (RFC 6749 §4.1.1), for the HTTP layer.
    def _redirect_refusal(self, client_id: str, redirect_uri: str) -> str | None:
        """Why the sign-in must not redirect at all, or None when it may."""
        client = self._clients.get(client_id)
        if client is None:
            return f"The client {client_id!r} is unknown."
        if client.redirect_uri is None or redirect_uri != client.redirect_uri:
            return f"The redirect_uri {redirect_uri!r} is not the one registered for {client_id}."
        return None

    def _start_authorization(self, params: dict[str, str]) -> tuple[str, PendingAuthorization]:
        """Check a request whose client and redirect_uri passed; keep it for the sign-in."""
        client = self._clients[params["client_id"]]
        assert client.redirect_uri is not None
        if params.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", "Only response_type=code is served.")
        state = params.get("state", "")
        if not state:  # without it a forged redirect could sign in the wrong account (§10.12)
            raise OAuthError("invalid_request", "The state parameter is required.")
        scope = params.get("scope", "").strip()
        if not scope:
            raise OAuthError("invalid_scope", "Name the scope to grant.")
        challenge = code_challenge(params, is_required=client.require_pkce)
        pending = PendingAuthorization(
            client.client_id, client.redirect_uri, scope, state, challenge
        )
        request_id = secrets.token_urlsafe(16)
        with self._lock:
            self._pending[request_id] = pending
        return request_id, pending

    def _take_authorization(self, request_id: str) -> PendingAuthorization | None:
        with self._lock:
            return self._pending.pop(request_id, None)

    def _issue_code(self, pending: PendingAuthorization, account: str) -> str:
        """Where the browser goes after "Accept": the redirect_uri with code and state."""
        code = secrets.token_urlsafe(_TOKEN_BYTES)
        with self._lock:
            self._codes[code] = _Code(
                pending, account, secrets.token_hex(8), time.monotonic() + CODE_LIFETIME
            )
        return with_query(pending.redirect_uri, code=code, state=pending.state)

    # The token endpoint (RFC 6749 §3.2) and revocation (RFC 7009), for the HTTP layer.
    def _token_response(
        self, authorization: str | None, form: dict[str, str], *, token_url: str
    ) -> bytes:
        grant_type = form.get("grant_type", "")
        client_id = claimed_client_id(authorization, form)
        with self._lock:
            try:
                body = self._grant(grant_type, authorization, form, token_url)
            except OAuthError as error:
                self.requests.append(TokenRequest(grant_type, client_id, error.error))
                raise
            self.requests.append(TokenRequest(grant_type, client_id, None))
        return json.dumps(body).encode()

    def _revoke_token(self, authorization: str | None, form: dict[str, str]) -> None:
        with self._lock:
            self.revocation_requests += 1
            client = self._authenticate_client(authorization, form)
            token = form.get("token", "")
            found = self._refresh_tokens.get(token) or self._access_tokens.get(token)
            if found is None:
                return  # RFC 7009 §2.2: an unknown token is no error
            if found.client_id != client.client_id:  # RFC 7009 §2.1
                raise OAuthError("unauthorized_client", "The token was issued to another client.")
            if token in self._refresh_tokens:  # its access tokens go with it (RFC 7009 §2.1)
                self._revoke_grant(found.grant_id)
            else:
                found.is_revoked = True

    def _grant(
        self, grant_type: str, authorization: str | None, form: dict[str, str], token_url: str
    ) -> dict[str, object]:
        if grant_type == JWT_BEARER:  # the signed assertion authenticates the client
            return self._grant_jwt_bearer(form, token_url)
        client = self._authenticate_client(authorization, form)
        grants: dict[str, Grant] = {
            "authorization_code": self._grant_authorization_code,
            "refresh_token": self._grant_refresh_token,
            "client_credentials": self._grant_client_credentials,
        }
        grant = grants.get(grant_type)
        if grant is None:
            raise OAuthError("unsupported_grant_type", f"No grant type {grant_type!r} here.")
        return grant(client, form)

    def _authenticate_client(self, authorization: str | None, form: dict[str, str]) -> _Client:
        basic = basic_credentials(authorization)
        if basic is not None and "client_secret" in form:  # RFC 6749 §2.3: one method only
            raise OAuthError("invalid_request", "Authenticate the client one way, not two.")
        client_id, secret = basic or (form.get("client_id", ""), form.get("client_secret"))
        client = self._clients.get(client_id)
        if client is None:
            raise invalid_client(f"The client {client_id!r} is unknown.")
        if client.secret is None:
            if secret:
                raise invalid_client(f"The client {client_id!r} is public: it has no secret.")
            return client
        if secret is None or not hmac.compare_digest(secret.encode(), client.secret.encode()):
            raise invalid_client(f"The secret of client {client_id!r} is wrong or missing.")
        return client

    def _grant_authorization_code(self, client: _Client, form: dict[str, str]) -> dict[str, object]:
        code = self._codes.get(form.get("code", ""))
        if code is not None and code.is_used:  # RFC 6749 §4.1.2: end what it gave, too
            self._revoke_grant(code.grant_id)
        if (
            code is None
            or code.is_used
            or time.monotonic() >= code.expires_at
            or code.pending.client_id != client.client_id
        ):
            raise OAuthError("invalid_grant", "The code is unknown, used, expired or not yours.")
        code.is_used = True  # once only, even when refused below
        if form.get("redirect_uri") != code.pending.redirect_uri:  # RFC 6749 §4.1.3
            raise OAuthError("invalid_grant", "redirect_uri differs from the authorization's.")
        check_code_verifier(code.pending.code_challenge, form.get("code_verifier"))
        return self._issue(
            client.client_id, code.account, code.pending.scope, grant_id=code.grant_id
        )

    def _grant_refresh_token(self, client: _Client, form: dict[str, str]) -> dict[str, object]:
        old = self._refresh_tokens.get(form.get("refresh_token", ""))
        if old is None or not old.is_valid(time.monotonic()) or old.client_id != client.client_id:
            raise OAuthError("invalid_grant", "The refresh token is unknown, expired or revoked.")
        scope = form.get("scope") or old.scope
        if not set(scope.split()) <= set(old.scope.split()):  # RFC 6749 §6
            raise OAuthError("invalid_scope", "A refresh may narrow the scope, never widen it.")
        if not self.rotate_refresh_tokens:
            return self._issue(
                client.client_id, old.account, scope, grant_id=old.grant_id, refresh=False
            )
        old.is_revoked = True
        # The new refresh token keeps the old deadline: Microsoft's SPA tokens end 24 hours
        # after the sign-in however often they rotate.
        return self._issue(
            client.client_id, old.account, scope, grant_id=old.grant_id, deadline=old.expires_at
        )

    def _grant_client_credentials(self, client: _Client, form: dict[str, str]) -> dict[str, object]:
        if client.secret is None:  # RFC 6749 §4.4: confidential clients only
            raise OAuthError("unauthorized_client", "A public client has no client_credentials.")
        scope = form.get("scope", "").strip()
        if not scope:  # Microsoft asks for "<resource>/.default"
            raise OAuthError("invalid_scope", "Name the scope to grant.")
        # RFC 6749 §4.4.3: no refresh token; the client acts for itself.
        return self._issue(
            client.client_id, client.client_id, scope, grant_id=secrets.token_hex(8), refresh=False
        )

    def _grant_jwt_bearer(self, form: dict[str, str], token_url: str) -> dict[str, object]:
        assertion = form.get("assertion", "")
        try:
            client, public_key = self._assertion_signer(assertion)
            claims = verify_rs256(assertion, public_key)
        except InvalidJwtError as error:  # RFC 7523 §3.1: an invalid JWT is invalid_grant
            raise OAuthError("invalid_grant", f"The assertion is refused: {error}.") from error
        subject = assertion_subject(claims, token_url)
        # RFC 7523 §2.1 puts scope in the request; Google reads it from the claims.
        scope = form.get("scope") or claims.get("scope")
        if not isinstance(scope, str) or not scope.strip():
            raise OAuthError("invalid_scope", "Name the scope to grant.")
        return self._issue(
            client.client_id, subject, scope.strip(), grant_id=secrets.token_hex(8), refresh=False
        )

    def _assertion_signer(self, assertion: str) -> tuple[_Client, str]:
        """The client an assertion says it comes from (its iss), and that client's key."""
        issuer = unverified_claims(assertion).get("iss")
        client = self._clients.get(issuer) if isinstance(issuer, str) else None
        if client is None or client.public_key_pem is None:
            raise InvalidJwtError("its iss is no client with a registered key")
        return client, client.public_key_pem

    def _issue(
        self,
        client_id: str,
        account: str,
        scope: str,
        *,
        grant_id: str,
        refresh: bool = True,
        deadline: float | None = None,
    ) -> dict[str, object]:
        """A token response (RFC 6749 §5.1). `expires_in` is the lifetime rounded up to whole
        seconds, as providers send; the token itself expires at the exact lifetime."""
        now = time.monotonic()
        access_token = secrets.token_urlsafe(_TOKEN_BYTES)
        self._access_tokens[access_token] = _Token(
            client_id, account, scope, grant_id, now + self.access_token_lifetime
        )
        body: dict[str, object] = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": math.ceil(self.access_token_lifetime),
            "scope": scope,
        }
        if not refresh:
            return body
        if deadline is None and self.refresh_token_lifetime is not None:
            deadline = now + self.refresh_token_lifetime
        refresh_token = secrets.token_urlsafe(_TOKEN_BYTES)
        self._refresh_tokens[refresh_token] = _Token(client_id, account, scope, grant_id, deadline)
        body["refresh_token"] = refresh_token
        if deadline is not None:
            body["refresh_token_expires_in"] = max(0, math.ceil(deadline - now))
        return body

    def _revoke_grant(self, grant_id: str) -> None:
        for token in [*self._access_tokens.values(), *self._refresh_tokens.values()]:
            if token.grant_id == grant_id:
                token.is_revoked = True
