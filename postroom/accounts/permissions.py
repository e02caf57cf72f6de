"""Role checks for views. Login itself is enforced for every page by LoginRequiredMiddleware."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from postroom.accounts.models import Role

View = Callable[..., HttpResponse]


def role_required(*roles: Role) -> Callable[[View], View]:
    """Let only users with one of `roles` through; others get 403 Forbidden."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user = request.user
            if not user.is_authenticated or not user.is_active or user.role not in roles:
                raise PermissionDenied("This page is for administrators.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


administrator_required = role_required(Role.ADMINISTRATOR)
