"""Say what one mail from the bounce mailbox is: a bounce, a delay notice, a spam complaint,
or none of these, and which message and recipients it is about.

Read in this order:

1. an ARF complaint report (RFC 5965: multipart/report; report-type=feedback-report);
2. a delivery status notification (RFC 3464: multipart/report; report-type=delivery-status),
   one entry per recipient with its Action and Status;
3. otherwise `flufl.bounce`'s detectors, which know the common non-standard bounces
   (qmail, Exim, old Exchange, Yahoo's own texts...) and give failed addresses only.

Python's email package parses the structure; it is not trusted with addresses. CPython
3.11.7 lacks the fixes of CVE-2023-27043 (getaddresses() splitting a crafted address into
another one) and CVE-2024-6923, and a bounce is mail anyone can write. So addresses are cut
out of the header text here and each is checked with postroom.mail.addresses, and anything
that does not pass is dropped. Pure: no database.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import re
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import Message
from email.parser import HeaderParser

from flufl.bounce import all_failures

from postroom.core.errors import ValidationError
from postroom.mail.addresses import normalize_address


class Kind:
    """What a mail is (the values of postroom.bounces.models.ReportKind)."""

    HARD = "hard"
    SOFT = "soft"
    COMPLAINT = "complaint"
    DELAY = "delay"
    OTHER = "other"


# Per recipient: RFC 3464 §2.3.3 Action values.
FAILED, DELAYED = "failed", "delayed"
# A header value longer than this is not a real report's: it is clipped before it is read.
_MAX_FIELD = 1000
_MAX_DIAGNOSTIC = 2000
_MESSAGE_ID = re.compile(r"<[^<>\s@]+@[^<>\s]+>")
# Something like an address inside header text; normalize_address then judges it.
_ADDRESS_LIKE = re.compile(r"[^\s<>(),;:\"'\[\]]+@[^\s<>(),;:\"'\[\]]+")
# A quoted SMTP reply in a bounce's text: a 4xx/5xx code and words (RFC 5321 §4.2).
_QUOTED_REPLY = re.compile(r"\b[45][0-9][0-9][ -]\S.{4,}")
# Where a non-standard bounce says what happened: its first lines, before the copy it returns.
_TEXT_LINES = 40
# RFC 3463 §2: class.subject.detail.
_STATUS = re.compile(r"[245]\.[0-9]{1,3}\.[0-9]{1,3}")


def status_names_bad_address(status: str) -> bool:
    """Whether a permanent failure says the address itself cannot receive mail (RFC 3463):
    X.1.x addressing (no such mailbox or domain), X.2.1 mailbox disabled, X.4.4 unroutable,
    and the unspecific 5.0.0 that many servers give for an unknown user. A full mailbox
    (X.2.2), a policy or spam block (X.7.x) or refused content (X.6.x) is about this message
    or its sender: the address is only suppressed when such failures repeat (soft bounces).
    """
    if not status.startswith("5."):
        return False
    return status.startswith("5.1.") or status in {"5.0.0", "5.2.1", "5.4.4"}


@dataclass(frozen=True)
class RecipientReport:
    """One recipient a report speaks of."""

    address: str  # Final-Recipient (or the complainant's address), checked
    original: str = ""  # Original-Recipient, when given and valid
    action: str = FAILED
    status: str = ""  # "5.1.1"
    diagnostic: str = ""

    @property
    def kind(self) -> str:
        if self.action == DELAYED:
            return Kind.DELAY
        if self.action != FAILED:
            return Kind.OTHER  # delivered, relayed, expanded: not a failure
        return Kind.HARD if status_names_bad_address(self.status) else Kind.SOFT


@dataclass(frozen=True)
class ParsedMail:
    kind: str
    format: str  # how it was read: "DSN (RFC 3464)", "ARF (RFC 5965)", "flufl.bounce", ""
    report_message_id: str
    subject: str
    original_message_id: str  # the Message-ID of the mail it reports on, if it says
    recipients: tuple[RecipientReport, ...]
    # Addresses the report was sent to (Delivered-To, X-Original-To, To): a tagged return
    # path among them names the message.
    sent_to: tuple[str, ...]
    feedback_type: str = ""  # ARF: abuse, fraud, ...


def mail_parse(raw: bytes) -> ParsedMail:
    """Read one mail's bytes (never raises on bad input: unreadable mail is "other")."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    report_type = _report_type(message)
    if report_type == "feedback-report":
        parsed = _feedback_parse(message)
    elif report_type == "delivery-status":
        parsed = _dsn_parse(message)
    else:
        parsed = _nonstandard_parse(message)
    return ParsedMail(
        kind=parsed.kind,
        format=parsed.format,
        report_message_id=_message_id(_header(message, "Message-ID")),
        subject=_subject(message)[:500],
        original_message_id=parsed.original_message_id,
        recipients=parsed.recipients,
        sent_to=tuple(
            dict.fromkeys(
                address
                for name in ("Delivered-To", "X-Original-To", "To")
                for value in message.get_all(name, [])
                for address in _addresses_in(str(value))
            )
        ),
        feedback_type=parsed.feedback_type,
    )


