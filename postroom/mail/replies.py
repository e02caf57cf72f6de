"""The words of SMTP: reply codes and enhanced status codes by name, the stages of a session,
and a server's reply split into its parts.

Pure data, shared by delivery (postroom.mail.delivery), the connection check
(postroom.mail.diagnostics) and the rule table that says what a reply means
(postroom.mail.classify): one name for each code, one list of stages.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass


class ReplyCode(enum.IntEnum):
    """Reply codes by name: RFC 5321 §4.2.2-4.2.3, RFC 3207 (STARTTLS), RFC 4954 (AUTH)."""

    READY = 220  # the greeting; "go ahead" to STARTTLS
    CLOSING = 221
    AUTH_SUCCESSFUL = 235
    COMPLETED = 250
    WILL_FORWARD = 251
    AUTH_CONTINUE = 334
    START_INPUT = 354
    SERVICE_UNAVAILABLE = 421  # the server is closing the channel (RFC 5321 §3.8)
    MAILBOX_UNAVAILABLE = 450
    LOCAL_ERROR = 451
    INSUFFICIENT_STORAGE = 452  # also "too many recipients" (RFC 5321 §4.5.3.1.10)
    TEMPORARILY_UNAVAILABLE = 454  # TLS not available now; temporary authentication failure
    SYNTAX_ERROR = 500  # e.g. "EHLO" unknown to an old server
    PARAMETER_SYNTAX_ERROR = 501
    NOT_IMPLEMENTED = 502
    BAD_SEQUENCE = 503
    PARAMETER_NOT_IMPLEMENTED = 504
    AUTH_REQUIRED = 530  # also "Must issue a STARTTLS command first" (RFC 3207 §4)
    MECHANISM_TOO_WEAK = 534  # Gmail: "Application-specific password required"
    AUTH_FAILED = 535  # credentials invalid
    ENCRYPTION_REQUIRED = 538  # encryption required for the requested mechanism
    MAILBOX_NOT_FOUND = 550
    USER_NOT_LOCAL = 551
    STORAGE_EXCEEDED = 552  # message too big, or (legacy) too many recipients
    MAILBOX_NAME_INVALID = 553
    TRANSACTION_FAILED = 554
    PARAMETERS_NOT_RECOGNIZED = 555  # a MAIL or RCPT parameter


class ReplyClass(enum.IntEnum):
    """RFC 5321 §4.2.1: the first digit decides (2 done, 3 go on, 4 try again, 5 give up)."""

    POSITIVE_COMPLETION = 2
    POSITIVE_INTERMEDIATE = 3
    TRANSIENT_NEGATIVE = 4
    PERMANENT_NEGATIVE = 5


class Status(enum.StrEnum):
    """Enhanced status codes (RFC 3463, RFC 4954 §6, and providers' registered ones)."""

    MAILBOX_UNKNOWN = "5.1.1"
    RECIPIENT_NOT_FOUND = "5.1.10"  # RFC 7505 null MX; Microsoft 365: recipient not found
    SYSTEM_NOT_ACCEPTING = "4.3.2"
    MESSAGE_TOO_BIG = "5.3.4"
    CONGESTION = "4.4.5"
    TOO_MANY_RECIPIENTS = "4.5.3"
    TOO_MANY_RECIPIENTS_PERMANENT = "5.5.3"
    NON_ASCII_ADDRESS = "5.6.7"  # RFC 6531 §3.5: SMTPUTF8 needed
    DELIVERY_NOT_AUTHORIZED = "5.7.1"
    AUTH_CREDENTIALS_INVALID = "5.7.8"
    MECHANISM_TOO_WEAK = "5.7.9"  # Gmail: app password required
    ENCRYPTION_REQUIRED = "5.7.11"
    WEB_LOGIN_REQUIRED = "5.7.14"  # Gmail: "log in via your web browser"
    # Microsoft 365 (Exchange Online):
    M365_AUTH_UNSUCCESSFUL = "5.7.3"
    M365_BASIC_AUTH_NOT_SUPPORTED = "5.7.30"
    M365_RELAY_DENIED = "5.7.54"
    M365_NOT_AUTHENTICATED = "5.7.57"
    M365_SEND_AS_DENIED = "5.7.60"
    M365_BASIC_AUTH_DISABLED = "5.7.139"


class StatusSubject(enum.IntEnum):
    """RFC 3463 §3: the middle number of an enhanced status code."""

    ADDRESSING = 1
    MAILBOX = 2
    MAIL_SYSTEM = 3
    NETWORK = 4
    PROTOCOL = 5
    CONTENT = 6
    SECURITY_OR_POLICY = 7


class Stage(enum.StrEnum):
    """Where in the SMTP conversation something happened: one list for delivery, the
    connection check and the outbox's records (whose `stage` column holds these values)."""

    CONNECT = "connect"  # TCP connection (and the TLS handshake for implicit TLS)
    GREETING = "greeting"
    EHLO = "ehlo"
    STARTTLS = "starttls"
    AUTH = "auth"
    ENVELOPE = "envelope"  # checks against the server's EHLO before MAIL: SIZE, SMTPUTF8
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"  # the DATA command, answered by 354
    END_OF_DATA = "end_of_data"  # the message and its final ".", answered by 250

    @property
    def command(self) -> str:
        """What was said at this stage, for a sentence: "The server refused MAIL FROM"."""
        return _COMMANDS[self]

    @property
    def awaiting(self) -> str:
        """When a reply failed to come: "no reply to EHLO", "closed the connection ...\"."""
        return _AWAITING[self]

    @property
    def expected(self) -> frozenset[int]:
        """The positive replies this stage's command expects (RFC 5321 §4.3.2; RFC 3207 §4;
        RFC 4954 §4); every other positive reply is out of step."""
        return _EXPECTED[self]


_COMMANDS = {
    Stage.CONNECT: "the connection",
    Stage.GREETING: "the greeting",
    Stage.EHLO: "EHLO",
    Stage.STARTTLS: "STARTTLS",
    Stage.AUTH: "AUTH",
    Stage.ENVELOPE: "the envelope",
    Stage.MAIL: "MAIL FROM",
    Stage.RCPT: "RCPT TO",
    Stage.DATA: "DATA",
    Stage.END_OF_DATA: "the end of the message",
}
_AWAITING = {
    Stage.CONNECT: "while connecting",
    Stage.GREETING: "to the greeting",
    Stage.EHLO: "to EHLO",
    Stage.STARTTLS: "to STARTTLS",
    Stage.AUTH: "to AUTH",
    Stage.ENVELOPE: "before MAIL FROM",
    Stage.MAIL: "to MAIL FROM",
    Stage.RCPT: "to RCPT TO",
    Stage.DATA: "to DATA",
    Stage.END_OF_DATA: "after the end of the message",
}
_EXPECTED: dict[Stage, frozenset[int]] = {
    Stage.CONNECT: frozenset(),
    Stage.GREETING: frozenset({ReplyCode.READY}),
    Stage.EHLO: frozenset({ReplyCode.COMPLETED}),
    Stage.STARTTLS: frozenset({ReplyCode.READY}),
    Stage.AUTH: frozenset({ReplyCode.AUTH_SUCCESSFUL, ReplyCode.AUTH_CONTINUE}),
    Stage.ENVELOPE: frozenset(),
    Stage.MAIL: frozenset({ReplyCode.COMPLETED}),
    Stage.RCPT: frozenset({ReplyCode.COMPLETED, ReplyCode.WILL_FORWARD}),
    Stage.DATA: frozenset({ReplyCode.START_INPUT}),
    Stage.END_OF_DATA: frozenset({ReplyCode.COMPLETED}),
}

# RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets. What we keep of a reply (for the
# record, a page, an alert) is cut there; aiosmtplib accepts up to 32 KiB of multi-line reply.
REPLY_TEXT_LIMIT = 512
_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?=\s|$)")


