"""What an SMTP reply means: one rule table gives both the verdict and the advice.

Every reply that delivery or the connection check meets is looked up in `REPLY_RULES`, keyed
by the stage it answered and by its reply code, its enhanced status code (RFC 3463) or, where
providers agree on nothing better, its words. The first row that matches decides both:

* the `Verdict`: what happens to the recipients (`Classification`) and whether sending through
  the server, or as the sender, should pause until a person fixes the settings. A row's
  verdict is for a 5xx reply; a 4xx is always temporary whatever row it matches (RFC 5321
  §4.2.1: the same command may succeed later);
* the advice: what the Company page, `postroom doctor` and the Outbox say happened and what to
  change (the words: postroom.mail.reply_advice).

Besides the table: whether a reply asks to slow down (`is_throttling`) or to send the rest of
the recipients separately (`is_too_many_recipients`), what the lack of a reply means
(`classify_missing_reply`), and `explain_failure` for a recipient's recorded attempt. Pure
functions, no sockets.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass

from postroom.mail import reply_advice as say
from postroom.mail.advice import Diagnosis
from postroom.mail.replies import (
    Reply,
    ReplyClass,
    ReplyCode,
    Stage,
    Status,
    StatusSubject,
)
from postroom.mail.reply_advice import Said


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


class PauseScope(enum.StrEnum):
    SERVER = "server"  # nothing can go through this server: login, TLS, relaying
    SENDER = "sender"  # this envelope sender is refused; other senders may still work


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
THROTTLED = Verdict(Classification.TEMPORARY, is_throttling=True)
TOO_MANY = Verdict(Classification.TEMPORARY, is_too_many_recipients=True)


# --- Replies that are about our pace, not about a recipient ---------------------------------

# Words providers use when they rate-limit: Microsoft "451 4.7.500 Server busy", Gmail
# "421 4.7.0 ... unusual rate", "454 4.7.0 Too many login attempts", "451 4.7.1 ... rate limit
# exceeded". (Any 421 counts anyway: see is_throttling.)
_THROTTLE_TEXT = re.compile(
    r"\brate\b|too many|throttl|limit exceeded|exceeded .*limit|slow down|busy|concurren",
    re.IGNORECASE,
)
_THROTTLE_STATUSES = frozenset({Status.CONGESTION, Status.SYSTEM_NOT_ACCEPTING})


def is_throttling(reply: Reply) -> bool:
    """True if the reply asks us to send more slowly rather than judging a recipient.

    421 always qualifies (RFC 5321 §3.8: the server is closing the channel, most often
    because of load or limits). Other 4xx replies qualify by their enhanced status (congestion)
    or, in class 4.7 (policy) or without an enhanced code, by the words providers use.
    """
    if reply.reply_class is not ReplyClass.TRANSIENT_NEGATIVE:
        return False
    if reply.code == ReplyCode.SERVICE_UNAVAILABLE or reply.enhanced in _THROTTLE_STATUSES:
        return True
    if reply.enhanced and reply.subject is not StatusSubject.SECURITY_OR_POLICY:
        return False  # 4.2.1 "receiving mail at a rate ...": one recipient's limit, not ours
    return _THROTTLE_TEXT.search(reply.text) is not None


def is_too_many_recipients(reply: Reply) -> bool:
    """RFC 5321 §4.5.3.1.10: 452 (or a legacy 552) to RCPT means "no more in this transaction".

    452 is also "mailbox full" (4.2.2) or "system storage" (4.3.1) when an enhanced code says
    so; 552 counts only with 5.5.3 or the words, since 552 is mostly "mailbox full".
    """
    if reply.code == ReplyCode.INSUFFICIENT_STORAGE:
        return reply.enhanced in ("", Status.TOO_MANY_RECIPIENTS)
    if reply.code == ReplyCode.STORAGE_EXCEEDED:
        return (
            reply.enhanced == Status.TOO_MANY_RECIPIENTS_PERMANENT
            or "too many recipients" in reply.text.lower()
        )
    return False


def is_out_of_step(stage: Stage, reply: Reply) -> bool:
    """True for a positive reply that does not answer the command of `stage` (250 to DATA):
    the conversation is out of step and nothing more it says can be trusted."""
    return reply.reply_class in _POSITIVE and reply.code not in stage.expected


# --- The table ------------------------------------------------------------------------------

Condition = Callable[[Reply], bool]


def _codes(*codes: ReplyCode) -> Condition:
    return lambda reply: reply.code in codes


def _statuses(*statuses: Status) -> Condition:
    return lambda reply: reply.enhanced in statuses


def _words(pattern: str) -> Condition:
    compiled = re.compile(pattern, re.IGNORECASE)
    return lambda reply: compiled.search(reply.text) is not None


def _policy_words(pattern: str) -> Condition:
    """These words in a reply whose enhanced status says "security or policy" (x.7.x)."""
    words = _words(pattern)
    return lambda reply: reply.subject is StatusSubject.SECURITY_OR_POLICY and words(reply)


def _any(*conditions: Condition) -> Condition:
    return lambda reply: any(condition(reply) for condition in conditions)


def _all(*conditions: Condition) -> Condition:
    return lambda reply: all(condition(reply) for condition in conditions)


def _always(reply: Reply) -> bool:
    return True


_POSITIVE = frozenset({ReplyClass.POSITIVE_COMPLETION, ReplyClass.POSITIVE_INTERMEDIATE})
_NEGATIVE = frozenset({ReplyClass.TRANSIENT_NEGATIVE, ReplyClass.PERMANENT_NEGATIVE})
_TRANSIENT = frozenset({ReplyClass.TRANSIENT_NEGATIVE})
_PERMANENT = frozenset({ReplyClass.PERMANENT_NEGATIVE})
_ANY_STAGE = frozenset(Stage)
_TRANSACTION = frozenset({Stage.MAIL, Stage.RCPT, Stage.DATA, Stage.END_OF_DATA})
_MESSAGE = frozenset({Stage.DATA, Stage.END_OF_DATA})

_STARTTLS_TEXT = r"starttls|encryption required"
_AUTH_REQUIRED_TEXT = r"authenticat|not logged in|log ?in first"
_SENDER_REFUSED_TEXT = (
    r"not owned|sender address rejected|send ?as|on behalf|not (?:allowed|authori[sz]ed|permitted)"
)
_RELAY_DENIED_TEXT = (
    r"relay(?:ing)? (?:access )?(?:denied|not permitted|prohibited)|unable to relay|"
    r"not permitted to relay"
)


@dataclass(frozen=True)
class ReplyRule:
    """One row of the table: where and when it applies, and what it says."""

    stages: Collection[Stage]
    classes: Collection[ReplyClass | None]  # None: a code that is no SMTP reply code
    when: Condition
    verdict: Verdict  # for the reply classes other than 4xx
    advice: Callable[[Said], Diagnosis]
    transient: Verdict = TEMPORARY  # for a 4xx (RFC 5321 §4.2.1: try again)

    def matches(self, stage: Stage, reply: Reply) -> bool:
        return stage in self.stages and reply.reply_class in self.classes and self.when(reply)


# Read top down: the first row that matches decides. Rows about our settings come before rows
# about a recipient or a message, so "530 Authentication required" to RCPT pauses the server
# rather than failing one recipient.
REPLY_RULES: tuple[ReplyRule, ...] = (
    # A positive reply that does not answer the command (250 to DATA), or no SMTP code at
    # all: the conversation is out of step, so nothing it says counts as accepted.
    ReplyRule(_ANY_STAGE, _POSITIVE, _always, TEMPORARY, say.out_of_step),
    ReplyRule(_ANY_STAGE, {None}, _always, TEMPORARY, say.not_smtp),
    # STARTTLS refused (RFC 3207 §4): the settings or the server must change.
    ReplyRule({Stage.STARTTLS}, _NEGATIVE, _always, PAUSE_SERVER, say.starttls_refused),
    # Microsoft 365 with password login ("basic authentication") turned off, at any stage.
    ReplyRule(
        _ANY_STAGE,
        _NEGATIVE,
        _any(
            _statuses(Status.M365_BASIC_AUTH_DISABLED, Status.M365_BASIC_AUTH_NOT_SUPPORTED),
            _words(r"basic authentication is disabled|smtpclientauthentication is disabled"),
        ),
        PAUSE_SERVER,
        say.basic_auth_disabled,
    ),
    ReplyRule(
        {Stage.AUTH},
        _NEGATIVE,
        _statuses(Status.M365_AUTH_UNSUCCESSFUL),  # also a wrong password: the advice says so
        PAUSE_SERVER,
        say.basic_auth_disabled,
    ),
    # Gmail: 534 5.7.9 "Application-specific password required"; 5.7.14 "log in via your
    # web browser".
    ReplyRule(
        {Stage.AUTH},
        _NEGATIVE,
        _any(
            _statuses(Status.MECHANISM_TOO_WEAK, Status.WEB_LOGIN_REQUIRED),
            _words("application-specific"),
        ),
        PAUSE_SERVER,
        say.app_password_required,
    ),
    ReplyRule(
        {Stage.AUTH},
        _NEGATIVE,
        _any(_codes(ReplyCode.AUTH_FAILED), _statuses(Status.AUTH_CREDENTIALS_INVALID)),
        PAUSE_SERVER,
        say.wrong_password,
    ),
    # 530 "Must issue a STARTTLS command first", 538 / 5.7.11 (RFC 4954 §6).
    ReplyRule(
        _ANY_STAGE,
        _PERMANENT,
        _any(
            _codes(ReplyCode.ENCRYPTION_REQUIRED),
            _statuses(Status.ENCRYPTION_REQUIRED),
            _words(_STARTTLS_TEXT),
        ),
        PAUSE_SERVER,
        say.encryption_required,
    ),
    # No login, and the server wants one: 530, Microsoft's 5.7.57.
    ReplyRule(
        _TRANSACTION,
        _PERMANENT,
        _any(
            _codes(ReplyCode.AUTH_REQUIRED),
            _statuses(Status.M365_NOT_AUTHENTICATED),
            _policy_words(_AUTH_REQUIRED_TEXT),
        ),
        PAUSE_SERVER,
        say.auth_required,
    ),
    # MAIL refused for something about this message, not about the sender: too big (552,
    # 5.3.4), an address needing SMTPUTF8 (5.6.7, RFC 6531 §3.5), a parameter (555, 504).
    ReplyRule(
        {Stage.MAIL},
        _PERMANENT,
        _any(_codes(ReplyCode.STORAGE_EXCEEDED), _statuses(Status.MESSAGE_TOO_BIG)),
        PERMANENT,
        say.message_rejected,
    ),
    ReplyRule(
        {Stage.MAIL},
        _PERMANENT,
        _statuses(Status.NON_ASCII_ADDRESS),
        PERMANENT,
        say.non_ascii_address,
    ),
    ReplyRule(
        {Stage.MAIL},
        _PERMANENT,
        _codes(ReplyCode.PARAMETERS_NOT_RECOGNIZED, ReplyCode.PARAMETER_NOT_IMPLEMENTED),
        PERMANENT,
        say.refused,
    ),
    # The login may not send as this address: Postfix "not owned by user", Microsoft 5.7.60.
    ReplyRule(
        {Stage.MAIL},
        _PERMANENT,
        _any(
            _codes(ReplyCode.MAILBOX_NAME_INVALID),
            _statuses(Status.M365_SEND_AS_DENIED),
            _policy_words(_SENDER_REFUSED_TEXT),
        ),
        PAUSE_SENDER,
        say.sender_not_allowed,
    ),
    # "554 5.7.1 Relay access denied": the server does not know us (no login), so every
    # recipient of another domain would be refused.
    ReplyRule(
        {Stage.RCPT},
        _NEGATIVE,
        _any(
            _statuses(Status.M365_RELAY_DENIED),
            _words(_RELAY_DENIED_TEXT),
            _all(_codes(ReplyCode.TRANSACTION_FAILED), _statuses(Status.DELIVERY_NOT_AUTHORIZED)),
        ),
        PAUSE_SERVER,
        say.relay_denied,
    ),
    # RFC 5321 §4.5.3.1.10: the rest of the recipients go in the next transaction.
    ReplyRule({Stage.RCPT}, _NEGATIVE, is_too_many_recipients, TOO_MANY, say.too_many, TOO_MANY),
    ReplyRule(
        {Stage.RCPT},
        _PERMANENT,
        _any(
            _statuses(Status.MAILBOX_UNKNOWN, Status.RECIPIENT_NOT_FOUND),
            _all(
                _codes(ReplyCode.MAILBOX_NOT_FOUND, ReplyCode.USER_NOT_LOCAL),
                _words(r"unknown|does not exist"),
            ),
        ),
        PERMANENT,
        say.recipient_unknown,
    ),
    ReplyRule(_ANY_STAGE, _TRANSIENT, _always, TEMPORARY, say.temporary_failure),
    # 554 at the greeting: this machine's address is refused (RFC 5321 §3.1). Keep the
    # messages (the block may be lifted) but stop hammering the server.
    ReplyRule({Stage.GREETING}, _PERMANENT, _always, PAUSE_SERVER, say.greeting_refused),
    # After the data: Microsoft 365's "550 5.7.60 ... send as this sender" or
    # "554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException".
    ReplyRule(
        _MESSAGE,
        _PERMANENT,
        _any(
            _statuses(Status.M365_SEND_AS_DENIED),
            _words(r"send ?as ?denied"),
            _policy_words(_SENDER_REFUSED_TEXT),
        ),
        PAUSE_SENDER,
        say.sender_not_allowed,
    ),
    ReplyRule(_MESSAGE, _PERMANENT, _always, PERMANENT, say.message_rejected),
    # A refused login, or our HELO name refused: every message would meet the same answer.
    ReplyRule({Stage.AUTH}, _PERMANENT, _always, PAUSE_SERVER, say.auth_failed),
    ReplyRule({Stage.EHLO}, _PERMANENT, _always, PAUSE_SERVER, say.refused),
    # 550 / 553 sender refused for a reason of its own ("domain not found").
    ReplyRule({Stage.MAIL}, _PERMANENT, _always, PAUSE_SENDER, say.refused),
    ReplyRule(_ANY_STAGE, _PERMANENT, _always, PERMANENT, say.refused),
)


def reply_rule(stage: Stage, reply: Reply) -> ReplyRule:
    """The row of `REPLY_RULES` that decides about `reply` to the command of `stage`."""
    return next(rule for rule in REPLY_RULES if rule.matches(stage, reply))


def classify_reply(stage: Stage, reply: Reply) -> Verdict:
    """Classify a server reply to the command of `stage`.

    `reply.code` must not be None: a missing reply is `classify_missing_reply`'s business.
    """
    assert reply.code is not None, "a missing reply goes to classify_missing_reply"
    if reply.code in stage.expected:
        return SUCCESS
    rule = reply_rule(stage, reply)
    if reply.reply_class is not ReplyClass.TRANSIENT_NEGATIVE:
        return rule.verdict
    if rule.transient == TEMPORARY and is_throttling(reply):
        return THROTTLED
    return rule.transient


def diagnose_reply(
    stage: Stage,
    reply: Reply,
    *,
    host: str = "",
    login: str = "",
    address: str = "",
    is_oauth: bool = False,
) -> Diagnosis:
    """Say what a refusal means and what to change. `address` is the sender (at MAIL) or the
    recipient (at RCPT) concerned; `host`, `login` and `is_oauth` (XOAUTH2, not a password)
    let the advice name the provider's setting."""
    said = Said(
        stage=stage, reply=reply, host=host, login=login, address=address, is_oauth=is_oauth
    )
    return reply_rule(stage, reply).advice(said)


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


