"""Company master pages: the tab "SMTP Server Information" in view mode and in edit mode."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_http_methods

from postroom.accounts.permissions import administrator_required
from postroom.company import validation
from postroom.company.models import AuthMethod, Company, TlsMode
from postroom.company.presets import PRESETS, preset_for_settings, preset_get, preset_groups
from postroom.company.selectors import company_get
from postroom.company.services import SmtpSettingsInput, company_smtp_update
from postroom.company.smtp import company_smtp_config
from postroom.core.errors import PostroomError
from postroom.mail.config import SmtpServerConfig, TlsPolicy, resolve_tls_policy
from postroom.outbox.models import ServerPause
from postroom.outbox.pauses import server_pauses_lift
from postroom.web.forms.company import CompanySmtpForm, company_smtp_initial

# The Company page's tabs, (url name, label).
COMPANY_TABS = [
    ("company_smtp", "SMTP Server Information"),
    ("company_oauth", "OAuth sign-in"),
    ("company_dkim", "DKIM"),
    ("company_domains", "Domain check"),
    ("company_bounces", "Bounce mailbox"),
]


def _security_in_words(company: Company) -> str:
    if company.smtp_port is None:
        return "Not configured yet"
    policy = resolve_tls_policy(
        port=company.smtp_port,
        secure_required=company.smtp_secure_required,
        tls_mode=company.smtp_tls_mode,
    )
    verified = (
        "certificate verified against the system CAs and the custom CA"
        if company.smtp_ca_certificate
        else "certificate verified"
    )
    if policy is TlsPolicy.IMPLICIT:
        return f"Implicit TLS from the first byte, {verified}"
    if policy is TlsPolicy.STARTTLS_REQUIRED:
        return f"STARTTLS required, {verified}; never plain text"
    if policy is TlsPolicy.STARTTLS_OPPORTUNISTIC:
        return f"STARTTLS when the server offers it ({verified}), otherwise plain text"
    return "No TLS: everything travels in plain text"


def _host_unicode(host: str) -> str:
    """The readable form of an IDN host ("bücher.example" for "xn--bcher-kva.example")."""
    if "xn--" not in host:
        return ""
    try:
        return host.encode("ascii").decode("idna")
    except UnicodeError:
        return ""


def _page(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    context = {"tabs": COMPANY_TABS, "active_tab": "company_smtp", **context}
    return render(request, template, context)


@require_GET
@administrator_required
def company_index(request: HttpRequest) -> HttpResponse:
    return redirect("company_smtp")


@require_GET
@administrator_required
def company_smtp(request: HttpRequest) -> HttpResponse:
    company = company_get()
    return _page(
        request,
        "web/company/smtp_view.html",
        {
            "company": company,
            "host_unicode": _host_unicode(company.smtp_host),
            "security": _security_in_words(company),
            "tls_mode_label": TlsMode(company.smtp_tls_mode).label,
            "auth_method_label": AuthMethod(company.smtp_auth_method).label,
            "ca_description": validation.ca_certificate_describe(company.smtp_ca_certificate),
            "preset": preset_for_settings(key=company.smtp_preset, host=company.smtp_host),
            "warnings": validation.smtp_settings_warnings(
                port=company.smtp_port,
                secure_required=company.smtp_secure_required,
                tls_mode=company.smtp_tls_mode,
                has_password=company.has_smtp_password,
                sender_email=company.sender_email,
                allow_plaintext_auth=company.smtp_allow_plaintext_auth,
            ),
        },
    )


def _connection(company: Company) -> SmtpServerConfig | None:
    """How Postroom connects with these settings, or None while they are incomplete."""
    try:
        return company_smtp_config(company)
    except PostroomError:
        return None


def _say_resumed(request: HttpRequest, lifted: list[ServerPause]) -> None:
    for pause in lifted:
        messages.info(
            request,
            f"Sending to {pause.server} had been paused ({pause.reason}). It is resumed: the "
            "held mail is tried again now, with the new settings.",
        )


@require_http_methods(["GET", "POST"])
@administrator_required
def company_smtp_edit(request: HttpRequest) -> HttpResponse:
    company = company_get()
    if request.method == "POST":
        form = CompanySmtpForm(request.POST, company=company)
        if form.is_valid():
            before = _connection(company)
            try:
                company = company_smtp_update(
                    actor=request.user, values=SmtpSettingsInput(**form.cleaned_data)
                )
            except PostroomError as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
            else:
                messages.success(request, "SMTP Server Information saved.")
                if _connection(company) != before:
                    _say_resumed(request, server_pauses_lift())
                return redirect("company_smtp")
        preset = preset_get(form.data.get("smtp_preset", ""))
    else:
        initial = company_smtp_initial(company)
        # ?preset=gmail is the "Apply preset" button without JavaScript: the stored values
        # with the provider's host, port and security laid over them, nothing saved yet.
        preset = preset_get(request.GET.get("preset", ""))
        if preset is not None:
            initial.update(preset.as_form_values())
        else:
            preset = preset_for_settings(key=company.smtp_preset, host=company.smtp_host)
        form = CompanySmtpForm(initial=initial, company=company)
    return _page(
        request,
        "web/company/smtp_edit.html",
        {
            "company": company,
            "form": form,
            "preset": preset,
            "preset_groups": preset_groups(),
            "presets_json": {
                p.key: {**p.as_form_values(), "name": p.name, "note": p.note} for p in PRESETS
            },
            "is_insecure": str(form["smtp_secure_required"].value()) == "N",
        },
    )


urlpatterns = [
    path("", company_index, name="company"),
    path("smtp/", company_smtp, name="company_smtp"),
    path("smtp/edit/", company_smtp_edit, name="company_smtp_edit"),
]