def _clip(text: str) -> str:
    return text if len(text) <= REPLY_TEXT_LIMIT else text[:REPLY_TEXT_LIMIT] + "…"


def split_enhanced_status(code: int, message: str) -> tuple[str, str]:
    """Split "5.7.8 Error: authentication failed" into ("5.7.8", "Error: ...").

    RFC 2034 §4: the enhanced code leads the text and its class matches the reply's first
    digit; a number in the text that does not match is left in the text.
    """
    match = _ENHANCED.match(message)
    if match is None or match.group(1) != str(code)[:1]:
        return "", message.strip()
    return match.group(0), message[match.end() :].strip()


@dataclass(frozen=True)
class Reply:
    """A server reply split into its parts. `code` is None when there was no usable reply."""

    code: int | None
    enhanced: str  # RFC 3463 "5.7.8", "" when the server sends none
    text: str  # the rest of the reply; lines of a multi-line reply joined with "\n"

    @classmethod
    def parse(cls, code: int, message: str) -> Reply:
        enhanced, text = split_enhanced_status(code, message)
        return cls(code=code, enhanced=enhanced, text=_clip(text))

    @classmethod
    def missing(cls, why: str) -> Reply:
        """No reply: the connection dropped, timed out, the server sent garbage, or Postroom
        stopped before asking (`why` says which, in plain words)."""
        return cls(code=None, enhanced="", text=_clip(why))

    @property
    def reply_class(self) -> ReplyClass | None:
        """The first digit, or None when there was no reply or it is no SMTP reply code."""
        if self.code is None or not 200 <= self.code < 600:
            return None
        return ReplyClass(self.code // 100)

    @property
    def subject(self) -> StatusSubject | None:
        """The enhanced status code's subject ("5.7.1": security or policy), if any."""
        if not self.enhanced:
            return None
        try:
            return StatusSubject(int(self.enhanced.split(".")[1]))
        except ValueError:
            return None

    def __str__(self) -> str:
        parts = [str(self.code) if self.code is not None else "", self.enhanced, self.text]
        return " ".join(part for part in parts if part)
