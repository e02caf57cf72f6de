"""Reading stored mail: a summary for a list, headers, bodies and attachments for its page.

Pure functions over the received bytes: no network, no database. Anything a client sent can
land in the sandbox capture, so every reader tolerates broken MIME (unknown charsets, bad
base64, malformed headers): it shows what it can and never raises.
"""

from __future__ import annotations

import contextlib
import mimetypes
import re
from dataclasses import dataclass
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser, BytesParser

# The list and the message page show decoded header text, never raw encoded-words. Headers
# in raw UTF-8 (RFC 6532, sent with SMTPUTF8) are read as UTF-8 by this policy too.
_POLICY = policy.default
# Control characters and path separators have no place in a download's file name.
_UNSAFE_FILENAME = re.compile(r"[\x00-\x1f\x7f/\\]+")
# Long enough for any real file name, short enough for every file system (255 bytes) even
# when each character takes a few bytes in UTF-8.
_FILENAME_MAX_CHARS = 120


@dataclass(frozen=True)
class MessageSummary:
    from_header: str
    to_header: str
    subject: str
    message_id: str
    has_attachments: bool


@dataclass(frozen=True)
class AttachmentInfo:
    number: int  # 1-based, as in the download address
    filename: str
    content_type: str  # as the mail declares it; downloads never serve it
    size: int  # decoded bytes
    is_inline: bool


@dataclass(frozen=True)
class MessageContent:
    headers: list[tuple[str, str]]
    text: str | None
    html: str | None
    attachments: list[AttachmentInfo]


@dataclass(frozen=True)
class AttachmentFile:
    filename: str
    content: bytes


def message_parse(raw: bytes) -> EmailMessage:
    message = BytesParser(policy=_POLICY).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


def header_texts(raw: bytes, names: tuple[str, ...]) -> dict[str, str]:
    """The first value of each named header ("" when absent), as `_decoded` reads it.

    For the listener's and send_mail's hot path: only the header block is parsed, without
    the header registry (compat32), and only a value with encoded-words or raw UTF-8 goes
    through the full decoding; about ten times cheaper than parsing with the default policy.
    """
    head = raw.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    headers = BytesHeaderParser(policy=policy.compat32).parsebytes(head, headersonly=True)
    wanted = {name.lower(): name for name in names}
    texts = dict.fromkeys(names, "")
    for key, value in headers.raw_items():  # raw: compat32 would wrap non-ASCII in Header
        name = wanted.pop(key.lower(), None)
        if name is None:
            continue
        if "=?" in value or not value.isascii():
            texts[name] = _decoded(name, value)
        else:
            texts[name] = re.sub(r"\r?\n([ \t])", r"\1", value).strip()
    return texts


def message_summarize(raw: bytes) -> MessageSummary:
    message = message_parse(raw)
    return MessageSummary(
        from_header=_header_text(message, "From"),
        to_header=_header_text(message, "To"),
        subject=_header_text(message, "Subject"),
        message_id=_header_text(message, "Message-ID"),
        has_attachments=bool(_attachment_parts(message)),
    )


def message_read(raw: bytes) -> MessageContent:
    """Everything the message page shows, except the source."""
    message = message_parse(raw)
    text_part, html_part = _body_parts(message)
    attachments = []
    for number, part in enumerate(_attachment_parts(message), start=1):
        attachments.append(
            AttachmentInfo(
                number=number,
                filename=_filename(part, number),
                content_type=part.get_content_type(),
                size=len(_part_bytes(part)),
                is_inline=part.get_content_disposition() == "inline",
            )
        )
    return MessageContent(
        headers=[(_storable(name), _decoded(name, value)) for name, value in message.raw_items()],
        text=_part_text(text_part) if text_part is not None else None,
        html=_part_text(html_part) if html_part is not None else None,
        attachments=attachments,
    )


def message_attachment(raw: bytes, *, number: int) -> AttachmentFile | None:
    """The decoded content of attachment `number` (1-based), or None if there is none."""
    parts = _attachment_parts(message_parse(raw))
    if not 1 <= number <= len(parts):
        return None
    part = parts[number - 1]
    return AttachmentFile(filename=_filename(part, number), content=_part_bytes(part))


def message_source_text(raw: bytes) -> str:
    """The raw message as text for "Show source": UTF-8 where it is, U+FFFD where not."""
    return raw.decode("utf-8", errors="replace")


# -- parts -------------------------------------------------------------------------------


def _body_parts(message: EmailMessage) -> tuple[Message | None, Message | None]:
    return (
        message.get_body(preferencelist=("plain",)),
        message.get_body(preferencelist=("html",)),
    )


def _leaf_parts(part: Message) -> list[Message]:
    # An attached message (message/rfc822) is one attachment, not a source of more parts.
    if part.get_content_type() == "message/rfc822" or not part.is_multipart():
        return [part]
    leaves: list[Message] = []
    for child in part.get_payload():
        if isinstance(child, Message):
            leaves.extend(_leaf_parts(child))
    return leaves


def _attachment_parts(message: EmailMessage) -> list[Message]:
    """Every leaf part except the text and HTML bodies shown on the page: real attachments,
    inline images, and parts of types no reader displays."""
    bodies = [part for part in _body_parts(message) if part is not None]
    return [part for part in _leaf_parts(message) if not any(part is body for body in bodies)]


def _part_bytes(part: Message) -> bytes:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            return inner[0].as_bytes(policy=_POLICY)
        return b""
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _part_text(part: Message) -> str:
    payload = _part_bytes(part)
    charset = part.get_content_charset() or "utf-8"
    try:
        text = payload.decode(charset, errors="replace")
    except LookupError:  # a charset Python does not know: UTF-8 is the likeliest truth
        text = payload.decode("utf-8", errors="replace")
    # Line ends as a page shows them; "Show source" keeps the CRLFs.
    return text.replace("\r\n", "\n")


def _filename(part: Message, number: int) -> str:
    try:
        declared = part.get_filename() or ""
    except Exception:  # a malformed parameter must not hide the attachment
        declared = ""
    name = _UNSAFE_FILENAME.sub("_", _storable(str(declared))).strip(" .")
    name = name[:_FILENAME_MAX_CHARS]
    if name:
        return name
    content_type = part.get_content_type()
    extension = ".eml" if content_type == "message/rfc822" else None
    extension = extension or mimetypes.guess_extension(content_type) or ".bin"
    return f"attachment-{number}{extension}"


# -- headers -----------------------------------------------------------------------------


def _header_text(message: Message, name: str) -> str:
    for key, value in message.raw_items():
        if key.lower() == name.lower():
            return _decoded(key, value)
    return ""


def _decoded(name: str, value: str) -> str:
    """Header text with encoded-words decoded and folding removed, for people to read.

    The email package's header parser can raise on some malformed input; the page then
    shows the next best reading rather than failing (the source shows the exact bytes).
    """
    try:
        decoded = str(_POLICY.header_fetch_parse(name, value)).strip()
    except Exception:  # see the docstring
        decoded = ""
    if not decoded:
        decoded = re.sub(r"\r?\n[ \t]", " ", value).strip()
        with contextlib.suppress(Exception):  # keep the unfolded text
            decoded = str(make_header(decode_header(decoded)))
    return _storable(decoded)


def _storable(text: str) -> str:
    """Text that a page and every database can hold.

    Bytes that were not UTF-8 come out of the parser as lone surrogates, which cannot be
    encoded to UTF-8 (for a page or SQLite) and NUL, which PostgreSQL text refuses.
    """
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text.replace("\x00", "\ufffd")
