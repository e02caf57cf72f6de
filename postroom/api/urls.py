"""The HTTP API: django-ninja at /api/, version 1 under /api/v1/, docs at /api/docs.

Every view here is exempt from LoginRequiredMiddleware: API calls authenticate with a
bearer key (postroom.api.auth), and the documentation is public so an integrating
developer can read it before having any account.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from http import HTTPStatus
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, path, re_path
from ninja import NinjaAPI

from postroom.api import (
    campaign_templates,
    campaigns,
    contacts,
    keys,
    lists,
    messages,
    reports,
    segments,
    suppressions,
)
from postroom.api.errors import error_response, install_error_handlers

API_DESCRIPTION = """\
Send mail through Postroom's durable outbox and follow each message's fate.

Authenticate with an API key that an administrator creates on the **API keys** page:
`Authorization: Bearer pr_<prefix>_<secret>`. Errors are JSON,
`{"error": {"code", "message", "field"}}`, with a stable `code`. Each key has a rate limit
per minute; over it, the answer is 429 with `Retry-After`.
"""

api = NinjaAPI(
    title="Postroom API",
    version="1",
    description=API_DESCRIPTION,
    urls_namespace="api",
    # The schema is versioned with the API; the docs page is one, at /api/docs.
    openapi_url="/v1/openapi.json",
    docs_url="/docs",
)
install_error_handlers(api)
api.add_router("/v1", messages.router)
api.add_router("/v1", contacts.router)
api.add_router("/v1", lists.router)
api.add_router("/v1", segments.router)
api.add_router("/v1", suppressions.router)
api.add_router("/v1", campaign_templates.router)
api.add_router("/v1", campaigns.router)
api.add_router("/v1", reports.router)
api.add_router("/v1", keys.router)


def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    return error_response(
        api,
        request,
        status=404,
        code="not_found",
        message=f"There is no API endpoint {request.path}; see /api/docs.",
    )


def _api_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """`view` without login (see above), answering a wrong method in JSON too."""

    @wraps(view)  # keeps ninja's csrf_exempt: bearer calls carry no cookie to protect
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if response.status_code == HTTPStatus.METHOD_NOT_ALLOWED and not response.get(
            "Content-Type", ""
        ).startswith("application/json"):
            allowed = response.get("Allow", "")
            response = error_response(
                api,
                request,
                status=HTTPStatus.METHOD_NOT_ALLOWED,
                code="method_not_allowed",
                message=f"{request.path} answers {allowed}, not {request.method}.",
            )
            response["Allow"] = allowed
        return response

    return login_not_required(wrapped)


def _public(patterns: list[URLPattern | URLResolver]) -> list[URLPattern | URLResolver]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            _public(pattern.url_patterns)
        else:
            pattern.callback = _api_view(pattern.callback)
    return patterns


_patterns, _app_name, _namespace = api.urls
urlpatterns = [
    path("", (_public(_patterns), _app_name, _namespace)),
    # Anything else under /api/ answers in the API's JSON shape, not with an HTML page.
    re_path(r"^(?P<rest>.*)$", login_not_required(not_found)),
]
