"""The Sandbox capture pages: the mail the built-in capture server received, in sandbox mode.

Who reads what follows the Outbox: each user the mail they sent, administrators all of it,
including mail that reached the capture server from outside the outbox (see
postroom.inbox.selectors); someone else's capture is "not found". Only administrators
empty it.

Captured mail is untrusted HTML from anywhere. Its HTML part is shown only inside an
`<iframe sandbox="" srcdoc="...">` (no scripts, no forms, no same-origin access), and the
message page carries a Content-Security-Policy that the iframe inherits, which blocks remote
images and any script not served by Postroom itself. Attachments are always downloaded, never
displayed, and always as application/octet-stream, so a captured HTML or SVG file can never
run as a Postroom page.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_http_methods

from postroom.accounts.permissions import administrator_required
from postroom.core.errors import NotFoundError
from postroom.inbox import selectors, services
from postroom.inbox.mime import message_attachment, message_read, message_source_text
from postroom.inbox.models import CapturedMessage
from postroom.outbox.selectors import user_sees_all_messages

# A page of 50 rows reads comfortably and keeps the query and the HTML small.
MESSAGES_PER_PAGE = 50
# More text than anyone reads on a page, and little enough to keep the page fast; the .eml
# download always has the whole message.
DISPLAY_LIMIT_CHARS = 1_000_000

# What the message page may load. The sandboxed iframe inherits this policy (srcdoc
# documents do), so it governs the captured HTML too.
MESSAGE_PAGE_CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",  # Postroom's own static scripts; nothing inline, nothing remote
        # Mail is styled with <style> and style="" attributes; CSS runs no code, and what it
        # could fetch (fonts, images) is held to 'self' by the directives below.
        "style-src 'self' 'unsafe-inline'",
        # Remote images are blocked: loading one tells the sender the mail was opened.
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "frame-src 'self'",  # the srcdoc iframe; a link clicked inside it goes nowhere
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
# Downloads are files, never pages: should a browser render one anyway, it runs nothing.
DOWNLOAD_CSP = "default-src 'none'; sandbox"


def _message_or_404(request: HttpRequest, pk: int) -> CapturedMessage:
    try:
        return selectors.captured_message_get(user=request.user, pk=pk)
    except NotFoundError as error:
        raise Http404(error.message) from None


def _clipped(text: str | None) -> tuple[str | None, bool]:
    if text is None or len(text) <= DISPLAY_LIMIT_CHARS:
        return text, False
    return text[:DISPLAY_LIMIT_CHARS], True


def _download(content: bytes, *, filename: str, content_type: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    disposition = content_disposition_header(as_attachment=True, filename=filename)
    assert disposition is not None  # always a header when as_attachment
    response["Content-Disposition"] = disposition
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = DOWNLOAD_CSP
    response["Cache-Control"] = "private, no-store"
    return response


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
    content = message_read(raw)
    text, is_text_clipped = _clipped(content.text)
    html, is_html_clipped = _clipped(content.html)
    source, is_source_clipped = _clipped(message_source_text(raw))
    response = render(
        request,
        "web/inbox/message.html",
        {
            "message": message,
            "headers": content.headers,
            "text": text,
            "html": html,
            "attachments": content.attachments,
            "source": source,
            "is_text_clipped": is_text_clipped,
            "is_html_clipped": is_html_clipped,
            "is_source_clipped": is_source_clipped,
        },
    )
    response["Content-Security-Policy"] = MESSAGE_PAGE_CSP
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_GET
def inbox_message_raw(request: HttpRequest, pk: int) -> HttpResponse:
    message = _message_or_404(request, pk)
    return _download(
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
    return _download(
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
