"""The authentication backend that refuses locked logins (django-axes)."""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.http import HttpRequest


class LockoutBackend(AxesStandaloneBackend):
    """axes' backend, for logins that come with a request.

    Failed logins are counted per login name and client address, so a login over HTTP always
    passes its request (Django's LoginView does). authenticate() without one is code calling
    it directly, such as Django's test client's login() or a shell: there is no client to
    count against, so it is left to the next backend instead of failing, as axes would.
    """

    def authenticate(  # type: ignore[override]
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)  # type: ignore[no-any-return]
