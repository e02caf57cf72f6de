"""Send a user whose password someone else chose to Change password, on every page, until
they have chosen their own (User.has_temporary_password)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

# What such a user may still open: the page that ends the state, and the way out.
ALLOWED_URL_NAMES = frozenset({"password_change", "logout"})


class PasswordChangeRequiredMiddleware:
    """Place after AuthenticationMiddleware. API calls authenticate with keys and their views
    need no login (login_not_required), so they, like the login page, pass untouched."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        if not getattr(request.user, "has_temporary_password", False):
            return None
        if not getattr(view_func, "login_required", True):
            return None
        match = request.resolver_match
        if match is not None and match.url_name in ALLOWED_URL_NAMES:
            return None
        return redirect("password_change")
