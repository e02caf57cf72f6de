"""Company → Bounce mailbox: its settings, "Test connection", "Check now", the last poll's
status, the tagged return path and the latest reports (docs/deliverability.md)."""

from __future__ import annotations

import socket
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_http_methods, require_POST

from postroom.accounts.permissions import administrator_required
from postroom.bounces.models import BounceMailbox
from postroom.bounces.polling import mailbox_poll
from postroom.bounces.return_path import return_path_update
from postroom.bounces.selectors import (
    bounce_mailbox_get,
    bounce_mails_failed,
    bounce_reports_latest,
)
from postroom.bounces.services import (
    BounceMailboxInput,
    bounce_mailbox_test,
    bounce_mailbox_update,
)
from postroom.company import validation
from postroom.company.selectors import company_get
from postroom.core.errors import PostroomError
from postroom.mail.verp import return_path_tagged
from postroom.outbox.routing import return_path_keys
from postroom.web.forms.bounces import BounceMailboxForm, bounce_mailbox_initial
from postroom.web.forms.return_path import ReturnPathForm, return_path_initial
from postroom.web.views.company import COMPANY_TABS

# The message number the return path's example shows: any message's.
EXAMPLE_MESSAGE = 4711


def _page(
    request: HttpRequest,
    form: BounceMailboxForm,
    mailbox: BounceMailbox,
    *,
    return_path_form: ReturnPathForm | None = None,
    **extra: Any,
) -> HttpResponse:
    company = company_get()
    example = ""
    if company.bounce_address:
        example = return_path_tagged(
            company.bounce_address, message_pk=EXAMPLE_MESSAGE, key=return_path_keys()[0]
        )
    return render(
        request,
        "web/company/bounces.html",
        {
            "tabs": COMPANY_TABS,
            "active_tab": "company_bounces",
            "form": form,
            "mailbox": mailbox,
            "has_password": bool(mailbox.password_encrypted),
            "ca_description": validation.ca_certificate_describe(mailbox.ca_certificate),
            "reports": bounce_reports_latest(),
            "failed": bounce_mails_failed(),
            "company": company,
            "return_path_form": return_path_form
            or ReturnPathForm(initial=return_path_initial(company)),
            "return_path_example": example,
            **extra,
        },
    )


def _add_error(form: BounceMailboxForm, error: PostroomError) -> None:
    form.add_error(error.field if error.field in form.fields else None, error.message)


@require_http_methods(["GET", "POST"])
@administrator_required
def company_bounces(request: HttpRequest) -> HttpResponse:
    """The page; POST saves the settings, or with action=test only tries them."""
    mailbox = bounce_mailbox_get()
    if request.method != "POST":
        form = BounceMailboxForm(initial=bounce_mailbox_initial(mailbox))
        return _page(request, form, mailbox)
    form = BounceMailboxForm(request.POST)
    is_test = request.POST.get("action") == "test"
    if not form.is_valid():
        return _page(request, form, mailbox)
    values = BounceMailboxInput(**form.cleaned_data)
    if is_test:
        return _test(request, form, mailbox, values)
    try:
        bounce_mailbox_update(actor=request.user, values=values)
    except PostroomError as error:
        _add_error(form, error)
        return _page(request, form, mailbox)
    messages.success(request, "Bounce mailbox saved.")
    return redirect("company_bounces")


def _test(
    request: HttpRequest, form: BounceMailboxForm, mailbox: BounceMailbox, values: Any
) -> HttpResponse:
    try:
        result, is_ok = bounce_mailbox_test(values), True
    except PostroomError as error:
        result, is_ok = error.message, False
    if request.headers.get("HX-Request"):  # the button's htmx: only the result
        return render(request, "web/company/bounces_test.html", {"result": result, "is_ok": is_ok})
    return _page(request, form, mailbox, test_result=result, test_ok=is_ok)


@require_POST
@administrator_required
def company_bounces_check(request: HttpRequest) -> HttpResponse:
    """Poll the mailbox now (the worker would at its next time)."""
    result = mailbox_poll(runner=f"{socket.gethostname()} (Check now)")
    if result.is_busy:
        messages.info(request, result.message)
    elif result.is_ok:
        messages.success(request, f"Checked the bounce mailbox. {result.message}")
    else:
        messages.error(request, f"The bounce mailbox could not be read. {result.message}")
    return redirect("company_bounces")


@require_POST
@administrator_required
def company_return_path(request: HttpRequest) -> HttpResponse:
    """Save the bounce address and the tagged return path switch."""
    form = ReturnPathForm(request.POST)
    if form.is_valid():
        try:
            return_path_update(actor=request.user, **form.cleaned_data)
        except PostroomError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
        else:
            messages.success(request, "Return path saved.")
            return redirect(reverse("company_bounces") + "#return-path")
    mailbox = bounce_mailbox_get()
    settings_form = BounceMailboxForm(initial=bounce_mailbox_initial(mailbox))
    return _page(request, settings_form, mailbox, return_path_form=form)


urlpatterns = [
    path("", company_bounces, name="company_bounces"),
    path("check/", company_bounces_check, name="company_bounces_check"),
    path("return-path/", company_return_path, name="company_return_path"),
]
