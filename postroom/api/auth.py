"""Bearer API keys for the API: `Authorization: Bearer pr_<prefix>_<secret>`.

Each operation names the scope it needs (`ApiKeyAuth(ApiScope.SEND)`). A missing, wrong or
revoked key is 401, a key without the scope 403, a key over its rate limit 429 — all in the
JSON error shape (postroom.api.errors). Bearer calls carry no cookies, so CSRF does not
apply: django-ninja marks its views csrf_exempt and HttpBearer never checks CSRF.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer

from postroom.accounts.api_keys import (
    UnauthenticatedError,
    api_key_authenticate,
    api_key_count_request,
    api_key_require_scope,
)
from postroom.accounts.models import ApiKey, ApiScope


class ApiKeyAuth(HttpBearer):
    """Authenticate the request's API key, count it against the key's rate limit, and
    check it has `scope` (None: any valid key will do)."""

    def __init__(self, scope: ApiScope | None = None) -> None:
        super().__init__()
        self.scope = scope

    def __call__(self, request: HttpRequest) -> Any:
        # Not HttpBearer's own: with DEBUG on it logs a header with another scheme, and
        # that header may well hold the key.
        value = request.headers.get(self.header, "")
        scheme, _, token = value.partition(" ")
        if not value:
            return None  # ninja answers 401 (postroom.api.errors)
        if scheme.lower() != self.openapi_scheme:
            raise UnauthenticatedError(
                "Send the API key as 'Authorization: Bearer <key>' (the Bearer scheme)."
            )
        return self.authenticate(request, token)

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey:
        api_key = api_key_authenticate(key=token)
        # Counted before the scope check: a client retrying a forbidden call in a loop is
        # slowed down like any other.
        api_key_count_request(api_key=api_key)
        if self.scope is not None:
            api_key_require_scope(api_key=api_key, scope=self.scope)
        return api_key


def request_api_key(request: HttpRequest) -> ApiKey:
    """The authenticated key of a request that passed ApiKeyAuth."""
    api_key = getattr(request, "auth", None)
    assert isinstance(api_key, ApiKey), "the operation has no ApiKeyAuth"
    return api_key
