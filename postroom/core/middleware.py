"""Refuse request bodies over POSTROOM_MAX_REQUEST_BYTES before reading them, under any server.

Otherwise an unauthenticated client could make the server spool gigabytes to disk just to
be told 401. `postroom run` gives the same limit to waitress, which refuses such a request
itself (in its own plain text) before Django sees it; this middleware is for every other
WSGI server, and answers in Postroom's shapes: the API's JSON error, or a page.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

# Paths answered in the API's JSON error shape (postroom.api.errors) instead of a page.
API_PATH_PREFIX = "/api/"


def declared_length(request: HttpRequest) -> int | None:
    """The body size the client announced in Content-Length; None when there is none."""
    try:
        return int(request.META.get("CONTENT_LENGTH", ""))
    except (TypeError, ValueError):
        return None  # Django reads such a body as empty


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def too_large_message(*, length: int, limit: int) -> str:
    return (
        f"The request is {_megabytes(length)} ({length:,} bytes); Postroom accepts at most "
        f"{_megabytes(limit)} ({limit:,} bytes, POSTROOM_MAX_REQUEST_BYTES). Attachments are "
        f"capped at {_megabytes(settings.POSTROOM_MAX_MESSAGE_BYTES)} a message and contact "
        f"imports at {_megabytes(settings.POSTROOM_IMPORT_MAX_BYTES)}: send smaller files."
    )


def too_large_response(request: HttpRequest, *, length: int, limit: int) -> HttpResponse:
    """413 as JSON in the API's error shape under /api/, as a page elsewhere."""
    message = too_large_message(length=length, limit=limit)
    if request.path.startswith(API_PATH_PREFIX):
        error = {"code": "too_large", "message": message, "field": None}
        return JsonResponse({"error": error}, status=413)
    page = render_to_string("413.html", {"message": message}, request=request)
    return HttpResponse(page, status=413)


class RequestBodyLimitMiddleware:
    """Answer 413 when Content-Length is over POSTROOM_MAX_REQUEST_BYTES, reading nothing.

    Only the announced length is checked: under WSGI a body without Content-Length reads as
    empty, and waitress (or the reverse proxy) bounds chunked bodies.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.POSTROOM_MAX_REQUEST_BYTES
        length = declared_length(request)
        if length is not None and length > limit:
            return too_large_response(request, length=length, limit=limit)
        return self.get_response(request)
