"""Company → DKIM: each sending domain's keys, the DNS record to publish, and the buttons
that check it, start signing, rotate and retire (postroom.dkim.services does the work)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_POST

from postroom.accounts.permissions import administrator_required
from postroom.core.errors import PostroomError
from postroom.dkim import services
from postroom.dkim.models import Algorithm, CheckResult, DkimKey, KeyState
from postroom.dkim.selectors import dkim_keys_by_domain
from postroom.web.forms.dkim import DkimKeyForm
from postroom.web.views.company import COMPANY_TABS


@dataclass(frozen=True)
class KeyRow:
    key: DkimKey
    check_message: str

    @property
    def is_retired(self) -> bool:
        return self.key.state == KeyState.RETIRED


@dataclass(frozen=True)
class DomainBlock:
    domain: str
    keys: list[KeyRow]
    signing: list[DkimKey]
    form: DkimKeyForm


def _blocks() -> list[DomainBlock]:
    blocks = []
    for domain, keys in dkim_keys_by_domain():
        rows = [KeyRow(key, services.check_message(key)) for key in keys]
        blocks.append(
            DomainBlock(
                domain=domain,
                keys=rows,
                signing=[key for key in keys if key.state == KeyState.SIGNING],
                form=DkimKeyForm(initial={"domain": domain}, auto_id=f"id_{domain}_%s"),
            )
        )
    return blocks


@require_GET
@administrator_required
def company_dkim(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "web/company/dkim.html",
        {"tabs": COMPANY_TABS, "active_tab": "company_dkim", "blocks": _blocks()},
    )


def _back(key_or_domain: DkimKey | str) -> HttpResponse:
    domain = key_or_domain if isinstance(key_or_domain, str) else key_or_domain.domain
    return redirect(f"{reverse('company_dkim')}#domain-{domain}")


@require_POST
@administrator_required
def company_dkim_create(request: HttpRequest) -> HttpResponse:
    form = DkimKeyForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose RSA 2048 or Ed25519 as the key's algorithm.")
        return redirect("company_dkim")
    try:
        key = services.dkim_key_create(actor=request.user, **form.cleaned_data)
    except PostroomError as error:
        messages.error(request, error.message)
        return _back(form.cleaned_data["domain"])
    label = Algorithm(key.algorithm).label
    messages.success(
        request,
        f"New {label} key {key.selector} for {key.domain}: publish its DNS record below, then "
        "click Check DNS.",
    )
    return _back(key)


def _key_action(
    request: HttpRequest, key_id: int, action: Callable[[DkimKey], str]
) -> HttpResponse:
    try:
        key = services.dkim_key_get(key_id)
        messages.success(request, action(key))
    except PostroomError as error:
        messages.error(request, error.message)
        return redirect("company_dkim")
    return _back(key)


@require_POST
@administrator_required
def company_dkim_check(request: HttpRequest, key_id: int) -> HttpResponse:
    try:
        key = services.dkim_key_check(key=services.dkim_key_get(key_id))
    except PostroomError as error:
        messages.error(request, error.message)
        return redirect("company_dkim")
    if key.check_result == CheckResult.OK:
        messages.success(request, services.check_message(key))
    else:
        messages.warning(request, services.check_message(key))
    return _back(key)


@require_POST
@administrator_required
def company_dkim_start(request: HttpRequest, key_id: int) -> HttpResponse:
    def start(key: DkimKey) -> str:
        key = services.dkim_key_start_signing(actor=request.user, key=key)
        return f"Mail from {key.domain} is signed with the key {key.selector} from now on."

    return _key_action(request, key_id, start)


@require_POST
@administrator_required
def company_dkim_retire(request: HttpRequest, key_id: int) -> HttpResponse:
    def retire(key: DkimKey) -> str:
        key = services.dkim_key_retire(actor=request.user, key=key)
        return (
            f"The key {key.selector} is retired. Leave its DNS record published for a week: "
            "mail already signed with it may still be checked."
        )

    return _key_action(request, key_id, retire)


urlpatterns = [
    path("", company_dkim, name="company_dkim"),
    path("new/", company_dkim_create, name="company_dkim_create"),
    path("<int:key_id>/check/", company_dkim_check, name="company_dkim_check"),
    path("<int:key_id>/start/", company_dkim_start, name="company_dkim_start"),
    path("<int:key_id>/retire/", company_dkim_retire, name="company_dkim_retire"),
]
