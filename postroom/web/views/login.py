"""The login page, and what it says when failed logins have locked it (django-axes)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from postroom.accounts.client_address import client_address
from postroom.accounts.lockouts import Lockout, lockout_find

TEMPLATE = "registration/login.html"


class LoginView(auth_views.LoginView):
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        if self.request.method == "GET":
            # A locked address sees the lock before typing a password in vain.
            context["lockouts"] = lockout_find(
                username=None, ip_address=client_address(self.request)
            )
        return context


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: Any
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the login page again, saying what is locked and until when.

    429 Too Many Requests with Retry-After (RFC 6585 §4), so scripts learn it too.
    """
    username = _username(request, credentials)
    lockouts = lockout_find(username=username, ip_address=client_address(request))
    form = AuthenticationForm(request, initial={"username": username})
    context = {
        "form": form,
        "lockouts": lockouts,
        "is_locked": True,
        "next": request.POST.get("next", ""),
    }
    response = render(request, TEMPLATE, context, status=429)
    if lockouts:
        response["Retry-After"] = str(_seconds_until(lockouts[0]))
    return response


def _username(request: HttpRequest, credentials: Any) -> str:
    if isinstance(credentials, dict) and credentials.get("username"):
        return str(credentials["username"])
    return request.POST.get("username", "")


def _seconds_until(lockout: Lockout) -> int:
    return max(1, int((lockout.ends_at - timezone.now()).total_seconds()) + 1)
