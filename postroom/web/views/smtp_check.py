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
from postroom.company.services import SmtpSettingsInput
from postroom.company.smtp import (
    company_sender_addresses,
    company_smtp_config,
    smtp_config_from_input,
)
from postroom.core.errors import PostroomError
from postroom.mail.diagnostics import CheckReport, check_connection, send_test_email
from postroom.outbox.models import ServerPause
from postroom.outbox.pauses import server_pause_get, server_resume
from postroom.web.forms.company import CompanySmtpForm
from postroom.web.views.company import COMPANY_TABS


def _result(
    request: HttpRequest,
    *,
    report: CheckReport | None = None,
    error: str = "",
    to: str = "",
    typed: bool = False,
    resumed: ServerPause | None = None,
) -> HttpResponse:
    context = {"report": report, "error": error, "to": to, "typed": typed, "resumed": resumed}
    if request.headers.get("HX-Request") == "true":
        return render(request, "web/company/_check_result.html", context)
    page = {**context, "tabs": COMPANY_TABS, "active_tab": "company_smtp"}
    return render(request, "web/company/smtp_check_page.html", page)


@require_POST
@administrator_required
def company_smtp_check(request: HttpRequest) -> HttpResponse:
    """Check the stored settings. Passing, it resumes sending if a failure had paused it."""
    company = company_get()
    try:
        config = company_smtp_config(company)
    except PostroomError as error:
        return _result(request, error=error.message)
    senders = company_sender_addresses(company.sender_email)
    report = async_to_sync(check_connection)(config, senders=senders)
    resumed = None
    if report.is_ok:
        resumed = server_pause_get(server=f"{config.host}:{config.port}")
        if resumed is not None:
            server_resume(server=resumed.server)
    return _result(request, report=report, resumed=resumed)


@require_POST
@administrator_required
def company_smtp_check_typed(request: HttpRequest) -> HttpResponse:
    """Test these settings, on the edit form: the same check with the typed values, which are
    stored nowhere (Save stays separate); a blank password means the stored one."""
    company = company_get()
    form = CompanySmtpForm(request.POST, company=company)
    if not form.is_valid():
        problems = "; ".join(
            f"{form.fields[name].label if name in form.fields else 'Form'}: "
            + " ".join(str(error) for error in errors)
            for name, errors in form.errors.items()
        )
        return _result(request, error=f"Correct these values first: {problems}", typed=True)
    values = SmtpSettingsInput(**form.cleaned_data)
    try:
        config = smtp_config_from_input(values, company=company)
    except PostroomError as error:
        return _result(request, error=error.message, typed=True)
    senders = company_sender_addresses(values.sender_email)
    report = async_to_sync(check_connection)(config, senders=senders)
    return _result(request, report=report, typed=True)


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
    path("check-typed/", company_smtp_check_typed, name="company_smtp_check_typed"),
    path("test-email/", company_smtp_test_email, name="company_smtp_test_email"),
]
