"""Contact Email pages: compose (with a preview), the saved templates, and "Sent".

Every logged-in role may compose, preview and send, and use every template; everyone creates
templates of their own, which their creator and the administrators edit. "Sent" lists the
mail the user sent, whatever its source. Mail is queued in the outbox, from the user's
address as the company's send-as policy applies it (postroom.compose.services).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import urlencode
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from postroom.accounts.models import User
from postroom.compose import email_templates
from postroom.compose import selectors as compose_selectors
from postroom.compose.html import html_sanitize, html_to_text, text_to_html
from postroom.compose.models import EmailTemplate
from postroom.compose.recipients import addresses_split
from postroom.compose.services import (
    ComposePreview,
    compose_form_key,
    compose_plan,
    message_compose,
    message_compose_preview,
)
from postroom.contacts.selectors import contact_list_by_ids
from postroom.core.errors import NotFoundError, PermissionDeniedError, PostroomError
from postroom.mail.addresses import Address
from postroom.mail.reading import message_read, message_source_text
from postroom.outbox.enqueue import IdempotencyConflictError
from postroom.outbox.models import SendAs
from postroom.web.forms.compose import (
    INDIVIDUALLY,
    MERGE_HELP,
    ComposeForm,
    EmailTemplateForm,
    add_compose_error,
    sanitized_post,
    uploaded_attachments,
)
from postroom.web.uploads import UploadSizeCap, upload_cap_install
from postroom.web.views.mail_display import MESSAGE_PAGE_CSP

# Room for the form's text fields and the multipart framing on top of the attachments.
UPLOAD_SLACK_BYTES = 2 * 1024 * 1024
# The preview shows the start of a long source (attachments are base64 in it); the outbox
# keeps the whole message once it is queued.
PREVIEW_SOURCE_CHARS = 200_000
# The form's key came back with other recipients or another subject (the browser's Back
# button keeps a sent form): its first messages are queued, and a new email needs a new form.
_SENT_BEFORE = (
    "This form was sent before, with other recipients, another subject or the other way of "
    "sending; those messages are under Sent. To write a new email, open Compose again."
)


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]  # LoginRequiredMiddleware


def _megabytes(size: int) -> str:
    # Binary megabytes, as the default limit is written (25 * 1024 * 1024: "25.0 MB").
    return f"{size / 1024 / 1024:.1f} MB"


def _install_cap(request: HttpRequest) -> UploadSizeCap:
    """Stop reading uploads past the message size limit, instead of storing them first."""
    return upload_cap_install(
        request, limit=settings.POSTROOM_MAX_MESSAGE_BYTES + UPLOAD_SLACK_BYTES
    )


def _too_big_message() -> str:
    limit = settings.POSTROOM_MAX_MESSAGE_BYTES
    return (
        f"The attachments are larger than {_megabytes(limit)} ({limit:,} bytes, "
        "POSTROOM_MAX_MESSAGE_BYTES), the limit of a message. Attach fewer or smaller files, "
        "or share large files by link."
    )


def _sender_summary(user: User) -> dict[str, Any]:
    """What From will say, as the company's send-as policy applies it, before writing."""
    try:
        choice = compose_selectors.compose_sender_get(user=user)
    except PostroomError as error:
        return {"problem": error.message}
    return {
        "from": choice.email.from_.formatted,
        "reply_to": ", ".join(address.formatted for address in choice.email.reply_to),
        "is_via_company": choice.send_as == SendAs.VIA_COMPANY,
        "fallback_from": choice.fallback.from_.formatted if choice.fallback else "",
    }


def _send_plan(values: Any, *, is_individual: bool) -> dict[str, Any]:
    """What Send will do with the recipient fields as typed (`values`: the posted form or
    its initial values), for web/compose/_plan.html: shown next to Send before sending."""
    try:
        plan = compose_plan(
            to=addresses_split(str(values.get("to") or "")),
            cc=addresses_split(str(values.get("cc") or "")),
            bcc=addresses_split(str(values.get("bcc") or "")),
            is_individual=is_individual,
        )
    except PostroomError as error:
        return {"plan": None, "plan_problem": error.message}
    return {"plan": plan, "plan_problem": ""}


