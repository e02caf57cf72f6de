"""The headers of a message that a caller decides: which custom headers may be set, and what
Message-ID, Date and Subject may hold.

Everything else is built from typed fields (postroom.mail.message), added by the servers on
the way (Received, Return-Path, Authentication-Results, DKIM/ARC signatures), or describes the
MIME structure the builder owns. Both builders (postroom.mail.message and the bulk renderer)
check with these functions, so a header refused by one is refused by the other.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from postroom.core.errors import ValidationError
from postroom.mail.header_text import check_header_text, reject_control_characters

# RFC 5322 §3.6.8: field-name = 1*ftext, ftext = %d33-57 / %d59-126 (printable ASCII but ":").
_HEADER_NAME = re.compile(r"[!-9;-~]+")
# RFC 5322 §3.6.4 msg-id = "<" id-left "@" id-right ">", both dot-atom-text here.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
MESSAGE_ID = re.compile(rf"<{_ATEXT}(?:\.{_ATEXT})*@{_ATEXT}(?:\.{_ATEXT})*>")

# Headers a caller may add (see the module's docstring for where the others come from).
ALLOWED_HEADERS = frozenset(
    {
        "list-unsubscribe",  # RFC 2369; with List-Unsubscribe-Post, RFC 8058 one-click
        "list-unsubscribe-post",
        "list-id",  # RFC 2919
        "list-help",
        "list-subscribe",
        "list-post",
        "list-owner",
        "list-archive",
        "auto-submitted",  # RFC 3834
        "precedence",
        "in-reply-to",  # RFC 5322 §3.6.4
        "references",
        "keywords",  # RFC 5322 §3.6.5
        "comments",
        "organization",  # RFC 4021 §2.1.48
        "importance",
        "priority",
        "feedback-id",
    }
)
# X-* headers are free, except ones receivers trust as set by themselves or by a filter.
DENIED_X_PREFIXES = (
    "x-postroom-",  # ours
    "x-spam",
    "x-virus",
    "x-ms-exchange-",  # Exchange trusts X-MS-Exchange-Organization-* (spam verdicts, auth)
    "x-google-",
    "x-original-",
    "x-envelope-",
    "x-forwarded-",
    "x-originating-ip",
    "x-received",
    "x-authenticated",
    "x-auth-",
    "x-mailgun-",
    "x-ses-",
    "x-sg-",
)
_TYPED_FIELDS = {
    "from": "the sender field",
    "to": "the To recipients",
    "cc": "the Cc recipients",
    "bcc": "the Bcc recipients (they never appear in the headers)",
    "reply-to": "the Reply-To field",
    "subject": "the subject field",
    "date": "the outbox (it is set when the message is built)",
    "message-id": "the outbox (it is assigned at enqueue)",
    "mime-version": "the message builder",
}


def check_message_id(message_id: str) -> None:
    if MESSAGE_ID.fullmatch(message_id) is None:
        reject_control_characters(
            message_id, label="Message-ID", what="the value", field="message_id"
        )
        raise ValidationError(
            f"Message-ID {message_id!r} is not of the form <unique@domain>.", field="message_id"
        )


def check_date(date: datetime) -> None:
    if date.tzinfo is None or date.utcoffset() is None:
        # A naive time would be written as "-0000" (unknown zone, RFC 5322 §3.3).
        raise ValueError("The Date of a message must be a timezone-aware datetime")


def check_subject(subject: str) -> None:
    check_header_text(subject, label="Subject", what="the subject", field="subject")


def check_custom_headers(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """Return the custom headers in order, or raise ValidationError for the first bad one."""
    seen: set[str] = set()
    checked: list[tuple[str, str]] = []
    for name, value in headers.items():
        if not isinstance(name, str) or _HEADER_NAME.fullmatch(name) is None:
            raise ValidationError(
                f"Header name {name!r} is not valid: use printable ASCII letters, digits and "
                "dashes, without ':' or blanks (RFC 5322 §3.6.8).",
                field="headers",
            )
        lower = name.lower()
        if lower in seen:
            raise ValidationError(f"Header {name!r} is given twice.", field="headers")
        seen.add(lower)
        _check_header_allowed(name, lower)
        if not isinstance(value, str):
            raise ValidationError(f"Header {name!r}: the value must be text.", field="headers")
        check_header_text(value, label=f"Header {name}", what="the value", field="headers")
        if not value.strip():
            raise ValidationError(f"Header {name!r} has no value.", field="headers")
        checked.append((name, value))
    return checked


def _check_header_allowed(name: str, lower: str) -> None:
    if lower in _TYPED_FIELDS:
        raise ValidationError(
            f"Header {name!r} cannot be set as a custom header; it comes from "
            f"{_TYPED_FIELDS[lower]}.",
            field="headers",
        )
    if lower in ALLOWED_HEADERS:
        return
    if lower.startswith("x-") and not lower.startswith(DENIED_X_PREFIXES):
        return
    if lower.startswith("content-"):
        reason = "the MIME structure is built from the text, HTML and attachments"
    elif lower.startswith("x-"):
        reason = "receiving servers and filters trust it as set by themselves"
    else:
        reason = (
            "only X-* headers and List-*, Auto-Submitted, Precedence, In-Reply-To, References, "
            "Keywords, Comments, Organization, Importance, Priority and Feedback-ID can be set; "
            "trace, signature and resent headers are added by servers"
        )
    raise ValidationError(f"Header {name!r} is not allowed: {reason}.", field="headers")