def explain_failure(
    *,
    stage: str,
    classification: str,
    code: int | None,
    enhanced: str = "",
    text: str = "",
    sender: str = "",
    recipient: str = "",
    host: str = "",
    login: str = "",
) -> Diagnosis:
    """One recipient's failed attempt in plain words: what happened and what to do.

    Takes what the outbox records of an attempt (its stage and classification values, the
    reply's code, enhanced code and text), so a page can show `explain_failure(...).sentence`
    next to the recipient. A server's reply is explained by the reply table, as Check
    connection explains it; without a reply, `text` already says what happened.
    """
    try:
        where = Stage(stage)
    except ValueError:  # a stage name from before the stages were one list
        where = Stage.CONNECT
    if code is not None:
        address = sender if where is Stage.MAIL else recipient
        return diagnose_reply(
            where, Reply(code, enhanced, text), host=host, login=login, address=address
        )
    return _explain_no_reply(Classification(classification), text)


def _explain_no_reply(classification: Classification, text: str) -> Diagnosis:
    """No reply to explain: `text` is Postroom's own account of what happened."""
    happened = text[:1].upper() + text[1:]
    happened += "" if happened.endswith((".", "!", "?", "…")) else "."
    if classification is Classification.UNCERTAIN:
        return Diagnosis(
            "uncertain",
            f"{happened} The connection failed after the whole message was sent and before "
            "the server confirmed it, so the server may have it.",
            "Postroom sends it once more with the same Message-ID, so the receiving system can "
            "drop a duplicate. If it stays uncertain, ask the recipient before you use Retry.",
        )
    if classification is Classification.CONFIG:
        return Diagnosis(
            "settings",
            happened,
            "Change the settings on Company → SMTP Server Information (Check connection says "
            "what is wrong), then an administrator clicks Resume sending on the Outbox page.",
        )
    if classification is Classification.PERMANENT:
        return Diagnosis(
            "not_sendable",
            happened,
            "The server cannot take this message as it is: change the message or the address "
            "and send it again.",
        )
    return Diagnosis(
        "no_reply",
        happened,
        "Postroom tries again later by itself. If it keeps happening, run Check connection on "
        "Company → SMTP Server Information.",
    )
