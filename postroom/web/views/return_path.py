"""Company → Return path: the bounce address and the tagged return path (VERP) switch."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_http_methods

from postroom.accounts.permissions import administrator_required
from postroom.bounces.return_path import return_path_update
from postroom.company.models import Company
from postroom.company.selectors import company_get
from postroom.core.errors import PostroomError
from postroom.mail.verp import return_path_tagged
from postroom.outbox.routing import return_path_keys
from postroom.web.forms.return_path import ReturnPathForm, return_path_initial
from postroom.web.views.company import COMPANY_TABS

# The number the example shows: any message's.
EXAMPLE_MESSAGE = 4711


def _page(request: HttpRequest, form: ReturnPathForm, company: Company) -> HttpResponse:
    example = ""
    if company.bounce_address:
        example = return_path_tagged(
            company.bounce_address, message_pk=EXAMPLE_MESSAGE, key=return_path_keys()[0]
        )
    return render(
        request,
        "web/company/return_path.html",
        {
            "tabs": COMPANY_TABS,
            "active_tab": "company_return_path",
            "form": form,
            "company": company,
            "example": example,
        },
    )


@require_http_methods(["GET", "POST"])
@administrator_required
def company_return_path(request: HttpRequest) -> HttpResponse:
    company = company_get()
    if request.method != "POST":
        return _page(request, ReturnPathForm(initial=return_path_initial(company)), company)
    form = ReturnPathForm(request.POST)
    if not form.is_valid():
        return _page(request, form, company)
    try:
        return_path_update(actor=request.user, **form.cleaned_data)
    except PostroomError as error:
        form.add_error(error.field if error.field in form.fields else None, error.message)
        return _page(request, form, company)
    messages.success(request, "Return path saved.")
    return redirect("company_return_path")


urlpatterns = [path("", company_return_path, name="company_return_path")]