def _compose_context(request: HttpRequest, form: ComposeForm, **extra: Any) -> dict[str, Any]:
    user = _user(request)
    values = form.data if form.is_bound else form.initial
    return {
        "form": form,
        "has_email": bool(user.email),
        "sender": _sender_summary(user) if user.email else {},
        "max_size": _megabytes(settings.POSTROOM_MAX_MESSAGE_BYTES),
        "merge_help": MERGE_HELP,
        "is_individual": form.is_individual(),
        **_send_plan(values, is_individual=form.is_individual()),
        **extra,
    }


def _template_values(template: EmailTemplate) -> dict[str, str]:
    """Subject and body for the form. A rich-text template's text is generated for the
    plain-text box, which is what is sent without scripts (or when switched to plain)."""
    # Saved templates are sanitized when saved; once more here, as this HTML goes straight
    # into the editor, whatever put it in the database.
    html = html_sanitize(template.html) if template.html else ""
    return {
        "subject": template.subject,
        "text": template.text or (html_to_text(html) if html else ""),
        "html": html,
    }


def _initial(request: HttpRequest) -> dict[str, Any]:
    """The compose form from a link: ?contact=<id> (repeatable), ?to=, ?template=<id>."""
    initial: dict[str, Any] = {}
    ids = [int(value) for value in request.GET.getlist("contact") if value.isdigit()][:100]
    recipients = []
    for contact in contact_list_by_ids(ids=ids):
        try:
            recipients.append(Address(contact.name, contact.email).formatted)
        except PostroomError:
            recipients.append(contact.email)
    recipients += [value.strip() for value in request.GET.getlist("to") if value.strip()]
    if recipients:
        initial["to"] = "\n".join(recipients)
    if request.GET.get("delivery") == INDIVIDUALLY:
        initial["delivery"] = INDIVIDUALLY
    template_id = request.GET.get("template", "")
    if template_id.isdigit():
        template = EmailTemplate.objects.filter(pk=int(template_id)).first()
        if template is not None:
            initial.update(_template_values(template), template=template)
    return initial


@csrf_exempt  # checked by csrf_protect below, once the size cap handler is in place
@require_http_methods(["GET", "POST"])
def compose(request: HttpRequest) -> HttpResponse:
    return _compose(request, _install_cap(request))


@csrf_protect
def _compose(request: HttpRequest, cap: UploadSizeCap) -> HttpResponse:
    if request.method != "POST":
        form = ComposeForm(initial=_initial(request))
        return render(request, "web/compose/compose.html", _compose_context(request, form))
    data = sanitized_post(request.POST)
    had_files = bool(request.FILES) or cap.is_exceeded
    if request.POST.get("action") == "template":
        form = _form_with_template(data)
        return render(
            request,
            "web/compose/compose.html",
            _compose_context(request, form, had_files=had_files),
        )
    form = ComposeForm(data, request.FILES)
    if cap.is_exceeded:
        form.is_valid()
        form.add_error("attachments", _too_big_message())
    elif form.is_valid():
        try:
            queued = message_compose(
                request=form.compose_request(
                    user=_user(request),
                    attachments=uploaded_attachments(request.FILES.getlist("attachments")),
                    idempotency_key=compose_form_key(key=form.cleaned_data["key"]),
                )
            )
        except IdempotencyConflictError:
            form.add_error(None, _SENT_BEFORE)
        except PostroomError as error:
            add_compose_error(form, error)
        else:
            count = len(queued)
            messages.success(
                request, f"{count} message{'s' if count != 1 else ''} queued in the outbox."
            )
            query = urlencode([("message", message.pk) for message in queued])
            return redirect(f"{reverse('compose_queued')}?{query}")
    return render(
        request, "web/compose/compose.html", _compose_context(request, form, had_files=had_files)
    )


def _form_with_template(data: Any) -> ComposeForm:
    """The no-script "Use template" button: fill subject and body, keep the recipients.
    The editor gets the template's HTML as well, for when scripts do run."""
    template_id = data.get("template", "")
    template = None
    if template_id.isdigit():
        template = EmailTemplate.objects.filter(pk=int(template_id)).first()
    if template is not None:
        for name, value in _template_values(template).items():
            data[name] = value
    return ComposeForm(data)


