"""Build the exact RFC 5322 bytes of one message from typed fields (pure: no Django, no I/O).

The outbox stores what `build_message` returns and sends those bytes unchanged, so everything
about the wire format is decided here, once:

* `email.message.EmailMessage` with `policy.SMTP` (CRLF, RFC 2047 encoded words, headers folded
  at 76 columns); `policy.SMTPUTF8` only when an address in a header has a UTF-8 local part;
  Subject, custom headers, a single To mailbox, Message-ID and Date are folded by
  postroom.mail.folding, as the bulk renderer folds them (see the contract there): the
  package's folding, except where its output would not read back as written (it can drop the
  blank between two encoded words: a long Greek subject loses a space). The other address
  headers are folded by the package;
* no CR, LF, NUL or other control character in any header text (ValidationError at enqueue);
* custom headers only from an allow-list: a caller cannot forge Received, DKIM-Signature,
  Content-* or a second From, and cannot smuggle a Bcc into the headers;
* text parts are 7bit when plain short ASCII, else quoted-printable or base64, so every line is
  ≤ 76 octets (RFC 2045 §6.7) — far within RFC 5322 §2.1.1's 998; lone CR and lone LF become
  CRLF; a "." at the start of a line is left alone (the transport dot-stuffs, RFC 5321 §4.5.2);
* multipart boundaries are derived from a hash of the content, so building the same message
  twice gives the same bytes (a retry after a crash re-sends byte-identical mail).

`postroom.mail.bulk` renders bulk mail without `EmailMessage`; it shares the header order and
encoding choices below, and its tests check it against this module byte for byte.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage, MIMEPart
from email.policy import EmailPolicy
from typing import Any

from postroom.core.errors import ValidationError
from postroom.mail.addresses import Address, normalize_address
from postroom.mail.custom_headers import (
    MESSAGE_ID,
    check_custom_headers,
    check_date,
    check_message_id,
    check_subject,
)
from postroom.mail.encoding import POLICY, POLICY_SMTPUTF8, choose_text_cte
from postroom.mail.folding import FoldedDate, FoldedHeader, FoldedMailbox, FoldedMessageId
from postroom.mail.header_text import (
    check_header_phrase,
)
from postroom.mail.structure import check_message_shape, message_shape

# RFC 5321 §4.5.3.1.6: a text line is at most 1000 octets including CRLF.
MAX_LINE_OCTETS = 998
# Most file systems cap a file name at 255 bytes (ext4, NTFS, APFS NAME_MAX); longer names are
# mangled or refused by the recipient's mail client when saving.
MAX_FILENAME_LENGTH = 255

# RFC 2045 §5.1: type "/" subtype, both tokens.
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"  # noqa: S105 - an RFC 2045 token pattern
_CONTENT_TYPE = re.compile(rf"({_TOKEN})/({_TOKEN})")


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str  # "application/pdf"
    data: bytes


@dataclass(frozen=True)
class OutgoingEmail:
    """The typed fields of one message. An empty text or html (None or "") means no such part."""

    from_: Address
    to: list[Address] = field(default_factory=list)
    cc: list[Address] = field(default_factory=list)
    bcc: list[Address] = field(default_factory=list)
    reply_to: list[Address] = field(default_factory=list)
    subject: str = ""
    text: str | None = None
    html: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BuiltMessage:
    raw: bytes  # the exact bytes for DATA, CRLF line ends, not dot-stuffed
    envelope_from: str
    recipients: list[tuple[str, str]]  # (envelope address, "to" | "cc" | "bcc"), de-duplicated
    needs_smtputf8: bool  # some envelope or header address has a UTF-8 local part
    size: int  # len(raw): compare with the server's SIZE (RFC 1870)


def new_message_id(domain: str) -> str:
    """Return `<uuid4hex@domain>`: unique without coordination, so enqueue can assign it.

    `domain` is the sender's domain in ASCII (NormalizedAddress.ascii_domain); the right side
    of a Message-ID should name the originating domain (RFC 5322 §3.6.4).
    """
    domain = domain.strip().lower()
    if not domain.isascii() or MESSAGE_ID.fullmatch(f"<x@{domain}>") is None:
        raise ValueError(f"new_message_id needs an ASCII (punycode) domain, not {domain!r}")
    return f"<{uuid.uuid4().hex}@{domain}>"


def header_address(address: Address, normalized_addr_spec: str) -> HeaderAddress:
    # username/domain rather than addr_spec=: the package refuses to parse a UTF-8 local part.
    username, _, domain = normalized_addr_spec.rpartition("@")
    return HeaderAddress(address.display_name, username=username, domain=domain)


def ordered_headers(
    *,
    from_: Any,
    to: Any,
    cc: Any,
    reply_to: Any,
    subject: Any,
    date: Any,
    message_id: Any,
    headers: Sequence[tuple[str, Any]],
) -> list[tuple[str, Any]]:
    """The header order of every message; `bulk` passes placeholders for per-recipient values.

    Empty address lists (Falsy values) are left out.
    """
    fields: list[tuple[str, Any]] = [("From", from_)]
    if to:
        fields.append(("To", to))
    if cc:
        fields.append(("Cc", cc))
    if reply_to:
        fields.append(("Reply-To", reply_to))
    fields += [("Subject", subject), ("Date", date), ("Message-ID", message_id)]
    fields += headers
    return fields


def body_parts(text: str | None, html: str | None) -> list[tuple[str, str]]:
    """(subtype, content) of the text parts: plain first (RFC 2046 §5.1.4: best last)."""
    parts = [(subtype, value) for subtype, value in (("plain", text), ("html", html)) if value]
    return parts or [("plain", "")]  # a message always has a body, even an empty one


def content_boundaries(
    parts: Sequence[tuple[str, str]], attachments: Sequence[Attachment]
) -> tuple[str, str]:
    """(alternative, mixed) boundaries derived from the content, so a rebuild is identical."""
    digest = hashlib.sha256()
    for subtype, value in parts:
        digest.update(subtype.encode() + b"\0" + value.encode("utf-8", "surrogatepass") + b"\0")
    for attachment in attachments:
        digest.update(hashlib.sha256(attachment.data).digest())
    return boundaries_from_hash(digest.hexdigest())


def boundaries_from_hash(hexdigest: str) -> tuple[str, str]:
    # The email package's own shape ("=" runs cannot occur in quoted-printable or base64
    # output); two different 20-hex-digit halves, so neither boundary is a prefix of the other.
    return f"==============={hexdigest[:20]}==", f"==============={hexdigest[20:40]}=="


def multipart_content_type(subtype: str, boundary: str) -> str:
    return f'multipart/{subtype}; boundary="{boundary}"'


def text_part(
    text: str, subtype: str, *, boundaries: Sequence[str], policy: EmailPolicy[Any]
) -> MIMEPart:
    part = MIMEPart(policy=policy)
    part.set_content(text, subtype=subtype, cte=choose_text_cte(text, boundaries=boundaries))
    return part


def _check_body(value: str | None, name: str) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise ValidationError(f"The {name} body must be text.", field=name)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(
            f"The {name} body contains an invalid character (a lone surrogate).", field=name
        ) from None


def _check_attachments(
    attachments: Sequence[Attachment], max_attachment_bytes: int | None
) -> list[tuple[Attachment, str, str]]:
    checked = []
    total = 0
    for index, attachment in enumerate(attachments, start=1):
        label = f"Attachment {index}"
        filename = attachment.filename
        check_header_phrase(filename, label=label, what="the file name", field="attachments")
        if not filename.strip():
            raise ValidationError(f"{label}: the file name is empty.", field="attachments")
        if "/" in filename or "\\" in filename:
            raise ValidationError(
                f"{label}: the file name {filename!r} must not contain / or \\.",
                field="attachments",
            )
        if len(filename) > MAX_FILENAME_LENGTH:
            raise ValidationError(
                f"{label}: the file name is longer than {MAX_FILENAME_LENGTH} characters.",
                field="attachments",
            )
        match = _CONTENT_TYPE.fullmatch(attachment.content_type.strip().lower())
        if match is None or match.group(1) in {"multipart", "message"}:
            raise ValidationError(
                f"{label}: {attachment.content_type!r} is not a content type such as "
                "application/pdf (multipart/* and message/* are not accepted).",
                field="attachments",
            )
        if not isinstance(attachment.data, bytes | bytearray):
            raise ValidationError(f"{label}: the content must be bytes.", field="attachments")
        total += len(attachment.data)
        checked.append((attachment, match.group(1), match.group(2)))
    if max_attachment_bytes is not None and total > max_attachment_bytes:
        raise ValidationError(
            f"The attachments total {_megabytes(total)}, over the limit of "
            f"{_megabytes(max_attachment_bytes)} ({max_attachment_bytes} bytes); send fewer or "
            "smaller files, or raise the limit in the outbox settings if the mail server accepts "
            "larger messages.",
            field="attachments",
        )
    return checked


def _attachment_parts(
    attachments: Sequence[tuple[Attachment, str, str]], policy: EmailPolicy[Any]
) -> list[MIMEPart]:
    parts = []
    for attachment, maintype, subtype in attachments:
        part = MIMEPart(policy=policy)
        # Always base64 (RFC 2045 §6.8): safe for any bytes, and never contains a boundary.
        # A non-ASCII file name is written as RFC 2231 filename*=utf-8''… by the package.
        part.set_content(
            bytes(attachment.data),
            maintype=maintype,
            subtype=subtype,
            disposition="attachment",
            filename=attachment.filename,
        )
        parts.append(part)
    return parts


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


@dataclass(frozen=True)
class _Recipients:
    header_to: list[HeaderAddress]
    header_cc: list[HeaderAddress]
    header_reply_to: list[HeaderAddress]
    envelope: list[tuple[str, str]]
    headers_need_smtputf8: bool
    envelope_needs_smtputf8: bool


def _resolve_recipients(email: OutgoingEmail) -> _Recipients:
    header_lists: dict[str, list[HeaderAddress]] = {"to": [], "cc": [], "reply_to": []}
    envelope: list[tuple[str, str]] = []
    seen: set[str] = set()
    headers_utf8 = envelope_utf8 = False
    kinds = (("to", "To", email.to), ("cc", "Cc", email.cc), ("bcc", "Bcc", email.bcc))
    for kind, title, addresses in kinds:
        for index, address in enumerate(addresses, start=1):
            normalized = normalize_address(
                address.addr_spec, label=f"Recipient {index} ({title})", field=kind
            )
            envelope_utf8 |= normalized.needs_smtputf8
            if kind != "bcc":  # Bcc recipients are in the envelope only, never in a header
                header_lists[kind].append(header_address(address, normalized.addr_spec))
                headers_utf8 |= normalized.needs_smtputf8
            # The same mailbox twice (To and Cc) gets one delivery, under its first kind.
            if normalized.addr_spec.lower() not in seen:
                seen.add(normalized.addr_spec.lower())
                envelope.append((normalized.addr_spec, kind))
    for index, address in enumerate(email.reply_to, start=1):
        normalized = normalize_address(
            address.addr_spec, label=f"Reply-To {index}", field="reply_to"
        )
        header_lists["reply_to"].append(header_address(address, normalized.addr_spec))
        headers_utf8 |= normalized.needs_smtputf8
    if not envelope:
        raise ValidationError("Add at least one recipient (To, Cc or Bcc).", field="to")
    return _Recipients(
        header_to=header_lists["to"],
        header_cc=header_lists["cc"],
        header_reply_to=header_lists["reply_to"],
        envelope=envelope,
        headers_need_smtputf8=headers_utf8,
        envelope_needs_smtputf8=envelope_utf8,
    )


def build_message(
    email: OutgoingEmail,
    *,
    message_id: str,
    date: datetime,
    max_attachment_bytes: int | None = None,
    boundary: str | None = None,
) -> BuiltMessage:
    """Validate `email` and return its exact bytes and envelope.

    `boundary` overrides the multipart/alternative boundary; the bulk renderer passes its
    template's so both produce the same bytes. Raises ValidationError with `field` set.
    """
    check_message_id(message_id)
    check_date(date)
    check_subject(email.subject)
    custom_headers = check_custom_headers(email.headers)
    _check_body(email.text, "text")
    _check_body(email.html, "html")
    attachments = _check_attachments(email.attachments, max_attachment_bytes)
    sender = normalize_address(email.from_.addr_spec, label="From", field="from")
    recipients = _resolve_recipients(email)
    headers_utf8 = sender.needs_smtputf8 or recipients.headers_need_smtputf8
    policy = POLICY_SMTPUTF8 if headers_utf8 else POLICY

    msg = EmailMessage(policy=policy)
    to: Any = recipients.header_to
    if len(to) == 1 and not headers_utf8:  # the shape the bulk renderer writes itself
        to = FoldedMailbox("To", to[0].display_name, to[0].addr_spec)
    from_ = [header_address(email.from_, sender.addr_spec)]
    fields = ordered_headers(
        from_=from_,
        to=to,
        cc=recipients.header_cc,
        reply_to=recipients.header_reply_to,
        subject=FoldedHeader("Subject", email.subject),
        date=FoldedDate(date),
        message_id=FoldedMessageId(message_id),
        headers=[(name, FoldedHeader(name, value)) for name, value in custom_headers],
    )
    for name, value in fields:
        msg[name] = value
    msg["MIME-Version"] = "1.0"
    _set_body(msg, email, attachments, policy=policy, boundary=boundary)

    raw = msg.as_bytes(policy=policy)
    _check_wire_format(raw)
    _check_reads_back(raw, msg, email, from_, recipients, attachments)
    return BuiltMessage(
        raw=raw,
        envelope_from=sender.addr_spec,
        recipients=recipients.envelope,
        needs_smtputf8=sender.needs_smtputf8 or recipients.envelope_needs_smtputf8 or headers_utf8,
        size=len(raw),
    )


def _check_reads_back(
    raw: bytes,
    msg: EmailMessage,
    email: OutgoingEmail,
    from_: list[HeaderAddress],
    recipients: _Recipients,
    attachments: Sequence[tuple[Attachment, str, str]],
) -> None:
    """Parse `raw` back and compare it with what was asked (postroom.mail.structure)."""
    shape = message_shape(
        msg,
        addresses={
            "From": from_,
            "To": recipients.header_to,
            "Cc": recipients.header_cc,
            "Reply-To": recipients.header_reply_to,
        },
        subject=email.subject,
        filenames=[attachment.filename for attachment, _, _ in attachments],
    )
    check_message_shape(raw, shape)


def _set_body(
    msg: EmailMessage,
    email: OutgoingEmail,
    attachments: Sequence[tuple[Attachment, str, str]],
    *,
    policy: EmailPolicy[Any],
    boundary: str | None,
) -> None:
    """The text part, or multipart/alternative of text and HTML, inside multipart/mixed when
    there are attachments (RFC 2046 §5.1.3, §5.1.4)."""
    parts = body_parts(email.text, email.html)
    alternative, mixed = content_boundaries(parts, [a for a, _, _ in attachments])
    alternative = boundary or alternative
    is_alternative = len(parts) > 1
    # The boundaries a text part sits inside: a 7bit part must not contain them.
    enclosing = ((alternative,) if is_alternative else ()) + ((mixed,) if attachments else ())
    text_parts: list[Any] = [text_part(c, s, boundaries=enclosing, policy=policy) for s, c in parts]
    if not is_alternative and not attachments:
        subtype, content = parts[0]
        msg.set_content(content, subtype=subtype, cte=choose_text_cte(content))
    elif not attachments:
        msg["Content-Type"] = multipart_content_type("alternative", alternative)
        msg.set_payload(text_parts)
    else:
        body = text_parts[0]
        if is_alternative:
            body = MIMEPart(policy=policy)
            body["Content-Type"] = multipart_content_type("alternative", alternative)
            body.set_payload(text_parts)
        msg["Content-Type"] = multipart_content_type("mixed", mixed)
        msg.set_payload([body, *_attachment_parts(attachments, policy)])


def _check_wire_format(raw: bytes) -> None:
    # The encodings above guarantee both; this catches a future change that breaks them
    # before a server does (RFC 5322 §2.1.1 / §2.3: CRLF only, lines ≤ 998 octets).
    if not raw.endswith(b"\r\n") or raw.count(b"\n") != raw.count(b"\r\n"):
        raise ValidationError("The built message has bare line ends.", field="text")
    if raw.count(b"\r") != raw.count(b"\r\n"):
        raise ValidationError("The built message has bare carriage returns.", field="text")
    if max(map(len, raw.split(b"\r\n"))) > MAX_LINE_OCTETS:
        raise ValidationError(
            f"A line of the built message is longer than {MAX_LINE_OCTETS} octets "
            "(RFC 5322 §2.1.1).",
            field="text",
        )
