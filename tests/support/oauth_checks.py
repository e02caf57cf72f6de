"""What the Test Provider checks in one request, as pure functions, and the error it
raises: PKCE (RFC 7636), client credentials in a Basic header (RFC 6749 §2.3.1), the claims
of a jwt-bearer assertion (RFC 7523 §3). tests/support/oauth_provider.py applies them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

from tests.support.jws import InvalidJwtError, unverified_claims

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"  # RFC 7523 §2.1
# Google refuses a jwt-bearer assertion whose exp is more than an hour after its iat.
ASSERTION_MAX_LIFETIME = 3600
_PKCE_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")  # RFC 7636 §4.1
_PKCE_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")  # unpadded base64url of SHA-256, §4.2


class OAuthError(Exception):
    """An OAuth error response (RFC 6749 §4.1.2.1 and §5.2): a code and a description."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> bytes:
        return json.dumps({"error": self.error, "error_description": self.description}).encode()

    def redirect_uri(self, redirect_uri: str, state: str | None) -> str:
        return with_query(
            redirect_uri, error=self.error, error_description=self.description, state=state
        )


def invalid_client(description: str) -> OAuthError:
    return OAuthError("invalid_client", description, status=401)  # RFC 6749 §5.2


def with_query(uri: str, **params: str | None) -> str:
    """`uri` with `params` added to its query; parameters set to None are left out."""
    parts = urlsplit(uri)
    pairs = parse_qsl(parts.query) + [(k, v) for k, v in params.items() if v is not None]
    return urlunsplit(parts._replace(query=urlencode(pairs)))


def _s256(verifier: str) -> str:
    """The S256 code_challenge of a verifier (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """client_secret_basic: id and secret, each form-encoded first (RFC 6749 §2.3.1)."""
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except ValueError as error:  # binascii.Error and UnicodeDecodeError both are
        raise invalid_client("The Authorization header is not Basic credentials.") from error
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise invalid_client("Basic credentials are client_id:client_secret.")
    return unquote_plus(client_id), unquote_plus(secret)


def claimed_client_id(authorization: str | None, form: dict[str, str]) -> str | None:
    """Who a token request says it is, before any check: what `requests` records."""
    if form.get("grant_type") == JWT_BEARER:
        try:
            issuer = unverified_claims(form.get("assertion", "")).get("iss")
        except InvalidJwtError:
            return None
        return issuer if isinstance(issuer, str) else None
    try:
        basic = basic_credentials(authorization)
    except OAuthError:
        return None
    return basic[0] if basic else form.get("client_id")


def code_challenge(params: dict[str, str], *, is_required: bool) -> str | None:
    """The S256 challenge of an authorization request, or None for a client that need not
    send one (a confidential client registered with require_pkce=False)."""
    challenge = params.get("code_challenge")
    if challenge is None:
        if is_required:
            raise OAuthError("invalid_request", "This client must send a PKCE code_challenge.")
        return None
    # RFC 7636 §4.3 keeps "plain" for clients that cannot hash; Postroom can.
    if params.get("code_challenge_method") != "S256":
        raise OAuthError("invalid_request", "code_challenge_method must be S256.")
    if not _PKCE_CHALLENGE.fullmatch(challenge):
        raise OAuthError(
            "invalid_request", "code_challenge must be the base64url SHA-256 of the verifier."
        )
    return challenge


def check_code_verifier(challenge: str | None, verifier: str | None) -> None:
    """Refuse a token request whose verifier does not prove it made the challenge."""
    if challenge is None:
        if verifier is not None:  # a PKCE downgrade attempt (RFC 9700 §2.1.1)
            raise OAuthError("invalid_grant", "code_verifier without a code_challenge.")
        return
    if verifier is None or not _PKCE_VERIFIER.fullmatch(verifier):
        raise OAuthError("invalid_grant", "A code_verifier of 43 to 128 characters is required.")
    if not hmac.compare_digest(_s256(verifier), challenge):  # RFC 7636 §4.6
        raise OAuthError("invalid_grant", "The code_verifier does not match the code_challenge.")


def assertion_subject(claims: dict[str, object], token_url: str) -> str:
    """The mailbox an RFC 7523 §3 assertion acts for, once its claims pass."""
    audience = claims.get("aud")
    if token_url not in (audience if isinstance(audience, list) else [audience]):
        raise OAuthError("invalid_grant", f"The assertion's aud must be {token_url}.")
    expires, issued = claims.get("exp"), claims.get("iat")
    if not isinstance(expires, int | float) or expires <= time.time():
        raise OAuthError("invalid_grant", "The assertion has expired (exp).")
    if isinstance(issued, int | float) and expires - issued > ASSERTION_MAX_LIFETIME:
        raise OAuthError("invalid_grant", "The assertion lives longer than an hour.")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise OAuthError("invalid_grant", "The assertion's sub must name the mailbox.")
    return subject