@dataclass(frozen=True)
class _Found:
    kind: str
    format: str = ""
    original_message_id: str = ""
    recipients: tuple[RecipientReport, ...] = ()
    feedback_type: str = ""


def _report_type(message: Message) -> str:
    if message.get_content_type() != "multipart/report":
        return ""
    return str(message.get_param("report-type", "", header="content-type")).strip().lower()


def _dsn_parse(message: Message) -> _Found:
    recipients: list[RecipientReport] = []
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        # The first block holds the per-message fields (RFC 3464 §2.2), the others one
        # recipient each (§2.3).
        for block in _messages(blocks)[1:]:
            if (recipient := _dsn_recipient(block)) is not None:
                recipients.append(recipient)
    return _Found(
        kind=_worst(recipients),
        format="DSN (RFC 3464)",
        original_message_id=_original_message_id(message),
        recipients=tuple(recipients),
    )


def _dsn_recipient(block: Message) -> RecipientReport | None:
    address = _typed_address(_header(block, "Final-Recipient"))
    original = _typed_address(_header(block, "Original-Recipient"))
    if not address and not original:
        return None
    status_match = _STATUS.search(_header(block, "Status"))
    diagnostic = _header(block, "Diagnostic-Code")
    # "smtp; 550 5.1.1 ...": the type is not for people.
    diagnostic = diagnostic.split(";", 1)[1] if ";" in diagnostic else diagnostic
    return RecipientReport(
        address=address or original,
        original=original,
        action=_header(block, "Action").lower().split(" ", 1)[0],
        status=status_match.group(0) if status_match else "",
        diagnostic=" ".join(diagnostic.split())[:_MAX_DIAGNOSTIC],
    )


def _feedback_parse(message: Message) -> _Found:
    feedback_type = ""
    complainants: list[str] = []
    for part in message.walk():
        if part.get_content_type() != "message/feedback-report":
            continue
        fields = _feedback_fields(part)
        feedback_type = _header(fields, "Feedback-Type").lower()[:40]
        complainants.extend(
            address
            for value in fields.get_all("Original-Rcpt-To", [])
            for address in _addresses_in(str(value))
        )
    original = _original_part(message)
    if not complainants and original is not None:
        # No Original-Rcpt-To (optional in RFC 5965 §3.2): the original's To.
        complainants = _addresses_in(_header(original, "To"))
    return _Found(
        kind=Kind.COMPLAINT,
        format="ARF (RFC 5965)",
        original_message_id=_original_message_id(message),
        recipients=tuple(RecipientReport(address=address) for address in complainants[:1]),
        feedback_type=feedback_type or "abuse",
    )


def _feedback_fields(part: Message) -> Message:
    payload = part.get_payload()
    if blocks := _messages(payload):
        return blocks[0]  # the package reads message/feedback-report as header blocks
    return HeaderParser(policy=email.policy.compat32).parsestr(str(payload))


