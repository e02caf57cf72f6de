"""Company → SMTP Server Information: "Check connection" and "Send test email".

Both reach out to the network (and the second sends mail), so both are POST with CSRF, for
administrators only. They answer with the steps of the check: the fragment
`_check_result.html` for htmx (swapped into #check-result), a whole page otherwise.
"""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_POST
from email_validator import EmailNotValidError, validate_email

from postroom.accounts.permissions import administrator_required
from postroom.company.selectors import company_get
from postroom.company.smtp import company_sender_addresses, company_smtp_config
from postroom.core.errors import PostroomError
from postroom.mail.diagnostics import CheckReport, check_connection, send_test_email
from postroom.web.views.company import COMPANY_TABS


def _result(
    request: HttpRequest, *, report: CheckReport | None = None, error: str = "", to: str = ""
) -> HttpResponse:
    context = {"report": report, "error": error, "to": to}
    if request.headers.get("HX-Request") == "true":
        return render(request, "web/company/_check_result.html", context)
    page = {**context, "tabs": COMPANY_TABS, "active_tab": "company_smtp"}
    return render(request, "web/company/smtp_check_page.html", page)


@require_POST
@administrator_required
def company_smtp_check(request: HttpRequest) -> HttpResponse:
    company = company_get()
    try:
        config = company_smtp_config(company)
    except PostroomError as error:
        return _result(request, error=error.message)
    report = async_to_sync(check_connection)(config, senders=company_sender_addresses(company))
    return _result(request, report=report)


@require_POST
@administrator_required
def company_smtp_test_email(request: HttpRequest) -> HttpResponse:
    to = request.POST.get("to", "").strip()
    try:
        recipient = validate_email(to, check_deliverability=False).normalized
    except EmailNotValidError as error:
        return _result(
            request, error=f"Enter a valid address to send the test email to: {error}", to=to
        )
    company = company_get()
    if not company.sender_email:
        return _result(
            request,
            to=recipient,
            error=(
                "Set the company email address (Edit → Company sender) first: the test email is "
                "sent from it."
            ),
        )
    try:
        config = company_smtp_config(company)
    except PostroomError as error:
        return _result(request, error=error.message, to=recipient)
    report = async_to_sync(send_test_email)(
        config, sender=company.sender_email, recipient=recipient
    )
    return _result(request, report=report, to=recipient)


urlpatterns = [
    path("check/", company_smtp_check, name="company_smtp_check"),
    path("test-email/", company_smtp_test_email, name="company_smtp_test_email"),
]
