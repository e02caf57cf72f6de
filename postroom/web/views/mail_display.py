"""Showing a stored message safely, on every page that shows one (the Outbox, the Sandbox
capture, the compose preview).

Mail is untrusted HTML. Its HTML part is shown only inside an `<iframe sandbox="" srcdoc>`
(template web/_mail_html.html: no scripts, no forms, no same-origin access), and the page
carries MESSAGE_PAGE_CSP, which the iframe inherits and which blocks remote images and any
script not served by Postroom itself. Attachments are always downloaded, never displayed,
and always as application/octet-stream, so an HTML or SVG file can never run as a page.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.utils.http import content_disposition_header

from postroom.mail.reading import message_read

# More text than anyone reads on a page, and little enough to keep the page fast; the .eml
# download always has the whole message.
DISPLAY_LIMIT_CHARS = 1_000_000

# What a page showing mail may load. The sandboxed iframe inherits this policy (srcdoc
# documents do), so it governs the mail's HTML too.
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


def clipped(text: str | None) -> tuple[str | None, bool]:
    """`text` cut to DISPLAY_LIMIT_CHARS, and whether it was cut."""
    if text is None or len(text) <= DISPLAY_LIMIT_CHARS:
        return text, False
    return text[:DISPLAY_LIMIT_CHARS], True


def mail_body_context(raw: bytes) -> dict[str, Any]:
    """What web/_mail_body.html shows of a message: its text, HTML and attachments."""
    content = message_read(raw)
    text, is_text_clipped = clipped(content.text)
    html, is_html_clipped = clipped(content.html)
    return {
        "headers": content.headers,
        "text": text,
        "html": html,
        "attachments": content.attachments,
        "is_text_clipped": is_text_clipped,
        "is_html_clipped": is_html_clipped,
    }


def mail_page(response: HttpResponse) -> HttpResponse:
    """Give a page that shows mail the policy its sandboxed frame inherits."""
    response["Content-Security-Policy"] = MESSAGE_PAGE_CSP
    # Nothing leaves for other sites; "no-referrer" would also make the browser send
    # "Origin: null" with the page's own forms (Retry, Cancel), which CSRF checks refuse.
    response["Referrer-Policy"] = "same-origin"
    return response


def file_download(content: bytes, *, filename: str, content_type: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    disposition = content_disposition_header(as_attachment=True, filename=filename)
    assert disposition is not None  # always a header when as_attachment
    response["Content-Disposition"] = disposition
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = DOWNLOAD_CSP
    response["Cache-Control"] = "private, no-store"
    return response
