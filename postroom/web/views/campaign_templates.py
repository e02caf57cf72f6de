"""Campaign template pages: the list, create, edit, delete, and preview as a contact.

Marketers and administrators own them. The preview renders the letter exactly as a
campaign's message would be (CSS inlined, the text part generated if none is written, the
unsubscribe link filled in) for a chosen contact, with the warnings that matter to mail
programs (size, no text part, images without alt text).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from postroom.accounts.models import User
from postroom.accounts.permissions import marketer_required
from postroom.campaigns import campaign_templates as services
from postroom.campaigns.campaign_templates import (
    contact_row,
    letter_preview,
    preview_contact,
    sample_row,
)
from postroom.campaigns.models import CampaignTemplate
from postroom.campaigns.sending import letter_make, preview_sender
from postroom.core.errors import NotFoundError, PostroomError
from postroom.web.forms.campaigns import CampaignTemplateForm
from postroom.web.forms.users import add_service_error
from postroom.web.views.mail_display import mail_body_context, mail_page

PREVIEW_SUBJECT = "Preview of {{ contact.first_name }}'s letter"


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]  # LoginRequiredMiddleware


def _template_or_404(pk: int) -> CampaignTemplate:
    try:
        return services.campaign_template_get(pk=pk)
    except NotFoundError as error:
        raise Http404(error.message) from None


@require_GET
@marketer_required
def template_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "web/campaigns/template_list.html",
        {"templates": services.campaign_template_list()},
    )


@require_http_methods(["GET", "POST"])
@marketer_required
def template_create(request: HttpRequest) -> HttpResponse:
    form = CampaignTemplateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            template = services.campaign_template_create(
                actor=_user(request), fields=form.fields_value()
            )
        except PostroomError as error:
            add_service_error(form, error)
        else:
            messages.success(request, f"Template {template.name} was created.")
            return redirect("campaign_template_preview", pk=template.pk)
    return render(request, "web/campaigns/template_form.html", {"form": form, "template": None})


@require_http_methods(["GET", "POST"])
@marketer_required
def template_edit(request: HttpRequest, pk: int) -> HttpResponse:
    template = _template_or_404(pk)
    initial = {"name": template.name, "html": template.html, "text": template.text}
    form = CampaignTemplateForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.campaign_template_update(
                actor=_user(request), template=template, fields=form.fields_value()
            )
        except PostroomError as error:
            add_service_error(form, error)
        else:
            messages.success(request, "Saved.")
            return redirect("campaign_template_preview", pk=pk)
    return render(request, "web/campaigns/template_form.html", {"form": form, "template": template})


@require_POST
@marketer_required
def template_delete(request: HttpRequest, pk: int) -> HttpResponse:
    template = _template_or_404(pk)
    try:
        services.campaign_template_delete(actor=_user(request), template=template)
    except PostroomError as error:
        messages.error(request, error.message)
        return redirect("campaign_template_preview", pk=pk)
    messages.success(request, f"Template {template.name} was deleted.")
    return redirect("campaign_template_list")


@require_GET
@marketer_required
def template_preview(request: HttpRequest, pk: int) -> HttpResponse:
    template = _template_or_404(pk)
    contact, note = preview_contact(request.GET.get("contact", ""))
    context: dict[str, Any] = {"template": template, "contact": contact, "note": note}
    try:
        from_, reply_to = preview_sender()
        letter = letter_make(
            campaign_id=0,
            subject=PREVIEW_SUBJECT,
            html=template.html,
            text=template.text,
            from_=from_,
            reply_to=reply_to,
            is_tracking=False,
        )
        preview = letter_preview(
            letter,
            row=contact_row(contact) if contact else sample_row("jane.doe@example.com"),
            campaign_id=0,
            text_written=template.text,
            html_written=template.html,
        )
    except PostroomError as error:
        context["error"] = error.message
    else:
        context |= {"preview": preview, **mail_body_context(preview.raw)}
    return mail_page(render(request, "web/campaigns/template_preview.html", context))


urlpatterns = [
    path("", template_list, name="campaign_template_list"),
    path("new/", template_create, name="campaign_template_create"),
    path("<int:pk>/", template_preview, name="campaign_template_preview"),
    path("<int:pk>/edit/", template_edit, name="campaign_template_edit"),
    path("<int:pk>/delete/", template_delete, name="campaign_template_delete"),
]
