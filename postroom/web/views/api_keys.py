"""API keys page: administrators create keys (shown once), see their use, and revoke them."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.cache import add_never_cache_headers

from postroom.accounts import api_keys
from postroom.accounts.models import ApiKey, User
from postroom.accounts.permissions import administrator_required
from postroom.core.errors import NotFoundError, PostroomError
from postroom.web.forms.api_keys import ApiKeyCreateForm
from postroom.web.forms.users import add_service_error


@administrator_required
def api_key_list(request: HttpRequest) -> HttpResponse:
    keys = list(api_keys.api_key_list())
    for key in keys:
        key.sender_summary = api_keys.api_key_sender_summary(key)  # type: ignore[attr-defined]
    return render(request, "web/api_keys/list.html", {"keys": keys})


@administrator_required
def api_key_create(request: HttpRequest) -> HttpResponse:
    form = ApiKeyCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        actor: User = request.user  # type: ignore[assignment]
        try:
            api_key, key = api_keys.api_key_create(
                actor=actor,
                name=data["name"],
                scopes=data["scopes"],
                sender_user=data["sender_user"],
                allowed_from=data["allowed_from"],
                rate_limit_per_minute=data["rate_limit_per_minute"],
            )
        except PostroomError as error:
            add_service_error(form, error)
        else:
            # Rendered in the POST's answer and never stored: a reload cannot show it again.
            response = render(
                request, "web/api_keys/created.html", {"api_key": api_key, "key": key}
            )
            add_never_cache_headers(response)
            return response
    return render(request, "web/api_keys/create.html", {"form": form})


@administrator_required
def api_key_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    api_key = _get(pk)
    if request.method == "POST":
        try:
            api_keys.api_key_revoke(actor=request.user, api_key=api_key)  # type: ignore[arg-type]
        except PostroomError as error:
            messages.error(request, error.message)
        else:
            messages.success(
                request, f"The key {api_key.name} is revoked: calls with it now get 401."
            )
        return redirect("api_key_list")
    return render(request, "web/api_keys/revoke.html", {"api_key": api_key})


def _get(pk: int) -> ApiKey:
    try:
        return api_keys.api_key_get(pk=pk)
    except NotFoundError as error:
        raise Http404(error.message) from None


urlpatterns = [
    path("", api_key_list, name="api_key_list"),
    path("new/", api_key_create, name="api_key_create"),
    path("<int:pk>/revoke/", api_key_revoke, name="api_key_revoke"),
]
