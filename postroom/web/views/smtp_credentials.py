"""SMTP credentials pages: administrators create the logins of systems that send through the
SMTP listener (the password shown once), change their limits, and remove them."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.cache import add_never_cache_headers

from postroom.accounts.permissions import administrator_required
from postroom.core.errors import PostroomError
from postroom.smtpd import services
from postroom.smtpd.certs import listener_certificate
from postroom.smtpd.models import SmtpCredential
from postroom.web.forms.smtp_credentials import (
    SmtpCredentialCreateForm,
    SmtpCredentialForm,
    smtp_credential_initial,
)
from postroom.web.forms.users import add_service_error


@administrator_required
def smtp_credential_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "web/smtp_credentials/list.html",
        {
            "credentials": SmtpCredential.objects.select_related("created_by"),
            "listener": {
                "host": settings.POSTROOM_SMTPD_HOST,
                "port": settings.POSTROOM_SMTPD_PORT,
                "tls_port": settings.POSTROOM_SMTPD_TLS_PORT,
                "plain_port": settings.POSTROOM_SMTPD_PLAIN_PORT,
            },
            "certificate": listener_certificate(),
        },
    )


@administrator_required
def smtp_credential_create(request: HttpRequest) -> HttpResponse:
    form = SmtpCredentialCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            credential, password = services.credential_create(
                actor=request.user, username=form.cleaned_data["username"], values=form.settings()
            )
        except PostroomError as error:
            add_service_error(form, error)
        else:
            # Rendered in the POST's answer and never stored: a reload cannot show it again.
            response = render(
                request,
                "web/smtp_credentials/created.html",
                {
                    "credential": credential,
                    "password": password,
                    "host": settings.POSTROOM_SMTPD_HOST,
                    "port": settings.POSTROOM_SMTPD_PORT,
                },
            )
            add_never_cache_headers(response)
            return response
    return render(request, "web/smtp_credentials/form.html", {"form": form, "is_new": True})


@administrator_required
def smtp_credential_edit(request: HttpRequest, pk: int) -> HttpResponse:
    credential = get_object_or_404(SmtpCredential, pk=pk)
    form = SmtpCredentialForm(request.POST or None, initial=smtp_credential_initial(credential))
    if request.method == "POST" and form.is_valid():
        try:
            services.credential_update(
                actor=request.user, credential=credential, values=form.settings()
            )
        except PostroomError as error:
            add_service_error(form, error)
        else:
            messages.success(
                request, f"{credential.name} saved: the listener uses it within seconds."
            )
            return redirect("smtp_credential_list")
    return render(
        request,
        "web/smtp_credentials/form.html",
        {"form": form, "credential": credential, "is_new": False},
    )


@administrator_required
def smtp_credential_delete(request: HttpRequest, pk: int) -> HttpResponse:
    credential = get_object_or_404(SmtpCredential, pk=pk)
    if request.method == "POST":
        services.credential_delete(actor=request.user, credential=credential)
        messages.success(
            request, f"{credential.name} is removed: its logins are refused within seconds."
        )
        return redirect("smtp_credential_list")
    return render(request, "web/smtp_credentials/delete.html", {"credential": credential})


urlpatterns = [
    path("", smtp_credential_list, name="smtp_credential_list"),
    path("new/", smtp_credential_create, name="smtp_credential_create"),
    path("<int:pk>/", smtp_credential_edit, name="smtp_credential_edit"),
    path("<int:pk>/delete/", smtp_credential_delete, name="smtp_credential_delete"),
]
