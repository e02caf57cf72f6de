"""Role checks for views. Login itself is enforced for every page by LoginRequiredMiddleware."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from postroom.accounts.models import Role

View = Callable[..., HttpResponseBase]


def role_required(
    *roles: Role, refusal: str = "This page is for administrators."
) -> Callable[[View], View]:
    """Let only users with one of `roles` through; others get 403 Forbidden, saying
    `refusal`."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            user = request.user
            if not user.is_authenticated or not user.is_active or user.role not in roles:
                raise PermissionDenied(refusal)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


administrator_required = role_required(Role.ADMINISTRATOR)

# The Marketing Manager (campaigns, templates, lists, segments, suppression): marketers own
# it and administrators may do everything; staff may see contacts but not manage audiences
# nor send campaigns (docs/users.md, roles).
MARKETING_ROLES = (Role.ADMINISTRATOR, Role.MARKETER)
marketer_required = role_required(
    *MARKETING_ROLES, refusal="This page is for marketers and administrators."
)


def user_can_market(user: Any) -> bool:
    """Whether `user` may use the Marketing Manager (for menus and buttons)."""
    return bool(user.is_authenticated and user.is_active and user.role in MARKETING_ROLES)
