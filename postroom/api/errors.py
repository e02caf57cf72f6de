"""The one mapping from errors to API responses.

Every error answer has the same shape, `{"error": {"code", "message", "field"}}`, with a
stable `code` clients can branch on and a message a person can act on. Invalid input is
always 400, whether the JSON did not fit the schema (which django-ninja would answer with
422) or a value was refused by Postroom's own checks: one status for "fix your request"
is simpler to handle, and the `code` and `field` say what to fix.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from postroom.core.errors import PostroomError

logger = logging.getLogger(__name__)

# Codes for the statuses django-ninja answers by itself.
_CODES_BY_STATUS = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    429: "rate_limited",
}
# Where a schema error happened, as ninja reports it; the field path follows these.
_LOCATIONS = {"body", "query", "path", "header", "cookie", "form", "file"}
# pydantic names the member of a union that failed ("to.0.str", "to.0.AddressIn.email")
# and the validators it ran ("function-wrap[...]"): no field a client sent, so they are
# left out of the path.
_UNION_MEMBERS = {"str", "AddressIn"}


class ConflictError(PostroomError):
    """The request is valid, but the resource's state does not allow it (409)."""

    code = "conflict"
    http_status = 409


def error_response(
    api: NinjaAPI,
    request: HttpRequest,
    *,
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    details: list[dict[str, Any]] | None = None,
) -> HttpResponse:
    error = error_body(code=code, message=message, field=field, details=details)
    return api.create_response(request, {"error": error}, status=status)


def error_body(
    *,
    code: str,
    message: str,
    field: str | None = None,
    details: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The `error` object of every error answer (and of each refused message of a batch)."""
    error: dict[str, Any] = {"code": code, "message": message, "field": field}
    if details:
        error["details"] = details
    return error


def postroom_error_body(error: PostroomError) -> dict[str, Any]:
    return error_body(code=error.code, message=error.message, field=error.field)


def schema_error_body(errors: list[dict[str, Any]], *, is_located: bool = True) -> dict[str, Any]:
    """The `error` object for input that does not fit the schema: every problem in
    `details`, the first one in `message` and `field`. The errors of a request say where
    first (the body, the query); those of a batch's message (`is_located` False) are
    relative to the message."""
    details = [_detail(error, is_located=is_located) for error in errors]
    first = details[0] if details else {"field": None, "message": "Invalid request."}
    message = str(first["message"])
    if first["field"]:
        message = f"{first['field']}: {message}"
    if len(details) > 1:
        message += f" (and {len(details) - 1} more problem{'s' if len(details) > 2 else ''})"
    return error_body(code="invalid", message=message, field=first["field"], details=details)


def install_error_handlers(api: NinjaAPI) -> None:
    """Answer every error of `api` in the one JSON shape."""
    handlers: list[tuple[type[Exception], Callable[..., HttpResponse]]] = [
        (PostroomError, _postroom_error),
        (NinjaValidationError, _schema_error),
        (AuthenticationError, _unauthenticated),
        (HttpError, _http_error),
        (Http404, _not_found),
        (RequestDataTooBig, _too_large),
        (Exception, _unexpected),
    ]
    for exc_class, handler in handlers:
        api.add_exception_handler(exc_class, partial(handler, api))


def _postroom_error(api: NinjaAPI, request: HttpRequest, exc: PostroomError) -> HttpResponse:
    response = error_response(
        api,
        request,
        status=exc.http_status,
        code=exc.code,
        message=exc.message,
        field=exc.field,
    )
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    if exc.http_status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="postroom"'
    return response


def _schema_error(api: NinjaAPI, request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    error = schema_error_body(list(exc.errors))
    return api.create_response(request, {"error": error}, status=400)


def _unauthenticated(api: NinjaAPI, request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = error_response(
        api,
        request,
        status=401,
        code="unauthenticated",
        message="Send an API key as 'Authorization: Bearer <key>'. Administrators "
        "create keys on the API keys page.",
    )
    response["WWW-Authenticate"] = 'Bearer realm="postroom"'
    return response


def _http_error(api: NinjaAPI, request: HttpRequest, exc: HttpError) -> HttpResponse:
    message = str(exc)
    if message.startswith("Cannot parse request body"):
        message = "The request body is not valid JSON (UTF-8)."
    return error_response(
        api,
        request,
        status=exc.status_code,
        code=_CODES_BY_STATUS.get(exc.status_code, "error"),
        message=message,
    )


def _not_found(api: NinjaAPI, request: HttpRequest, exc: Exception) -> HttpResponse:
    return error_response(
        api, request, status=404, code="not_found", message="There is no such resource."
    )


def _too_large(api: NinjaAPI, request: HttpRequest, exc: Exception) -> HttpResponse:
    return error_response(
        api,
        request,
        status=413,
        code="too_large",
        message="The request body is larger than this server accepts "
        "(DATA_UPLOAD_MAX_MEMORY_SIZE); send smaller attachments.",
    )


def _unexpected(api: NinjaAPI, request: HttpRequest, exc: Exception) -> HttpResponse:
    # A bug, not bad input: log it whole, and answer in the same shape.
    logger.exception("API error on %s %s", request.method, request.path)
    return error_response(
        api,
        request,
        status=500,
        code="server_error",
        message="Postroom failed to handle this request; the error was logged.",
    )


def _detail(error: dict[str, Any], *, is_located: bool) -> dict[str, Any]:
    """One schema error as {"field": "to.0.email", "message": "..."}."""
    loc = [str(part) for part in error.get("loc", ())]
    if is_located and loc and loc[0] in _LOCATIONS:
        # A body schema is nested under its parameter's name ("payload"): not a field.
        loc = loc[2:] if loc[0] == "body" else loc[1:]
    loc = [part for part in loc if part not in _UNION_MEMBERS and "[" not in part]
    field = ".".join(loc) or None
    return {"field": field, "message": str(error.get("msg", "is not valid"))}
