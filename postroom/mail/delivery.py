"""Deliver pre-rendered messages over one SMTP session, and say what became of each recipient.

`SmtpConnection` is the session of postroom.mail.session (connect, greeting, EHLO, STARTTLS,
AUTH as the settings say) plus mail transactions: one per `deliver(envelope)`, as many times as
wanted, with PIPELINING (RFC 2920) when the server offers it. It never raises for what a
server answers or for a broken connection: every recipient gets exactly one `RecipientOutcome`
per attempt, and the `DeliveryOutcome` says whether the server wants a pause (bad settings) or
a slower pace. The connection check drives the same class: `mail_from_probe` asks MAIL FROM
without sending, and a `transcript` list, when set, records every reply of a transaction.

It knows nothing of the outbox: the caller records outcomes and decides about retries.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time

from postroom.mail.classify import (
    PERMANENT,
    Failure,
    is_out_of_step,
)
from postroom.mail.config import SmtpServerConfig
from postroom.mail.outcome import (
    DeliveryOutcome,
    DeliveryRecord,
    Envelope,
    PreparedEnvelope,
    RecipientOutcome,
    TransactionRecord,
)
from postroom.mail.replies import Reply, ReplyCode, Stage
from postroom.mail.session import (
    CONNECTION_ERRORS,
    SmtpSession,
    SmtpSessionError,
    StageDone,
    describe_failure,
)

__all__ = [
    "DeliveryOutcome",
    "Envelope",
    "RecipientOutcome",
    "SmtpConnection",
    "SmtpSessionError",
]


class _NoReplyError(Exception):
    """The session broke inside a transaction: no reply, garbage, or a 421 that ends it."""

    def __init__(self, failure: Failure, text: str, *, farewell: Reply | None = None) -> None:
        super().__init__(text)
        self.failure = failure
        self.text = text
        self.farewell = farewell  # the 421, when the server said why it leaves


class SmtpConnection(SmtpSession):
    """One SMTP session, reused for many messages. Not safe for concurrent `deliver` calls."""

    def __init__(
        self,
        config: SmtpServerConfig,
        *,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(config, tls_context=tls_context)
        self.transaction_count = 0  # MAIL transactions started on this session
        self._needs_rset = False
        # Set to a list to keep every reply of the transactions (the connection check does).
        self.transcript: list[tuple[Stage, Reply]] | None = None

    @property
    def offers_pipelining(self) -> bool:
        return "pipelining" in self.extensions

    async def open(
        self, *, sock: socket.socket | None = None, on_stage: StageDone | None = None
    ) -> None:
        if self.is_usable:
            return
        self._needs_rset = False
        self.transaction_count = 0
        await super().open(sock=sock, on_stage=on_stage)

    # Asking without sending -------------------------------------------------------------------

    async def mail_from_probe(self, sender: str) -> Reply:
        """Say MAIL FROM for `sender` as a delivery would, and return the reply; send nothing.

        A reply with no code is a refusal before asking (the address needs SMTPUTF8 and the
        server lacks it). Call `reset` afterwards. Raises SmtpSessionError when no reply comes.
        """
        prepared = PreparedEnvelope(Envelope(sender, (), b""))
        refusal = self._envelope_refusal(prepared)
        if refusal is not None:
            return refusal
        reply = await self._command(Stage.MAIL, self._mail_command(prepared))
        if reply.code == ReplyCode.SERVICE_UNAVAILABLE:
            self._retire()  # RFC 5321 §3.8: the server closes the channel
        elif reply.code == ReplyCode.COMPLETED:
            self._needs_rset = True
        return reply

    async def reset(self) -> Reply:
        """RSET (RFC 5321 §4.1.1.5): abort the transaction a probe started."""
        reply = await self._command(Stage.MAIL, b"RSET\r\n")
        self._needs_rset = False
        return reply

    # Delivering --------------------------------------------------------------------------------

    async def deliver(self, envelope: Envelope) -> DeliveryOutcome:
        """Send `envelope`, opening the session first if needed; return every recipient's fate.

        Recipients refused with "452 too many recipients" go in a next transaction on the same
        session (RFC 5321 §4.5.3.1.10), until all are done or no progress is made. A reused
        session found dead before the server answered anything of this message is reopened
        once: nothing can have been accepted on it.
        """
        prepared = PreparedEnvelope(envelope)
        record = DeliveryRecord(prepared, is_oauth=self.config.is_oauth)
        try:
            await self._deliver(prepared, record)
        except BaseException:
            # Cancelled in the middle of a conversation: replies may still be owed, so the
            # session can never be trusted to pair a reply with its command again.
            self.abort()
            raise
        self.last_used_at = time.monotonic()
        return record.outcome(self.server)

    async def _deliver(self, prepared: PreparedEnvelope, record: DeliveryRecord) -> None:
        may_reopen = self.is_usable
        while record.pending:
            if not self.is_usable:
                try:
                    await self.open()
                except SmtpSessionError as error:
                    record.decide_pending(
                        error.stage, error.verdict, error.reply, failure=error.failure
                    )
                    return
            refusal = self._envelope_refusal(prepared)
            if refusal is not None:
                record.decide_pending(Stage.ENVELOPE, PERMANENT, refusal)
                return
            transaction = await self._transaction(prepared, record.pending)
            if may_reopen and not transaction.has_reply:
                may_reopen = False
                continue  # the idle session had died; the loop opens a fresh one
            may_reopen = False
            record.add(transaction)  # leaves the "452 too many" recipients pending

    def _envelope_refusal(self, prepared: PreparedEnvelope) -> Reply | None:
        """Refuse, before MAIL FROM, what the server told us in EHLO it cannot take."""
        if prepared.needs_smtputf8 and "smtputf8" not in self.extensions:
            return Reply.missing(
                "the message needs SMTPUTF8 (a non-ASCII address or header) and the server "
                "does not offer it"
            )
        limit = _size_limit(self.extensions)
        if limit and prepared.size > limit:
            return Reply.missing(
                f"the message is {prepared.size} bytes; the server accepts at most {limit}"
            )
        return None

    def _mail_command(self, prepared: PreparedEnvelope) -> bytes:
        parameters = []
        if "size" in self.extensions:
            parameters.append(b" SIZE=%d" % prepared.size)  # RFC 1870 §6
        if prepared.is_8bit and "8bitmime" in self.extensions:
            parameters.append(b" BODY=8BITMIME")  # RFC 6152 §2
        if prepared.needs_smtputf8:
            parameters.append(b" SMTPUTF8")  # RFC 6531 §3.4
        sender = prepared.address_bytes(prepared.envelope.sender)
        return b"MAIL FROM:<" + sender + b">" + b"".join(parameters) + b"\r\n"

    async def _transaction(
        self, prepared: PreparedEnvelope, indexes: list[int]
    ) -> TransactionRecord:
        """Run RSET (if needed), MAIL, RCPT for `indexes`, DATA and the message, once.

        With PIPELINING (RFC 2920 §3.1) RSET, MAIL, every RCPT and DATA go in one write and
        their replies are read in order; without it each command waits for its reply, and
        DATA is not sent when no recipient was accepted (RFC 5321 §3.3).
        """
        result = TransactionRecord(prepared.envelope, list(indexes), is_oauth=self.config.is_oauth)
        recipients = prepared.envelope.recipients
        rset = [b"RSET\r\n"] if self._needs_rset else []
        mail = self._mail_command(prepared)
        rcpt = [b"RCPT TO:<" + prepared.address_bytes(recipients[i]) + b">\r\n" for i in indexes]
        pipelined = self.offers_pipelining
        self._needs_rset = True  # until the server answers the final "."
        self.transaction_count += 1
        try:
            if pipelined:
                group = [*rset, mail, *rcpt, b"DATA\r\n"]
                self._send(b"".join(group), replies=len(group))
            for line in rset:
                reply = await self._exchange(Stage.MAIL, line, pipelined, result)
                if reply.code != ReplyCode.COMPLETED:
                    raise _NoReplyError(Failure.GARBAGE, f"RSET refused: {reply}")  # noqa: TRY301 - handled by the except below, with the other missing replies
            reply = await self._exchange(Stage.MAIL, mail, pipelined, result)
            if reply.code != ReplyCode.COMPLETED:
                result.decide_all(Stage.MAIL, reply)
                if pipelined:  # the replies to RCPT and DATA still come (503s)
                    await self._skip_replies(Stage.RCPT, len(rcpt), result)
                    await self._skip_replies(Stage.DATA, 1, result)
                else:
                    self._needs_rset = False  # RFC 5321 §4.1.1.2: no transaction was started
                return result
            result.stage = Stage.RCPT
            for index, line in zip(indexes, rcpt, strict=True):
                reply = await self._exchange(Stage.RCPT, line, pipelined, result)
                result.recipient_reply(index, reply)
            if not result.accepted:
                if pipelined:  # DATA went with the group: the server refuses it
                    await self._skip_replies(Stage.DATA, 1, result)
                return result  # RSET starts the next transaction
            result.stage = Stage.DATA
            reply = await self._exchange(Stage.DATA, b"DATA\r\n", pipelined, result)
        except _NoReplyError as error:
            self._retire()
            result.fail_undecided(error.failure, error.text, farewell=error.farewell)
            return result
        if reply.code != ReplyCode.START_INPUT:
            result.decide_accepted(Stage.DATA, reply)
            return result
        result.stage = Stage.END_OF_DATA
        await self._send_message(prepared, result)
        return result

    async def _skip_replies(self, stage: Stage, count: int, result: TransactionRecord) -> None:
        """Read replies owed to pipelined commands that no longer matter."""
        for _ in range(count):
            reply = await self._exchange(stage, b"", True, result)
            if reply.code == ReplyCode.START_INPUT:
                # The server waits for a message no recipient was accepted for: nothing can
                # be sent safely, so the session is dropped.
                raise _NoReplyError(Failure.GARBAGE, f"{reply} with no recipient accepted")

    async def _send_message(self, prepared: PreparedEnvelope, result: TransactionRecord) -> None:
        protocol = self._protocol
        assert protocol is not None
        # One turn of the event loop lets a hang-up that came with the 354 be seen: a server
        # that closed before our final "." cannot have the message (temporary, not uncertain).
        await asyncio.sleep(0)
        is_written = False
        try:
            protocol.send(prepared.wire_data, replies=1)
            is_written = True
            response = await protocol.read_reply(self.config.timeouts.data)
        except CONNECTION_ERRORS as error:
            # The final "." left us only if nothing of the message was still in our buffer.
            is_final_dot_sent = is_written and protocol.unsent_bytes == 0
            self._retire()
            failure, text = describe_failure(Stage.END_OF_DATA, error, self.config.timeouts.data)
            self._note(Stage.END_OF_DATA, Reply.missing(text))
            result.fail_undecided(failure, text, is_final_dot_sent=is_final_dot_sent)
            return
        reply = Reply.parse(response.code, response.message)
        self._note(Stage.END_OF_DATA, reply)
        if is_out_of_step(Stage.END_OF_DATA, reply):
            self._retire()
            text = f"a reply that does not fit the end of the message: {reply}"
            result.fail_undecided(Failure.GARBAGE, text, is_final_dot_sent=True)
            return
        if reply.code == ReplyCode.SERVICE_UNAVAILABLE:
            self._retire()
        else:
            self._needs_rset = False  # RFC 5321 §4.1.1.4: the reply to "." ends the transaction
        result.decide_accepted(Stage.END_OF_DATA, reply)

    def _note(self, stage: Stage, reply: Reply) -> None:
        if self.transcript is not None:
            self.transcript.append((stage, reply))

    def _send(self, data: bytes, *, replies: int) -> None:
        assert self._protocol is not None
        try:
            self._protocol.send(data, replies=replies)
        except CONNECTION_ERRORS as error:
            failure, text = describe_failure(Stage.MAIL, error, 0)
            raise _NoReplyError(failure, text) from None

    async def _exchange(
        self, stage: Stage, line: bytes, pipelined: bool, result: TransactionRecord
    ) -> Reply:
        """Send `line` (unless pipelined: then it is sent already) and read its reply."""
        assert self._protocol is not None
        if not pipelined:
            self._send(line, replies=1)
        timeout = self.config.timeouts.command
        try:
            response = await self._protocol.read_reply(timeout)
        except CONNECTION_ERRORS as error:
            failure, text = describe_failure(stage, error, timeout)
            self._note(stage, Reply.missing(text))
            raise _NoReplyError(failure, text) from None
        result.has_reply = True
        reply = Reply.parse(response.code, response.message)
        self._note(stage, reply)
        if reply.code == ReplyCode.SERVICE_UNAVAILABLE:
            # RFC 5321 §3.8: 421 closes the channel; the replies still owed will not come.
            raise _NoReplyError(Failure.DISCONNECTED, str(reply), farewell=reply)
        if is_out_of_step(stage, reply):
            raise _NoReplyError(Failure.GARBAGE, f"unexpected reply {stage.awaiting}: {reply}")
        return reply


def _size_limit(extensions: dict[str, str]) -> int:
    """The server's SIZE (RFC 1870 §4); 0 means none announced or no fixed limit."""
    value = extensions.get("size", "").strip()
    return int(value) if value.isdigit() else 0
