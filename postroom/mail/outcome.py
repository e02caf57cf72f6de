"""An envelope in, one fate per recipient out: the data of a delivery, and its bookkeeping.

Pure: `SmtpConnection` (postroom.mail.delivery) talks to the server and reports each reply
here; these classes make sure every recipient ends with exactly one `RecipientOutcome`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings

from postroom.mail.classify import (
    PERMANENT,
    Classification,
    Failure,
    PauseScope,
    Verdict,
    classify_missing_reply,
    classify_reply,
    diagnose_reply,
)
from postroom.mail.replies import Reply, Stage

# Characters that must never reach an envelope address: they would end or split the command
# (C0 controls, DEL) or the path (angle brackets). Enqueue rejects them already.
_FORBIDDEN_IN_ADDRESS = re.compile(r"[\x00-\x1f\x7f<>]")
_STAGE_ORDER = list(Stage)


@dataclass(frozen=True)
class Envelope:
    """One message to send: the SMTP envelope and the exact RFC 5322 bytes (CRLF lines)."""

    sender: str  # "" for the null reverse-path <> (RFC 5321 §4.5.5)
    recipients: Sequence[str]
    data: bytes
    needs_smtputf8: bool = False  # UTF-8 in a header (RFC 6532); addresses are seen to

    def __post_init__(self) -> None:
        object.__setattr__(self, "recipients", tuple(self.recipients))


@dataclass(frozen=True)
class RecipientOutcome:
    address: str
    classification: Classification
    stage: Stage  # where this recipient's fate was decided
    code: int | None  # the server's reply code; None when there was no reply
    enhanced: str  # RFC 3463 status, "" if none
    text: str  # the server's text, or what happened when there was no reply
    failure: Failure | None = None  # why there was no reply, when none came

    @property
    def is_success(self) -> bool:
        return self.classification is Classification.SUCCESS

    @property
    def reply_text(self) -> str:
        """One line for a log or a page: "550 5.1.1 User unknown"."""
        return str(Reply(self.code, self.enhanced, self.text))


@dataclass(frozen=True)
class DeliveryOutcome:
    server: str  # "host:port"
    recipients: tuple[RecipientOutcome, ...]  # one per envelope recipient, in the same order
    stage: Stage  # how far the attempt got
    transactions: int = 0  # MAIL transactions used (more than one after a 452)
    pause_scope: PauseScope | None = None  # stop sending through the server (or as the sender)
    pause_reason: str = ""  # the reply or failure that calls for the pause
    is_throttled: bool = False  # the server asked us to slow down

    @property
    def should_pause(self) -> bool:
        return self.pause_scope is not None

    @property
    def is_success(self) -> bool:
        return all(outcome.is_success for outcome in self.recipients)

    def for_address(self, address: str) -> RecipientOutcome:
        return next(outcome for outcome in self.recipients if outcome.address == address)


def address_problem(address: str) -> str | None:
    """Why `address` cannot go into MAIL FROM or RCPT TO, if it cannot."""
    if not address:
        return "the address is empty"
    if _FORBIDDEN_IN_ADDRESS.search(address):
        return "the address contains a control character or an angle bracket"
    return None


class PreparedEnvelope:
    """What a delivery needs to know about an envelope, computed once for all transactions."""

    def __init__(self, envelope: Envelope) -> None:
        self.envelope = envelope
        addresses = (envelope.sender, *envelope.recipients)
        self.needs_smtputf8 = envelope.needs_smtputf8 or not all(a.isascii() for a in addresses)
        self.is_8bit = not envelope.data.isascii()
        self.sender_problem = address_problem(envelope.sender) if envelope.sender else None
        self._canonical: bytes | None = None
        self._wire: bytes | None = None

    @property
    def canonical(self) -> bytes:
        if self._canonical is None:
            # Lone CR or LF cannot travel in SMTP (RFC 5321 §2.3.8). The data is CRLF
            # already, which counting tells much faster than the regular expression does.
            data = self.envelope.data
            crlf = data.count(b"\r\n")
            is_canonical = data.endswith(b"\r\n") and data.count(b"\r") == crlf == data.count(b"\n")
            self._canonical = data if is_canonical else normalize_message_line_endings(data)
        return self._canonical

    @property
    def size(self) -> int:
        return len(self.canonical)  # RFC 1870 §4: CRLFs count; dot-stuffing and "." do not

    @property
    def wire_data(self) -> bytes:
        """The message as DATA sends it: a line that starts with "." gets one more
        (RFC 5321 §4.5.2), and "." alone on the last line ends it."""
        if self._wire is None:
            data = self.canonical
            if data.startswith(b".") or b"\n." in data:
                data = PERIOD_REGEX.sub(b"..", data)
            self._wire = data + b".\r\n"
        return self._wire

    def address_bytes(self, address: str) -> bytes:
        return address.encode("utf-8" if self.needs_smtputf8 else "ascii")


def _recipient_outcome(
    address: str, stage: Stage, verdict: Verdict, reply: Reply, failure: Failure | None = None
) -> RecipientOutcome:
    return RecipientOutcome(
        address, verdict.classification, stage, reply.code, reply.enhanced, reply.text, failure
    )


class TransactionRecord:
    """What one MAIL transaction did to the recipients it was given (envelope indexes)."""

    def __init__(self, envelope: Envelope, indexes: list[int], *, is_oauth: bool = False) -> None:
        self.envelope = envelope
        self.is_oauth = is_oauth  # logged in with a token: the advice names OAuth's settings
        self.indexes = indexes
        self.decided: dict[int, RecipientOutcome] = {}
        self.accepted: list[int] = []  # 2xx to RCPT: their fate comes with the end of data
        self.not_tried: list[int] = []  # "452 too many recipients": for the next transaction
        self.too_many: Reply | None = None
        self.stage = Stage.MAIL  # how far it got
        self.signals: list[tuple[Verdict, str]] = []  # replies asking to pause or slow down
        self.has_reply = False  # the server answered something of this transaction

    def decide(
        self,
        index: int,
        stage: Stage,
        reply: Reply,
        verdict: Verdict | None = None,
        failure: Failure | None = None,
    ) -> None:
        verdict = verdict or classify_reply(stage, reply)
        self.decided[index] = _recipient_outcome(
            self.envelope.recipients[index], stage, verdict, reply, failure
        )
        if verdict.should_pause or verdict.is_throttling:
            self.signals.append((verdict, _in_words(stage, reply, is_oauth=self.is_oauth)))

    def decide_all(self, stage: Stage, reply: Reply) -> None:
        verdict = classify_reply(stage, reply)
        for index in self.indexes:
            self.decide(index, stage, reply, verdict)

    def decide_accepted(self, stage: Stage, reply: Reply) -> None:
        """The reply to DATA or to the final "." decides for every accepted recipient."""
        for index in self.accepted:
            self.decide(index, stage, reply)

    def recipient_reply(self, index: int, reply: Reply) -> None:
        verdict = classify_reply(Stage.RCPT, reply)
        if verdict.classification is Classification.SUCCESS:
            self.accepted.append(index)
        elif verdict.is_too_many_recipients:
            self.not_tried.append(index)  # RFC 5321 §4.5.3.1.10
            self.too_many = self.too_many or reply
        else:
            self.decide(index, Stage.RCPT, reply, verdict)

    def fail_undecided(
        self,
        failure: Failure,
        text: str,
        *,
        farewell: Reply | None = None,
        is_final_dot_sent: bool = False,
    ) -> None:
        """The session broke (`farewell` is the 421 if the server said why): every recipient
        not yet refused shares the fate."""
        for index in self.indexes:
            if index in self.decided:
                continue
            if farewell is not None:  # 421: temporary, and the server wants less of us
                self.decide(index, self.stage, farewell)
                continue
            verdict = classify_missing_reply(
                failure, is_final_dot_sent=is_final_dot_sent and index in self.accepted
            )
            self.decide(index, self.stage, Reply.missing(text), verdict, failure)
        self.accepted, self.not_tried = [], []


class DeliveryRecord:
    """All transactions of one delivery, and the outcome they add up to."""

    def __init__(self, prepared: PreparedEnvelope, *, is_oauth: bool = False) -> None:
        envelope = prepared.envelope
        self.is_oauth = is_oauth
        self.envelope = envelope
        self.decided: dict[int, RecipientOutcome] = {}
        for index, address in enumerate(envelope.recipients):
            problem = address_problem(address)
            if problem:
                self.decided[index] = _recipient_outcome(
                    address, Stage.ENVELOPE, PERMANENT, Reply.missing(problem)
                )
        self.pending = [i for i in range(len(envelope.recipients)) if i not in self.decided]
        self.stage = Stage.CONNECT if self.pending else Stage.ENVELOPE
        self.transactions = 0
        self.signals: list[tuple[Verdict, str]] = []
        if prepared.sender_problem:
            self.decide_pending(Stage.ENVELOPE, PERMANENT, Reply.missing(prepared.sender_problem))

    def decide_pending(
        self, stage: Stage, verdict: Verdict, reply: Reply, *, failure: Failure | None = None
    ) -> None:
        for index in self.pending:
            self.decided[index] = _recipient_outcome(
                self.envelope.recipients[index], stage, verdict, reply, failure
            )
        self.pending = []
        self._reached(stage)
        if verdict.should_pause or verdict.is_throttling:
            self.signals.append((verdict, _in_words(stage, reply, is_oauth=self.is_oauth)))

    def add(self, transaction: TransactionRecord) -> None:
        """Count a transaction in; its "452 too many" recipients are pending again."""
        self.transactions += 1
        self.decided.update(transaction.decided)
        self.signals.extend(transaction.signals)
        self._reached(transaction.stage)
        self.pending = list(transaction.not_tried)
        if self.pending and not transaction.accepted:
            # 452 to the first RCPT of a transaction: no progress is possible now.
            assert transaction.too_many is not None
            verdict = classify_reply(Stage.RCPT, transaction.too_many)
            self.decide_pending(Stage.RCPT, verdict, transaction.too_many)

    def _reached(self, stage: Stage) -> None:
        if _STAGE_ORDER.index(stage) > _STAGE_ORDER.index(self.stage):
            self.stage = stage

    def outcome(self, server: str) -> DeliveryOutcome:
        # A server-wide pause outranks a sender pause met in the same attempt.
        pauses = sorted(
            (signal for signal in self.signals if signal[0].should_pause),
            key=lambda signal: signal[0].pause_scope is not PauseScope.SERVER,
        )
        return DeliveryOutcome(
            server=server,
            recipients=tuple(self.decided[i] for i in range(len(self.envelope.recipients))),
            stage=self.stage,
            transactions=self.transactions,
            pause_scope=pauses[0][0].pause_scope if pauses else None,
            pause_reason=pauses[0][1] if pauses else "",
            is_throttled=any(verdict.is_throttling for verdict, _ in self.signals),
        )


def _in_words(stage: Stage, reply: Reply, *, is_oauth: bool) -> str:
    """Why sending should pause or slow down, as the Outbox and the dashboard say it: the
    reply table's words for a server's reply (the reply itself inside them), or Postroom's
    own account when there was none."""
    if reply.code is None:
        return str(reply)
    return diagnose_reply(stage, reply, is_oauth=is_oauth).sentence
