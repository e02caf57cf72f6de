"""What the listener does with a message it received: check the bytes, add a `Received:` line,
and queue it in the outbox exactly as it came (never re-serialised through `email`).

The checks refuse what could change meaning on the next hop or pass for someone else:
- a bare CR or LF anywhere (SMTP smuggling, CVE-2023-51764 and its family: a `<LF>.<LF>` that
  Postroom reads as text could end the message at a server further on);
- header text with control characters, also inside RFC 2047 encoded words (the checks of
  postroom.mail.header_text, as for every other way in);
- a From address the credential may not send as. Every address-like token of the From field
  must be allowed, not only what Python's parser makes of it, so a display name built to
  confuse the parser (CVE-2023-27043) cannot smuggle another mailbox past the check.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import format_datetime

from postroom.core.errors import ValidationError
from postroom.mail.header_text import check_header_text
from postroom.smtpd.services import Credential

_BARE_NEWLINE = re.compile(rb"\r(?!\n)|(?<!\r)\n")
_ADDRESS_TOKEN = re.compile(r"[^\s<>(),;:\"@]+@[^\s<>(),;:\"@]+")
_HELO_UNSAFE = re.compile(r"[^A-Za-z0-9.:\[\]-]")


class Refusal(Exception):
    """The message is refused with this SMTP reply."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


@dataclass(frozen=True)
class Received:
    """One message as the listener got it."""

    credential: Credential
    client_ip: str
    helo: str
    envelope_from: str
    recipients: tuple[str, ...]
    data: bytes
    is_tls: bool
    is_authenticated: bool

    @property
    def source_detail(self) -> str:
        return f"SMTP credential {self.credential.username} from {self.client_ip}"


def check_received(received: Received) -> None:
    """Raise Refusal with the reply to give when the message must not be queued."""
    if _BARE_NEWLINE.search(received.data):
        raise Refusal(
            "550 5.6.11 Bare CR or LF in the message: every line must end with CRLF "
            "(refused to prevent SMTP smuggling)"
        )
    head = received.data.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    headers = BytesHeaderParser(policy=compat32).parsebytes(head, headersonly=True)
    for name, value in headers.items():
        text = str(value)
        try:
            check_header_text(
                re.sub(r"\r\n[ \t]", " ", text), label="Header", what=name, field="data"
            )
        except ValidationError as error:
            raise Refusal(f"554 5.6.0 {error.message}") from None
    senders = headers.get_all("From") or []
    if len(senders) != 1:
        raise Refusal("554 5.6.0 The message must have exactly one From field (RFC 5322)")
    for token in _ADDRESS_TOKEN.findall(str(senders[0])):
        if not received.credential.may_send_as(token):
            raise Refusal(
                f"550 5.7.1 From <{token}> is not an address this SMTP credential may send as"
            )


def with_received_line(received: Received, *, queue_id: str, hostname: str) -> bytes:
    """The bytes to store: a `Received:` line (RFC 5321 §4.4) and the message as received."""
    helo = _HELO_UNSAFE.sub("", received.helo)[:100] or "unknown"
    protocol = (
        "ESMTP" + ("S" if received.is_tls else "") + ("A" if received.is_authenticated else "")
    )
    stamp = format_datetime(dt.datetime.now(dt.UTC))
    line = (
        f"Received: from {helo} ([{received.client_ip}])\r\n"
        f"\tby {hostname} (Postroom) with {protocol} id {queue_id}\r\n"
        f"\t(credential {received.credential.username}); {stamp}\r\n"
    )
    return line.encode("ascii") + received.data
