"""/api/v1/key: which key this is, so an integration can check its setup."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router

from postroom.api.auth import ApiKeyAuth, request_api_key
from postroom.api.schemas import ErrorOut, KeyOut

router = Router(tags=["API key"])


@router.get(
    "/key",
    response={200: KeyOut, 401: ErrorOut, 429: ErrorOut},
    auth=ApiKeyAuth(),
    operation_id="key_get",
    summary="Describe the key making the request",
    description="Any valid key may call this; it needs no scope.",
)
def key_get(request: HttpRequest) -> dict[str, Any]:
    api_key = request_api_key(request)
    return {
        "name": api_key.name,
        "prefix": api_key.prefix,
        "scopes": api_key.scopes,
        "sender_user": api_key.sender_user.username if api_key.sender_user else None,
        "allowed_from": api_key.allowed_from,
        "rate_limit_per_minute": api_key.rate_limit_per_minute,
        "created_at": api_key.created_at,
        "last_used_at": api_key.last_used_at,
    }