def _nonstandard_parse(message: Message) -> _Found:
    try:
        temporary, permanent = all_failures(message)
    except Exception:  # a detector that trips over odd mail must not stop the mailbox
        return _Found(kind=Kind.OTHER)
    said = _server_reply_in_text(message)
    recipients = [
        RecipientReport(address=address, status=status, diagnostic=said or diagnostic)
        for found, status, diagnostic in (
            (permanent, "5.0.0", "A permanent failure (non-standard bounce)"),
            (temporary, "4.0.0", "A temporary failure (non-standard bounce)"),
        )
        for raw_address in sorted(found)
        if (address := _checked(_text(raw_address)))
    ]
    if not recipients:
        return _Found(kind=Kind.OTHER)
    return _Found(
        kind=_worst(recipients),
        format="flufl.bounce",
        original_message_id=_original_message_id(message) or _message_id_in_text(message),
        recipients=tuple(recipients),
    )


def _worst(recipients: list[RecipientReport]) -> str:
    kinds = {recipient.kind for recipient in recipients}
    for kind in (Kind.HARD, Kind.SOFT, Kind.DELAY):
        if kind in kinds:
            return kind
    return Kind.OTHER


def _original_part(message: Message) -> Message | None:
    """The returned message's headers: a message/rfc822 part (RFC 3464 §2.1, RFC 5965
    §2) or text/rfc822-headers (RFC 6522 §4)."""
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type == "message/rfc822" and (blocks := _messages(part.get_payload())):
            return blocks[0]
        if content_type == "text/rfc822-headers":
            return HeaderParser(policy=email.policy.compat32).parsestr(_decoded(part))
    return None


def _original_message_id(message: Message) -> str:
    original = _original_part(message)
    return _message_id(_header(original, "Message-ID")) if original is not None else ""


def _server_reply_in_text(message: Message) -> str:
    """The remote server's reply a non-standard bounce quotes ("Remote host said: 554 ..."),
    for people to read: the first line holding a 4xx/5xx reply before the returned copy."""
    for part in message.walk():
        if part.get_content_maintype() != "text":
            continue
        for line in _decoded(part).splitlines()[:_TEXT_LINES]:
            if (match := _QUOTED_REPLY.search(line)) is not None:
                return " ".join(match.group(0).split())[:_MAX_DIAGNOSTIC]
        return ""
    return ""


def _message_id_in_text(message: Message) -> str:
    """A non-standard bounce quotes the original in its text ("Below this line is a copy
    of the message"): the first Message-ID header line there."""
    for part in message.walk():
        if part.get_content_maintype() != "text":
            continue
        for line in _decoded(part).splitlines():
            name, separator, value = line.partition(":")
            if separator and name.strip().lower() == "message-id":
                return _message_id(value)
    return ""


def _messages(payload: object) -> list[Message]:
    """The header blocks or messages a message/* part holds (none for a broken part)."""
    if not isinstance(payload, list):
        return []
    return [item for item in payload if isinstance(item, Message)]


def _decoded(part: Message) -> str:
    payload = part.get_payload(decode=True)
    return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""


def _subject(message: Message) -> str:
    """The subject for people: encoded words (RFC 2047) decoded, control characters gone."""
    value = _header(message, "Subject")
    # Undecodable (a bad charset name, broken base64): keep the raw text.
    with contextlib.suppress(HeaderParseError, LookupError, UnicodeError, ValueError):
        value = str(make_header(decode_header(value)))
    return " ".join("".join(char if char.isprintable() else " " for char in value).split())


def _header(message: Message, name: str) -> str:
    value = message.get(name)
    if value is None:
        return ""
    return " ".join(str(value)[:_MAX_FIELD].split())


def _message_id(value: str) -> str:
    match = _MESSAGE_ID.search(value)
    return match.group(0) if match else ""


def _typed_address(value: str) -> str:
    """An address field of a DSN, "rfc822; user@example.com" (RFC 3464 §2.3.2)."""
    address_type, separator, address = value.partition(";")
    if not separator or address_type.strip().lower() != "rfc822":
        return ""
    return _checked(address.strip().strip("<>"))


def _addresses_in(text: str) -> list[str]:
    found: list[str] = []
    for candidate in _ADDRESS_LIKE.findall(text):
        if (address := _checked(candidate)) and address not in found:
            found.append(address)
    return found


def _checked(candidate: str) -> str:
    """The address normalised, or "" when it is not a valid address."""
    try:
        return normalize_address(candidate.strip()).addr_spec
    except ValidationError:
        return ""


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