@csrf_exempt  # checked by csrf_protect below, once the size cap handler is in place
@require_POST
def compose_preview_page(request: HttpRequest) -> HttpResponse:
    return _compose_preview_page(request, _install_cap(request))


@csrf_protect
def _compose_preview_page(request: HttpRequest, cap: UploadSizeCap) -> HttpResponse:
    """The exact message for one To recipient, in a tab of its own: nothing is queued."""
    form = ComposeForm(sanitized_post(request.POST), request.FILES)
    errors: list[str] = []
    preview: ComposePreview | None = None
    if cap.is_exceeded:
        errors.append(_too_big_message())
    elif form.is_valid():
        try:
            preview = message_compose_preview(
                request=form.compose_request(
                    user=_user(request),
                    attachments=uploaded_attachments(request.FILES.getlist("attachments")),
                ),
                number=form.cleaned_data["preview"] or 1,
            )
        except PostroomError as error:
            errors.append(error.message)
    else:
        for name, field_errors in form.errors.items():
            label = form.fields[name].label if name in form.fields else ""
            errors += [f"{label}: {error}" if label else str(error) for error in field_errors]
    context: dict[str, Any] = {"errors": errors, "preview": preview}
    if preview is not None:
        content = message_read(preview.raw)
        source = message_source_text(preview.raw)
        context.update(
            plan=preview.plan,
            shown=preview.shown,
            content=content,
            source=source[:PREVIEW_SOURCE_CHARS],
            is_source_clipped=len(source) > PREVIEW_SOURCE_CHARS,
            fallback_from=preview.choice.fallback.from_.formatted
            if preview.choice.fallback
            else "",
        )
    response = render(request, "web/compose/preview.html", context)
    # The sandboxed iframe inherits this policy: no script, no remote image in the preview.
    response["Content-Security-Policy"] = MESSAGE_PAGE_CSP
    response["Referrer-Policy"] = "no-referrer"
    add_never_cache_headers(response)
    return response


@require_GET
def compose_queued(request: HttpRequest) -> HttpResponse:
    """What a send queued: each message (linked to the outbox) and its recipients' contacts."""
    ids = [int(value) for value in request.GET.getlist("message") if value.isdigit()][:200]
    queued = compose_selectors.sent_message_list(user=_user(request), ids=ids)
    contacts = compose_selectors.contacts_by_address(
        addresses=[recipient.address for message in queued for recipient in message.listed]  # type: ignore[attr-defined]
    )
    rows = [
        {
            "message": message,
            "contacts": [
                contacts[recipient.address.lower()]
                for recipient in message.listed  # type: ignore[attr-defined]
                if recipient.address.lower() in contacts
            ],
        }
        for message in queued
    ]
    return render(request, "web/compose/queued.html", {"rows": rows})


@require_POST
def compose_plan_page(request: HttpRequest) -> HttpResponse:
    """What Send will do with the recipients typed so far, for compose.js (as they change)."""
    response = render(
        request,
        "web/compose/_plan.html",
        _send_plan(request.POST, is_individual=request.POST.get("delivery") == INDIVIDUALLY),
    )
    add_never_cache_headers(response)
    return response


@require_GET
def compose_contact_search(request: HttpRequest) -> HttpResponse:
    """Contacts matching what is typed in "Find a contact", for htmx."""
    query = request.GET.get("q", "")
    contacts = compose_selectors.compose_contact_search(query=query)
    suggestions = []
    for contact in contacts:
        try:
            formatted = Address(contact.name, contact.email).formatted
        except PostroomError:
            formatted = contact.email
        suggestions.append({"contact": contact, "address": formatted})
    response = render(
        request,
        "web/compose/_suggestions.html",
        {
            "suggestions": suggestions,
            "query": query.strip(),
            "min_chars": compose_selectors.MIN_SEARCH_CHARS,
        },
    )
    add_never_cache_headers(response)
    return response


def _template_or_404(pk: int) -> EmailTemplate:
    try:
        return email_templates.email_template_get(pk=pk)
    except NotFoundError as error:
        raise Http404(error.message) from None


@require_GET
def compose_template_values(request: HttpRequest, pk: int) -> JsonResponse:
    """A template's subject and body, which compose.js puts into the form."""
    template = _template_or_404(pk)
    values = _template_values(template)
    # The editor's start when the template is plain text and the user picks rich text.
    values["text_as_html"] = text_to_html(values["text"]) if not values["html"] else ""
    return JsonResponse(values)


