"""What an SMTP reply (or its absence) means for a recipient: pure functions, no sockets.

The transport asks two questions of every reply and every failure: what happens to the
recipients it concerns (`Classification`), and what it says about the server — stop sending
through it until a person fixes the settings (`pause_scope`), or slow down (`is_throttling`).
The rules follow RFC 5321 §4.2.1 (the first digit decides: 2 done, 4 try again, 5 give up) and
RFC 3463 enhanced status codes, refined for what real providers answer.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from aiosmtplib.typing import SMTPStatus


class Classification(enum.StrEnum):
    """The fate of one recipient in one attempt. Values match outbox.models.Classification."""

    SUCCESS = "success"
    TEMPORARY = "temporary"  # try again later: 4xx, a dropped connection, a timeout, garbage
    PERMANENT = "permanent"  # give up on this recipient: 5xx
    # The connection dropped (or timed out) after the final "." and before the reply: the
    # server may have the message. Retry once, with the same Message-ID.
    UNCERTAIN = "uncertain"
    # Our settings are wrong (password, sender, TLS): every message would fail the same way,
    # so the recipient is not at fault and the server's sending should pause.
    CONFIG = "config"


class Stage(enum.StrEnum):
    """Where in the SMTP conversation an outcome was decided."""

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


class PauseScope(enum.StrEnum):
    SERVER = "server"  # nothing can go through this server: login, TLS, relaying
    SENDER = "sender"  # this envelope sender is refused; other senders may still work


# RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets. What we keep of a reply (for the
# record, a page, an alert) is cut there; aiosmtplib accepts up to 32 KiB of multi-line reply.
REPLY_TEXT_LIMIT = 512


def _clip(text: str) -> str:
    return text if len(text) <= REPLY_TEXT_LIMIT else text[:REPLY_TEXT_LIMIT] + "…"


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
        """No reply: the connection dropped, timed out, or the server sent garbage."""
        return cls(code=None, enhanced="", text=_clip(why))

    def __str__(self) -> str:
        parts = [str(self.code) if self.code is not None else "", self.enhanced, self.text]
        return " ".join(part for part in parts if part)


@dataclass(frozen=True)
class Verdict:
    classification: Classification
    pause_scope: PauseScope | None = None  # set for every CONFIG verdict
    is_throttling: bool = False  # the server asks us to slow down (adaptive rate)
    is_too_many_recipients: bool = False  # RFC 5321 §4.5.3.1.10: send the rest separately

    @property
    def should_pause(self) -> bool:
        return self.pause_scope is not None


SUCCESS = Verdict(Classification.SUCCESS)
TEMPORARY = Verdict(Classification.TEMPORARY)
PERMANENT = Verdict(Classification.PERMANENT)
UNCERTAIN = Verdict(Classification.UNCERTAIN)
PAUSE_SERVER = Verdict(Classification.CONFIG, pause_scope=PauseScope.SERVER)
PAUSE_SENDER = Verdict(Classification.CONFIG, pause_scope=PauseScope.SENDER)


_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?=\s|$)")


def split_enhanced_status(code: int, message: str) -> tuple[str, str]:
    """Split "5.7.8 Error: authentication failed" into ("5.7.8", "Error: ...").

    RFC 2034 §4: the enhanced code leads the text and its class matches the reply's first
    digit; a number in the text that does not match is left in the text.
    """
    match = _ENHANCED.match(message)
    if match is None or match.group(1) != str(code)[:1]:
        return "", message.strip()
    return match.group(0), message[match.end() :].strip()


# Words providers use when they rate-limit: Microsoft "451 4.7.500 Server busy", Gmail
# "421 4.7.0 ... unusual rate", "454 4.7.0 Too many login attempts", "451 4.7.1 ... rate limit
# exceeded". (Any 421 counts anyway: see is_throttling.)
_THROTTLE_TEXT = re.compile(
    r"\brate\b|too many|throttl|limit exceeded|exceeded .*limit|slow down|busy|concurren",
    re.IGNORECASE,
)
# RFC 3463: 4.4.5 system congestion, 4.3.2 system not accepting network messages.
_THROTTLE_STATUSES = frozenset({"4.4.5", "4.3.2"})


def is_throttling(reply: Reply) -> bool:
    """True if the reply asks us to send more slowly rather than judging a recipient.

    421 always qualifies (RFC 5321 §3.8: the server is closing the channel, most often
    because of load or limits). Other 4xx replies qualify by their enhanced status (congestion)
    or, in class 4.7 (policy) or without an enhanced code, by the words providers use.
    """
    code = reply.code
    if code is None or not 400 <= code < 500:
        return False
    if code == SMTPStatus.domain_unavailable:
        return True
    if reply.enhanced in _THROTTLE_STATUSES:
        return True
    if reply.enhanced and not reply.enhanced.startswith("4.7."):
        return False  # 4.2.1 "receiving mail at a rate ...": one recipient's limit, not ours
    return _THROTTLE_TEXT.search(reply.text) is not None


def is_too_many_recipients(reply: Reply) -> bool:
    """RFC 5321 §4.5.3.1.10: 452 (or a legacy 552) to RCPT means "no more in this transaction".

    452 is also "mailbox full" (4.2.2) or "system storage" (4.3.1) when an enhanced code says
    so; 552 counts only with 5.5.3 or the words, since 552 is mostly "mailbox full".
    """
    if reply.code == SMTPStatus.insufficient_storage:
        return reply.enhanced in ("", "4.5.3")
    if reply.code == SMTPStatus.storage_exceeded:
        return reply.enhanced == "5.5.3" or "too many recipients" in reply.text.lower()
    return False


_RELAY_DENIED_TEXT = re.compile(
    r"relay(?:ing)? (?:access )?(?:denied|not permitted|prohibited)|unable to relay|"
    r"not permitted to relay",
    re.IGNORECASE,
)
_SENDER_REFUSED_TEXT = re.compile(
    r"not owned|sender address rejected|send ?as|on behalf|"
    r"not (?:allowed|authori[sz]ed|permitted)",
    re.IGNORECASE,
)
_AUTH_REQUIRED_TEXT = re.compile(r"authenticat|not logged in|log ?in first", re.IGNORECASE)
_STARTTLS_TEXT = re.compile(r"starttls|encryption required", re.IGNORECASE)
# Microsoft 365's "SendAsDeniedException" at end of data (554 5.2.0 STOREDRV.Submission...).
_SEND_AS_DENIED_TEXT = re.compile(r"send ?as ?denied", re.IGNORECASE)


def _is_settings_problem(reply: Reply) -> bool:
    """A 5xx that says the connection itself is not allowed: no login, no TLS, no relaying."""
    status = reply.enhanced
    if reply.code in (SMTPStatus.access_denied, 538) or status in ("5.7.57", "5.7.11"):
        return True  # 530 authentication required, 538 RFC 4954 §6 encryption required
    if _STARTTLS_TEXT.search(reply.text):
        return True
    return status.startswith("5.7.") and _AUTH_REQUIRED_TEXT.search(reply.text) is not None


def _is_sender_refused(reply: Reply) -> bool:
    status = reply.enhanced
    if status == "5.7.60" or _SEND_AS_DENIED_TEXT.search(reply.text):
        return True  # Microsoft 365: SendAsDenied, the login may not send as this address
    return status.startswith("5.7.") and _SENDER_REFUSED_TEXT.search(reply.text) is not None


# The positive replies each command expects (RFC 5321 §4.3.2; RFC 3207 §4; RFC 4954 §4).
_EXPECTED: dict[Stage, frozenset[int]] = {
    Stage.GREETING: frozenset({SMTPStatus.ready}),
    Stage.EHLO: frozenset({SMTPStatus.completed}),
    Stage.STARTTLS: frozenset({SMTPStatus.ready}),
    Stage.AUTH: frozenset({SMTPStatus.auth_successful, SMTPStatus.auth_continue}),
    Stage.MAIL: frozenset({SMTPStatus.completed}),
    Stage.RCPT: frozenset({SMTPStatus.completed, SMTPStatus.will_forward}),
    Stage.DATA: frozenset({SMTPStatus.start_input}),
    Stage.END_OF_DATA: frozenset({SMTPStatus.completed}),
    Stage.CONNECT: frozenset(),
    Stage.ENVELOPE: frozenset(),
}


def is_out_of_step(stage: Stage, reply: Reply) -> bool:
    """True for a positive reply that does not answer the command of `stage` (250 to DATA):
    the conversation is out of step and nothing more it says can be trusted."""
    code = reply.code
    return code is not None and 200 <= code < 400 and code not in _EXPECTED[stage]


def classify_reply(stage: Stage, reply: Reply) -> Verdict:
    """Classify a server reply to the command of `stage`.

    `reply.code` must not be None: a missing reply is `classify_missing_reply`'s business.
    """
    code = reply.code
    assert code is not None, "a missing reply goes to classify_missing_reply"
    throttling = is_throttling(reply)
    if code in _EXPECTED[stage]:
        return SUCCESS
    if 200 <= code < 400:
        # A positive reply that does not answer this command (250 to DATA): the session is
        # out of step, so nothing it says can count as accepted.
        return TEMPORARY
    if 400 <= code < 500:
        if stage is Stage.RCPT and is_too_many_recipients(reply):
            return Verdict(Classification.TEMPORARY, is_too_many_recipients=True)
        return Verdict(Classification.TEMPORARY, is_throttling=throttling)
    if not 500 <= code < 600:
        return TEMPORARY  # not an SMTP reply code: garbage, try again (RFC 5321 §4.2.1)
    return _classify_5xx(stage, reply)


def _classify_5xx(stage: Stage, reply: Reply) -> Verdict:
    code = reply.code
    if stage in (Stage.AUTH, Stage.STARTTLS, Stage.EHLO):
        # A refused login (535, Gmail's 534 app password), a refused TLS upgrade, or our
        # HELO name refused: every message would meet the same answer.
        return PAUSE_SERVER
    if stage is Stage.GREETING:
        # 554 at the greeting: this machine's address is refused (RFC 5321 §3.1). Keep the
        # messages (the block may be lifted) but stop hammering the server.
        return PAUSE_SERVER
    if _is_settings_problem(reply):
        return PAUSE_SERVER
    if stage is Stage.MAIL:
        if code == SMTPStatus.storage_exceeded or reply.enhanced in ("5.3.4", "5.6.7"):
            # 552 / 5.3.4 the message is too big; 5.6.7 (RFC 6531 §3.5) needs SMTPUTF8: both
            # are about this message, not about the sender.
            return PERMANENT
        if code in (SMTPStatus.syntax_error, SMTPStatus.parameter_not_implemented):
            return PERMANENT  # 555 / 504: a MAIL parameter this message needed is refused
        return PAUSE_SENDER  # 550 / 553 sender refused, "not owned by user", 5.7.60
    if stage is Stage.RCPT:
        if (
            reply.enhanced == "5.7.54"
            or _RELAY_DENIED_TEXT.search(reply.text)
            or (code == SMTPStatus.transaction_failed and reply.enhanced == "5.7.1")
        ):
            # "554 5.7.1 Relay access denied": the server does not know us (no login), so
            # every recipient of another domain would be refused.
            return PAUSE_SERVER
        if is_too_many_recipients(reply):
            return Verdict(Classification.TEMPORARY, is_too_many_recipients=True)
        return PERMANENT
    if _is_sender_refused(reply):
        return PAUSE_SENDER  # "550 5.7.60 ... send as this sender" after the data
    return PERMANENT


class Failure(enum.Enum):
    """Why there was no usable reply."""

    REFUSED = "refused"  # TCP connection refused or unreachable
    TIMEOUT = "timeout"
    DISCONNECTED = "disconnected"
    GARBAGE = "garbage"  # not an SMTP reply, or a reply line too long
    TLS_CERTIFICATE = "tls_certificate"  # the certificate did not verify
    TLS_HANDSHAKE = "tls_handshake"  # TLS could not be negotiated (wrong port for the mode)


def classify_missing_reply(failure: Failure, *, is_final_dot_sent: bool) -> Verdict:
    """Classify the lack of a reply: the connection failed, or what came was not SMTP.

    Only after the whole message and its final "." left us can the server have it; before,
    nothing can have been accepted (RFC 5321 §4.1.1.4: the message is accepted by the reply
    to the final "."), so the attempt is simply temporary.
    """
    if failure in (Failure.TLS_CERTIFICATE, Failure.TLS_HANDSHAKE):
        return PAUSE_SERVER  # fixing the TLS mode, port or CA is a person's job
    if is_final_dot_sent:
        return UNCERTAIN
    return TEMPORARY
