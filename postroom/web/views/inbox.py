"""The Sandbox capture pages: the mail the built-in capture server received, in sandbox mode.

Who reads what follows the Outbox: each user the mail they sent, administrators all of it,
including mail that reached the capture server from outside the outbox (see
postroom.inbox.selectors); someone else's capture is "not found". Only administrators
empty it.

Captured mail is untrusted HTML from anywhere: it is shown as web/views/mail_display.py
shows any mail (a sandboxed frame, a strict Content-Security-Policy, attachments only ever
downloaded as opaque files).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_http_methods

from postroom.accounts.permissions import administrator_required
from postroom.core.errors import NotFoundError
from postroom.inbox import selectors, services
from postroom.inbox.models import CapturedMessage
from postroom.mail.reading import message_attachment, message_source_text
from postroom.outbox.selectors import user_sees_all_messages
from postroom.web.views.mail_display import clipped, file_download, mail_body_context, mail_page

# A page of 50 rows reads comfortably and keeps the query and the HTML small.
MESSAGES_PER_PAGE = 50


def _message_or_404(request: HttpRequest, pk: int) -> CapturedMessage:
    try:
        return selectors.captured_message_get(user=request.user, pk=pk)
    except NotFoundError as error:
        raise Http404(error.message) from None


@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    page = Paginator(
        selectors.captured_message_list(user=request.user, query=query), MESSAGES_PER_PAGE
    ).get_page(request.GET.get("page"))
    return render(
        request,
        "web/inbox/list.html",
        {
            "page": page,
            "query": query,
            "capture_host": settings.POSTROOM_CAPTURE_HOST,
            "capture_port": settings.POSTROOM_CAPTURE_PORT,
            "sees_all": user_sees_all_messages(user=request.user),
        },
    )


@require_GET
def inbox_message(request: HttpRequest, pk: int) -> HttpResponse:
    message = _message_or_404(request, pk)
    raw = selectors.captured_message_raw(message=message)
    source, is_source_clipped = clipped(message_source_text(raw))
    context = {
        "message": message,
        **mail_body_context(raw),
        "attachment_url": "inbox_attachment",
        "source": source,
        "is_source_clipped": is_source_clipped,
    }
    return mail_page(render(request, "web/inbox/message.html", context))


@require_GET
def inbox_message_raw(request: HttpRequest, pk: int) -> HttpResponse:
    message = _message_or_404(request, pk)
    return file_download(
        selectors.captured_message_raw(message=message),
        filename=f"captured-{message.pk}.eml",
        # Mail programs open .eml files; Content-Disposition and nosniff keep browsers from
        # showing it as a page.
        content_type="message/rfc822",
    )


@require_GET
def inbox_attachment(request: HttpRequest, pk: int, number: int) -> HttpResponse:
    message = _message_or_404(request, pk)
    attachment = message_attachment(selectors.captured_message_raw(message=message), number=number)
    if attachment is None:
        raise Http404(f"Captured message #{pk} has no attachment {number}.")
    # Never the declared type: a captured text/html or image/svg+xml served as itself would
    # run as a Postroom page.
    return file_download(
        attachment.content, filename=attachment.filename, content_type="application/octet-stream"
    )


@require_http_methods(["GET", "POST"])
@administrator_required
def inbox_delete_all(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        count = services.captured_message_delete_all(actor=request.user)
        messages.success(request, f"Deleted {count} captured message{'' if count == 1 else 's'}.")
        return redirect("inbox")
    return render(
        request, "web/inbox/delete_all.html", {"count": selectors.captured_message_count()}
    )


urlpatterns = [
    path("", inbox, name="inbox"),
    path("delete/", inbox_delete_all, name="inbox_delete_all"),
    path("<int:pk>/", inbox_message, name="inbox_message"),
    path("<int:pk>/raw/", inbox_message_raw, name="inbox_message_raw"),
    path(
        "<int:pk>/attachments/<int:number>/",
        inbox_attachment,
        name="inbox_attachment",
    ),
]