# Templates.


@require_GET
def email_template_list(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    templates = [
        (template, email_templates.email_template_can_edit(user=user, template=template))
        for template in email_templates.email_template_list()
    ]
    return render(request, "web/email_templates/list.html", {"templates": templates})


def _template_form_context(form: EmailTemplateForm, **extra: Any) -> dict[str, Any]:
    return {"form": form, "merge_help": MERGE_HELP, **extra}


@require_http_methods(["GET", "POST"])
def email_template_create(request: HttpRequest) -> HttpResponse:
    is_post = request.method == "POST"
    form = EmailTemplateForm(sanitized_post(request.POST) if is_post else None)
    if is_post and form.is_valid():
        text, html = form.body()
        try:
            template = email_templates.email_template_create(
                actor=_user(request),
                name=form.cleaned_data["name"],
                subject=form.cleaned_data["subject"],
                text=text,
                html=html,
            )
        except PostroomError as error:
            add_compose_error(form, error)
        else:
            messages.success(request, f"Template {template.name} was saved.")
            return redirect("email_template_list")
    return render(request, "web/email_templates/form.html", _template_form_context(form))


def _require_can_edit(request: HttpRequest, template: EmailTemplate) -> None:
    if not email_templates.email_template_can_edit(user=_user(request), template=template):
        raise PermissionDenied(
            "Only the person who created this template and administrators can change it."
        )


@require_http_methods(["GET", "POST"])
def email_template_edit(request: HttpRequest, pk: int) -> HttpResponse:
    template = _template_or_404(pk)
    _require_can_edit(request, template)
    is_post = request.method == "POST"
    initial = {"name": template.name, **_template_values(template)}
    form = EmailTemplateForm(sanitized_post(request.POST) if is_post else None, initial=initial)
    if is_post and form.is_valid():
        text, html = form.body()
        try:
            email_templates.email_template_update(
                actor=_user(request),
                template=template,
                name=form.cleaned_data["name"],
                subject=form.cleaned_data["subject"],
                text=text,
                html=html,
            )
        except PermissionDeniedError as error:
            raise PermissionDenied(error.message) from None
        except PostroomError as error:
            add_compose_error(form, error)
        else:
            messages.success(request, f"Template {template.name} was saved.")
            return redirect("email_template_list")
    return render(
        request, "web/email_templates/form.html", _template_form_context(form, template=template)
    )


@require_http_methods(["GET", "POST"])
def email_template_delete(request: HttpRequest, pk: int) -> HttpResponse:
    template = _template_or_404(pk)
    _require_can_edit(request, template)
    if request.method == "POST":
        email_templates.email_template_delete(actor=_user(request), template=template)
        messages.success(
            request, f"Template {template.name} was deleted. Mail sent with it is unchanged."
        )
        return redirect("email_template_list")
    return render(request, "web/email_templates/delete.html", {"template": template})


# Sent.


def _page_key(request: HttpRequest, name: str) -> int | None:
    value = request.GET.get(name, "")
    return int(value) if value.isdigit() and len(value) <= 18 else None


@require_GET
def sent(request: HttpRequest) -> HttpResponse:
    page = compose_selectors.sent_page(
        user=_user(request),
        before=_page_key(request, "before"),
        after=_page_key(request, "after"),
    )
    return render(request, "web/compose/sent.html", {"page": page})


urlpatterns = [
    path("compose/", compose, name="compose"),
    path("compose/preview/", compose_preview_page, name="compose_preview"),
    path("compose/queued/", compose_queued, name="compose_queued"),
    path("compose/plan/", compose_plan_page, name="compose_plan"),
    path("compose/contacts/", compose_contact_search, name="compose_contact_search"),
    path("compose/template/<int:pk>/", compose_template_values, name="compose_template_values"),
    path("templates/", email_template_list, name="email_template_list"),
    path("templates/new/", email_template_create, name="email_template_create"),
    path("templates/<int:pk>/edit/", email_template_edit, name="email_template_edit"),
    path("templates/<int:pk>/delete/", email_template_delete, name="email_template_delete"),
    path("sent/", sent, name="sent"),
]
