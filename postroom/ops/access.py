"""Who may read `/metrics`: whoever shows the bearer token POSTROOM_METRICS_TOKEN.

Not "anyone on loopback": behind a reverse proxy on the same host every request arrives from
127.0.0.1, so loopback would mean the whole internet. Without a token, `/metrics` is off.
"""

from __future__ import annotations

import hmac

from django.core.exceptions import ImproperlyConfigured

# 32 characters of `openssl rand -hex 32` (or of secrets.token_urlsafe) carry at least 128
# bits: beyond guessing through a web server, however many tries it allows.
METRICS_TOKEN_MIN_LENGTH = 32
_SCHEME = "bearer"


def metrics_token_check(token: str) -> str:
    """For the settings: "" (metrics off) or a token long enough; anything else stops the start."""
    if token and len(token) < METRICS_TOKEN_MIN_LENGTH:
        raise ImproperlyConfigured(
            f"POSTROOM_METRICS_TOKEN is {len(token)} characters long: use at least "
            f"{METRICS_TOKEN_MIN_LENGTH} random ones, such as the output of "
            "`openssl rand -hex 32`, or leave it empty to turn /metrics off."
        )
    if token and not token.isascii():
        raise ImproperlyConfigured(
            "POSTROOM_METRICS_TOKEN holds characters other than ASCII: an HTTP header cannot "
            "carry them reliably. Use the output of `openssl rand -hex 32`."
        )
    return token


def bearer_token_matches(authorization: str, *, token: str) -> bool:
    """Whether an Authorization header carries `token` (RFC 6750 §2.1), compared in constant
    time so that the answer's timing does not tell how much of a guess was right."""
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != _SCHEME or not token:
        return False
    return hmac.compare_digest(credentials.strip().encode(), token.encode())
