"""Outbox pages: every message with its status, its recipients and attempts, Retry and Cancel.

Administrators see every message; other users see the messages they sent (see
postroom.outbox.selectors), and someone else's message is "not found" to them. Paused
servers are shown to everyone, since they hold everyone's mail, but only administrators can
resume them.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from postroom.accounts.permissions import administrator_required
from postroom.core.errors import NotFoundError, PermissionDeniedError, PostroomError
from postroom.inbox.selectors import captured_copies
from postroom.mail.reading import message_attachment
from postroom.outbox import actions, pauses, selectors
from postroom.outbox.explanations import recipient_explanations
from postroom.outbox.models import Lane, Message, MessageStatus
from postroom.outbox.selectors import MessageFilters
from postroom.web.views.mail_display import file_download, mail_body_context, mail_page

# RFC 5321 §4.5.3.1.3: a path is at most 256 octets; a filter longer than an address is a typo.
FILTER_TEXT_MAX_LENGTH = 320
# The list shows the start of the last error; the message page shows all of it.
ERROR_SNIPPET_CHARS = 120
CANCELLABLE_STATUSES = (MessageStatus.QUEUED, MessageStatus.DEFERRED)


class OutboxFilterForm(forms.Form):
    status = forms.ChoiceField(
        label="Status", required=False, choices=[("", "Any status"), *MessageStatus.choices]
    )
    lane = forms.ChoiceField(
        label="Lane", required=False, choices=[("", "Any lane"), *Lane.choices]
    )
    sender = forms.CharField(
        label="From",
        required=False,
        max_length=FILTER_TEXT_MAX_LENGTH,
        help_text="Part of the sender's address or name",
        widget=forms.TextInput(attrs={"type": "search"}),
    )
    recipient = forms.CharField(
        label="To",
        required=False,
        max_length=FILTER_TEXT_MAX_LENGTH,
        help_text="Part of any recipient's address",
        widget=forms.TextInput(attrs={"type": "search"}),
    )
    created_from = forms.DateField(
        label="Created from", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    created_to = forms.DateField(
        label="Created until", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def filters(self) -> MessageFilters:
        """The valid filters; an invalid one is shown with its error and ignored."""
        self.is_valid()
        data = {name: value for name, value in self.cleaned_data.items() if value}
        for text in ("sender", "recipient"):
            if text in data:
                data[text] = data[text].strip()
        return MessageFilters(**data)


def _page_key(request: HttpRequest, name: str) -> int | None:
    value = request.GET.get(name, "")
    return int(value) if value.isdigit() else None


@require_GET
def outbox(request: HttpRequest) -> HttpResponse:
    form = OutboxFilterForm(request.GET)
    filters = form.filters()
    page = selectors.message_page(
        user=request.user,
        filters=filters,
        before=_page_key(request, "before"),
        after=_page_key(request, "after"),
    )
    counts = selectors.message_status_counts(user=request.user, filters=filters)
    chips = [
        {"value": value, "label": label, "count": counts[value]}
        for value, label in MessageStatus.choices
    ]
    return render(
        request,
        "web/outbox/list.html",
        {
            "form": form,
            "filters": filters,
            "page": page,
            "chips": chips,
            "total": sum(counts.values()),
            "sees_all": selectors.user_sees_all_messages(user=request.user),
            "error_snippet_chars": ERROR_SNIPPET_CHARS,
        },
    )


def _message_or_404(request: HttpRequest, pk: int) -> Message:
    try:
        return selectors.message_get(user=request.user, pk=pk)
    except (NotFoundError, PermissionDeniedError):
        # Someone else's message answers exactly as one that does not exist: a 403 would
        # tell a user that mail with this number exists, and so how much others send.
        raise Http404(f"There is no message {pk} in the outbox.") from None


@require_GET
def outbox_message(request: HttpRequest, pk: int) -> HttpResponse:
    message = _message_or_404(request, pk)
    detail = selectors.message_detail(message=message)
    explanations = recipient_explanations(message=message, recipients=detail.recipients)
    context = {
        "detail": detail,
        "message": message,
        "recipient_rows": [(r, explanations.get(r.pk, "")) for r in detail.recipients],
        "can_retry": message.status in actions.RETRYABLE_MESSAGE_STATUSES,
        "can_cancel": message.status in CANCELLABLE_STATUSES,
        "attachment_url": "outbox_attachment",
        "captured_copies": captured_copies(message_pk=message.pk),
    }
    raw = _raw_or_none(message)
    if raw is not None:  # a bulk message's too, rendered from its template as when sent
        context |= {"has_body": True, **mail_body_context(raw)}
    return mail_page(render(request, "web/outbox/message.html", context))


def _raw_or_none(message: Message) -> bytes | None:
    try:
        return selectors.message_raw(message=message)
    except NotFoundError:
        return None


def eml_filename(message_id: str) -> str:
    """A safe download name from a Message-ID: `<a.b@example.com>` -> `a.b_example.com.eml`."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", message_id.strip("<> ")).strip("._")
    # 100 characters keeps the name readable and far below every file system's 255.
    return f"{stem[:100] or 'message'}.eml"


@require_GET
def outbox_message_raw(request: HttpRequest, pk: int) -> HttpResponse:
    message = _message_or_404(request, pk)
    try:
        raw = selectors.message_raw(message=message)
    except NotFoundError as error:
        raise Http404(error.message) from None
    return file_download(
        raw, filename=eml_filename(message.message_id), content_type="message/rfc822"
    )


@require_GET
def outbox_attachment(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    message = _message_or_404(request, pk)
    raw = _raw_or_none(message)
    attachment = message_attachment(raw, number=number) if raw is not None else None
    if attachment is None:
        raise Http404(f"Message {pk} has no attachment {number}.")
    return file_download(
        attachment.content, filename=attachment.filename, content_type="application/octet-stream"
    )


def _act(request: HttpRequest, pk: int, action: Any, done: str) -> HttpResponse:
    message = _message_or_404(request, pk)
    try:
        action(message=message)
    except PostroomError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, done)
    return redirect("outbox_message", pk=message.pk)


@require_POST
def outbox_message_retry(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        actions.message_retry,
        "The message is queued again for every recipient that did not get it.",
    )


@require_POST
def outbox_message_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        actions.message_cancel,
        "The message is cancelled: recipients that did not get it yet will not.",
    )


@require_POST
@administrator_required
def outbox_server_resume(request: HttpRequest) -> HttpResponse:
    server = request.POST.get("server", "")
    if not pauses.server_is_paused(server=server):
        messages.error(request, f"Sending through {server or 'that server'} is not paused.")
    else:
        pauses.server_resume(server=server)
        messages.success(
            request,
            f"Sending through {server} resumed. If the same problem comes back, the server "
            "pauses again; check Company > SMTP Server Information first.",
        )
    return redirect("outbox")


urlpatterns = [
    path("", outbox, name="outbox"),
    path("<int:pk>/", outbox_message, name="outbox_message"),
    path("<int:pk>/raw/", outbox_message_raw, name="outbox_message_raw"),
    path("<int:pk>/attachments/<int:number>/", outbox_attachment, name="outbox_attachment"),
    path("<int:pk>/retry/", outbox_message_retry, name="outbox_message_retry"),
    path("<int:pk>/cancel/", outbox_message_cancel, name="outbox_message_cancel"),
    path("servers/resume/", outbox_server_resume, name="outbox_server_resume"),
]
