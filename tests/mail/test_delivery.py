"""The delivery transport against real SMTP servers on 127.0.0.1.

Correct servers are aiosmtpd (`ScriptedSmtpServer`); faults a correct server cannot make (a
hang-up after the final ".", garbage, a 1 MB line, 452 after the hundredth RCPT) come from
`FaultSmtpServer`. Every test asserts what the server received and each recipient's fate.
"""

from __future__ import annotations

import asyncio
import gc
import time
import tracemalloc
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from typing import Any

import pytest

from postroom.mail.classify import Classification, PauseScope
from postroom.mail.config import SmtpServerConfig, Timeouts, TlsPolicy
from postroom.mail.delivery import DeliveryOutcome, Envelope, SmtpConnection
from postroom.mail.replies import Stage
from tests.support.certs import CertAuthority
from tests.support.faultsmtp import (
    CLOSE,
    HANG,
    FaultScript,
    FaultSession,
    FaultSmtpServer,
    Flood,
    fault_smtp,
)
from tests.support.smtpd import ScriptedSmtpServer, SmtpdScript, closed_port

S, T, P, U, C = (
    Classification.SUCCESS,
    Classification.TEMPORARY,
    Classification.PERMANENT,
    Classification.UNCERTAIN,
    Classification.CONFIG,
)
# Short enough to keep the suite fast, long enough for a loaded CI machine on loopback.
FAST = Timeouts(connect=0.5, command=0.5, data=0.5)
SENDER = "sender@postroom.test"
RECIPIENTS = ("a@example.test", "b@example.test", "c@example.test")


def config_for(server: Any, **changes: Any) -> SmtpServerConfig:
    settings: dict[str, Any] = {"tls": TlsPolicy.NONE, "timeouts": FAST, **changes}
    return SmtpServerConfig(host="127.0.0.1", port=server.port, **settings)


def message(body: str = "Hello.\n", subject: str = "Test") -> bytes:
    email = EmailMessage(policy=SMTP_POLICY)
    email["From"] = SENDER
    email["To"] = ", ".join(RECIPIENTS)
    email["Subject"] = subject
    email["Message-ID"] = "<transport-test@postroom.test>"
    email.set_content(body)
    return email.as_bytes()


def envelope(recipients: tuple[str, ...] = RECIPIENTS, data: bytes | None = None) -> Envelope:
    return Envelope(SENDER, recipients, data if data is not None else message())


def deliver(config: SmtpServerConfig, *envelopes: Envelope) -> list[DeliveryOutcome]:
    """Deliver the envelopes one after the other on one connection, then QUIT."""

    async def run() -> list[DeliveryOutcome]:
        connection = SmtpConnection(config)
        try:
            return [await connection.deliver(each) for each in envelopes]
        finally:
            await connection.close()

    return asyncio.run(run())


def fates(outcome: DeliveryOutcome) -> list[Classification]:
    return [recipient.classification for recipient in outcome.recipients]


# --- The connection cannot be used -------------------------------------------------------------


def test_a_refused_connection_defers_every_recipient() -> None:
    with closed_port() as port:
        config = SmtpServerConfig(host="127.0.0.1", port=port, tls=TlsPolicy.NONE, timeouts=FAST)
        [outcome] = deliver(config, envelope())
    assert fates(outcome) == [T, T, T]
    assert outcome.stage is Stage.CONNECT
    assert "refused" in outcome.recipients[0].text
    assert not outcome.should_pause


def test_a_server_that_never_greets_times_out_as_temporary() -> None:
    with fault_smtp(FaultScript(greeting=HANG)) as server:
        started = time.monotonic()
        [outcome] = deliver(config_for(server), envelope())
        elapsed = time.monotonic() - started
    assert fates(outcome) == [T, T, T]
    assert outcome.stage is Stage.GREETING
    assert "no reply to the greeting within 0.5 s" in outcome.recipients[0].text
    assert elapsed < 3 * FAST.command
    assert server.verbs() == []


def test_a_554_greeting_pauses_the_server_and_keeps_the_messages() -> None:
    with fault_smtp(FaultScript(greeting=["554 5.7.1 Your address is blocked", CLOSE])) as server:
        [outcome] = deliver(config_for(server), envelope())
    assert fates(outcome) == [C, C, C]
    assert outcome.pause_scope is PauseScope.SERVER
    assert "blocked" in outcome.pause_reason


def test_a_421_greeting_defers_and_asks_to_slow_down() -> None:
    with fault_smtp(FaultScript(greeting=["421 4.7.0 Too many connections", CLOSE])) as server:
        [outcome] = deliver(config_for(server), envelope())
    assert fates(outcome) == [T, T, T]
    assert outcome.is_throttled
    assert outcome.recipients[0].code == 421


# --- Dropped connections and silence around the message ---------------------------------------


@pytest.mark.parametrize("attempt", range(5))  # the order of events is fixed: never flaky
def test_a_354_then_hang_up_is_temporary_and_nothing_arrived(attempt: int) -> None:
    # Server and client share one event loop, so the hang-up reaches the client with the
    # 354, as from a server that exits right after it. (Were the hang-up to arrive only
    # after our final ".", the client could not tell it from a server that read the message,
    # and "uncertain" would be the honest answer.)
    server = FaultSmtpServer(FaultScript(data=["354 Go ahead", CLOSE]))

    async def run() -> DeliveryOutcome:
        async with server.serving():
            connection = SmtpConnection(config_for(server))
            return await connection.deliver(envelope())

    outcome = asyncio.run(run())
    assert fates(outcome) == [T, T, T]
    assert outcome.stage is Stage.END_OF_DATA
    assert "closed the connection" in outcome.recipients[0].text
    assert server.messages == []


def test_a_hang_up_after_the_final_dot_is_uncertain() -> None:
    with fault_smtp(FaultScript(end_of_data=CLOSE)) as server:
        [outcome] = deliver(config_for(server), envelope())
    assert fates(outcome) == [U, U, U]
    assert outcome.recipients[0].code is None
    assert "closed the connection after the end of the message" in outcome.recipients[0].text
    [received] = server.messages
    assert received.content == envelope().data  # the server does have it: hence "uncertain"


def test_no_reply_after_the_final_dot_is_uncertain() -> None:
    with fault_smtp(FaultScript(end_of_data=HANG)) as server:
        [outcome] = deliver(config_for(server), envelope())
    assert fates(outcome) == [U, U, U]
    assert "within 0.5 s" in outcome.recipients[0].text
    assert len(server.messages) == 1


def test_a_421_in_the_middle_of_the_transaction_defers_everyone_and_slows_down() -> None:
    def rcpt(session: FaultSession, address: str) -> Any:
        if address == RECIPIENTS[1]:
            return ["421 4.7.0 Too many messages, closing connection", CLOSE]
        return "250 2.1.5 Ok"

    with fault_smtp(FaultScript(rcpt=rcpt, extensions=())) as server:
        [outcome] = deliver(config_for(server), envelope())
    assert fates(outcome) == [T, T, T]
    assert outcome.is_throttled
    assert {r.code for r in outcome.recipients} == {421}
    assert "DATA" not in server.verbs()
    assert server.messages == []


def test_a_421_at_end_of_data_defers_and_the_next_message_uses_a_new_connection() -> None:
    def end_of_data(session: FaultSession, content: bytes) -> Any:
        return (
            ["421 4.4.5 Server busy, try again later", CLOSE]
            if session.number == 1
            else ("250 2.0.0 Ok")
        )

    with fault_smtp(FaultScript(end_of_data=end_of_data)) as server:
        first, second = deliver(config_for(server), envelope(), envelope())
    assert fates(first) == [T, T, T]
    assert first.is_throttled
    assert fates(second) == [S, S, S]
    assert server.sessions == 2


# --- Replies per recipient ---------------------------------------------------------------------


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_450_defers_only_that_recipient(pipelining: bool) -> None:
    extensions = ("PIPELINING", "ENHANCEDSTATUSCODES") if pipelining else ()
    script = SmtpdScript(
        recipient_replies={RECIPIENTS[1]: "450 4.2.0 Greylisted, try again later"},
        extra_extensions=extensions,
    )
    with ScriptedSmtpServer(script) as server:
        [outcome] = deliver(config_for(server), envelope())
    assert fates(outcome) == [S, T, S]
    deferred = outcome.for_address(RECIPIENTS[1])
    assert (deferred.code, deferred.enhanced, deferred.stage) == (450, "4.2.0", Stage.RCPT)
    assert not outcome.is_throttled  # greylisting is about one recipient, not our pace
    [received] = server.messages
    assert received.rcpt_tos == (RECIPIENTS[0], RECIPIENTS[2])


def test_a_550_fails_only_that_recipient() -> None:
    script = SmtpdScript(recipient_replies={RECIPIENTS[2]: "550 5.1.1 User unknown"})
    with ScriptedSmtpServer(script) as server:
        [outcome] = deliver(config_for(server), envelope())
    assert fates(outcome) == [S, S, P]
    assert outcome.recipients[2].reply_text == "550 5.1.1 User unknown"
    assert server.messages[0].rcpt_tos == RECIPIENTS[:2]


def test_all_recipients_refused_sends_no_data_and_resets_before_the_next_message() -> None:
    script = FaultScript(
        rcpt=lambda session, address: (
            "550 5.1.1 User unknown" if address in RECIPIENTS else "250 2.1.5 Ok"
        ),
        extensions=("ENHANCEDSTATUSCODES",),  # no PIPELINING: DATA would be a separate step
    )
    with fault_smtp(script) as server:
        refused, accepted = deliver(
            config_for(server), envelope(), envelope(recipients=("d@example.test",))
        )
    assert fates(refused) == [P, P, P]
    assert fates(accepted) == [S]
    assert server.verbs() == [
        "EHLO", "MAIL", "RCPT", "RCPT", "RCPT", "RSET", "MAIL", "RCPT", "DATA", "QUIT",
    ]  # fmt: skip
    assert [m.rcpt_tos for m in server.messages] == [("d@example.test",)]


def test_all_recipients_refused_with_pipelining_delivers_nothing() -> None:
    script = SmtpdScript(default_recipient_reply="550 5.1.1 <{address}>: User unknown")
    with ScriptedSmtpServer(script) as server:
        [outcome] = deliver(config_for(server), envelope())
    assert fates(outcome) == [P, P, P]
    assert server.messages == []  # DATA went with the group (RFC 2920) and was refused


def test_452_after_100_recipients_sends_the_rest_in_a_second_transaction() -> None:
    def rcpt(session: FaultSession, address: str) -> str:
        if len(session.recipients) >= 100:  # RFC 5321 §4.5.3.1.8: at least 100 must be taken
            return "452 4.5.3 Error: too many recipients"
        return "250 2.1.5 Ok"

    recipients = tuple(f"r{n}@example.test" for n in range(150))
    with fault_smtp(FaultScript(rcpt=rcpt)) as server:
        [outcome] = deliver(config_for(server), envelope(recipients=recipients))
    assert fates(outcome) == [S] * 150
    assert outcome.transactions == 2
    assert [len(m.rcpt_tos) for m in server.messages] == [100, 50]
    assert {m.session for m in server.messages} == {1}
    delivered = [address for m in server.messages for address in m.rcpt_tos]
    assert delivered == list(recipients)


def test_452_to_the_first_recipient_defers_them_all() -> None:
    script = FaultScript(rcpt="452 4.5.3 Error: too many recipients")
    with fault_smtp(script) as server:
        [outcome] = deliver(config_for(server), envelope())
    assert fates(outcome) == [T, T, T]
    assert {r.code for r in outcome.recipients} == {452}
    assert server.messages == []


def test_a_451_at_end_of_data_defers_every_recipient() -> None:
    script = SmtpdScript(data_reply="451 4.3.0 Error: queue file write error")
    with ScriptedSmtpServer(script) as server:
        [outcome] = deliver(config_for(server), envelope())
    assert fates(outcome) == [T, T, T]
    assert {r.stage for r in outcome.recipients} == {Stage.END_OF_DATA}
    assert not outcome.should_pause


def test_a_550_5_7_60_after_the_data_is_a_sender_problem_that_pauses() -> None:
    script = SmtpdScript(
        data_reply="550 5.7.60 SMTP; Client does not have permissions to send as this sender"
    )
    with ScriptedSmtpServer(script) as server:
        [outcome] = deliver(config_for(server), envelope())
    assert fates(outcome) == [C, C, C]
    assert outcome.pause_scope is PauseScope.SENDER
    assert "5.7.60" in outcome.pause_reason


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_refused_sender_pauses_the_sender_and_the_session_stays_in_step(
    pipelining: bool,
) -> None:
    extensions = ("PIPELINING",) if pipelining else ()
    script = SmtpdScript(allowed_senders=frozenset({SENDER}), extra_extensions=extensions)
    refused_envelope = Envelope("other@postroom.test", RECIPIENTS, message())
    with ScriptedSmtpServer(script) as server:
        refused, accepted = deliver(config_for(server), refused_envelope, envelope())
    assert fates(refused) == [C, C, C]
    assert refused.pause_scope is PauseScope.SENDER
    assert refused.recipients[0].stage is Stage.MAIL
    assert fates(accepted) == [S, S, S]  # the 503s to the pipelined RCPTs were all read
    assert server.sessions == 1
    assert [m.mail_from for m in server.messages] == [SENDER]
    if not pipelining:
        assert server.verbs()[:3] == ["EHLO", "MAIL", "MAIL"]  # no RCPT after a refused MAIL


# --- Garbage -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "script",
    [
        FaultScript(greeting=b"HTTP/1.1 400 Bad Request\r\n"),
        FaultScript(ehlo=b"\x00\xff\xfe garbage\r\n"),
        FaultScript(mail=b"Hello, this is not SMTP\r\n"),
        FaultScript(rcpt=b"25\r\n"),
        FaultScript(data=b"three hundred fifty-four\r\n"),
        FaultScript(mail=["250 2.1.0 Ok", "250 2.1.0 and an extra reply nobody asked for"]),
    ],
    ids=["greeting", "ehlo", "mail", "short-rcpt", "data", "extra-reply"],
)
def test_garbage_replies_are_temporary(script: FaultScript) -> None:
    with fault_smtp(script) as server:
        [outcome] = deliver(config_for(server), envelope())
    assert fates(outcome) == [T, T, T]
    assert server.messages == []


def test_a_1_mb_reply_line_is_temporary_and_costs_no_memory() -> None:
    line = Flood(b"x" * 65536, 16)  # 1 MiB without a line end, 64 KiB at a time
    with fault_smtp(FaultScript(mail=[b"250 ", line, b"\r\n"], extensions=())) as server:
        gc.collect()
        tracemalloc.start()
        try:
            [outcome] = deliver(config_for(server), envelope())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert fates(outcome) == [T, T, T]
    assert "Response too long" in outcome.recipients[0].text
    # aiosmtplib caps a reply at 32 KiB; the peak includes a read of up to 256 KiB, the
    # server's thread and the event loop, never the megabyte.
    assert peak < 1024 * 1024


# --- TLS and AUTH ------------------------------------------------------------------------------


def test_starttls_not_offered_when_required_is_config_and_nothing_is_sent_in_clear() -> None:
    script = SmtpdScript(users={"user": "secret"}, auth_before_tls=True)  # no cert: no STARTTLS
    with ScriptedSmtpServer(script) as server:
        config = config_for(
            server, tls=TlsPolicy.STARTTLS_REQUIRED, login="user", password="secret"
        )
        [outcome] = deliver(config, envelope())
    assert fates(outcome) == [C, C, C]
    assert outcome.pause_scope is PauseScope.SERVER
    assert outcome.stage is Stage.STARTTLS
    assert "does not offer STARTTLS" in outcome.recipients[0].text
    assert server.auth_attempts == []
    assert not server.has_envelope
    assert not server.has_mail_before_tls


def test_a_454_to_starttls_when_required_is_config_and_nothing_is_sent_in_clear(
    test_ca: CertAuthority,
) -> None:
    script = SmtpdScript(
        cert=test_ca.issue(),
        starttls_reply="454 4.7.0 TLS not available due to local problem",
        users={"user": "secret"},
    )
    with ScriptedSmtpServer(script) as server:
        config = config_for(
            server, tls=TlsPolicy.STARTTLS_REQUIRED, login="user", password="secret",
            ca_pem=test_ca.pem,
        )  # fmt: skip
        [outcome] = deliver(config, envelope())
    assert fates(outcome) == [C, C, C]
    assert outcome.recipients[0].code == 454
    assert server.verbs() == ["EHLO", "STARTTLS", "QUIT"]
    assert not server.has_mail_before_tls


@pytest.mark.parametrize("tls", [TlsPolicy.STARTTLS_REQUIRED, TlsPolicy.IMPLICIT])
def test_a_certificate_for_another_host_is_config(test_ca: CertAuthority, tls: TlsPolicy) -> None:
    cert = test_ca.issue(("mail.elsewhere.test",), stem="elsewhere")
    script = SmtpdScript(cert=cert, implicit_tls=tls is TlsPolicy.IMPLICIT, users={"u": "p"})
    with ScriptedSmtpServer(script) as server:
        config = config_for(server, tls=tls, login="u", password="p", ca_pem=test_ca.pem)
        [outcome] = deliver(config, envelope())
    assert fates(outcome) == [C, C, C]
    assert outcome.pause_scope is PauseScope.SERVER
    assert "certificate" in outcome.recipients[0].text
    assert server.auth_attempts == []
    assert not server.has_envelope


def test_an_untrusted_ca_is_config_unless_configured(test_ca: CertAuthority) -> None:
    script = SmtpdScript(cert=test_ca.issue(stem="untrusted"))
    with ScriptedSmtpServer(script) as server:
        [refused] = deliver(config_for(server, tls=TlsPolicy.STARTTLS_REQUIRED), envelope())
        [accepted] = deliver(
            config_for(server, tls=TlsPolicy.STARTTLS_REQUIRED, ca_pem=test_ca.pem), envelope()
        )
    assert fates(refused) == [C, C, C]
    assert fates(accepted) == [S, S, S]


@pytest.mark.parametrize(
    ("tls", "method"),
    [
        (TlsPolicy.STARTTLS_REQUIRED, "auto"),
        (TlsPolicy.STARTTLS_OPPORTUNISTIC, "LOGIN"),
        (TlsPolicy.IMPLICIT, "PLAIN"),
    ],
)
def test_tls_and_login_as_the_settings_say(
    test_ca: CertAuthority, tls: TlsPolicy, method: str
) -> None:
    script = SmtpdScript(
        cert=test_ca.issue(), implicit_tls=tls is TlsPolicy.IMPLICIT, users={"user": "s3cret"}
    )
    with ScriptedSmtpServer(script) as server:
        config = config_for(
            server, tls=tls, login="user", password="s3cret", auth_method=method,
            ca_pem=test_ca.pem,
        )  # fmt: skip
        [outcome] = deliver(config, envelope())
    assert fates(outcome) == [S, S, S]
    [attempt] = server.auth_attempts
    assert attempt.is_success and attempt.is_tls
    assert attempt.mechanism == ("PLAIN" if method == "auto" else method)
    [received] = server.messages
    assert received.is_tls and received.login == "user"
    assert not server.has_mail_before_tls


def test_a_535_is_config_pauses_the_server_and_never_shows_the_password(
    test_ca: CertAuthority,
) -> None:
    script = SmtpdScript(cert=test_ca.issue(), users={"user": "right"})
    with ScriptedSmtpServer(script) as server:
        config = config_for(
            server, tls=TlsPolicy.STARTTLS_REQUIRED, login="user", password="wrong-Pa55",
            ca_pem=test_ca.pem,
        )  # fmt: skip
        [outcome] = deliver(config, envelope())
    assert fates(outcome) == [C, C, C]
    assert outcome.pause_scope is PauseScope.SERVER
    assert outcome.stage is Stage.AUTH
    assert outcome.recipients[0].code == 535
    assert not server.has_envelope
    assert "wrong-Pa55" not in repr(outcome) + repr(config)


def test_auth_not_offered_with_a_login_is_config() -> None:
    script = SmtpdScript(offer_auth=False)
    with ScriptedSmtpServer(script) as server:
        [outcome] = deliver(config_for(server, login="user", password="x"), envelope())
    assert fates(outcome) == [C, C, C]
    assert "does not offer AUTH" in outcome.recipients[0].text
    assert not server.has_envelope


# --- The message on the wire -------------------------------------------------------------------


def test_dots_and_bare_line_ends_arrive_byte_identical() -> None:
    body = (
        "A line\n.\r\n"  # a lone "." line: would end the message unless doubled
        ".starts with a dot\n"
        "..two dots\n"
        "bare\rcarriage return and bare\nline feed\n"
        ".\n"
        "end"
    )
    data = message(body=body)
    assert b"\n.\r\n" in data and b"\r\n..two dots" in data
    with ScriptedSmtpServer() as server:
        [outcome] = deliver(config_for(server), envelope(data=data))
    assert fates(outcome) == [S, S, S]
    [received] = server.messages
    assert received.content == data
    assert server.verbs().count("DATA") == 1


def test_lone_line_ends_are_sent_as_crlf() -> None:
    # Enqueue stores CRLF bytes; should anything else come, SMTP cannot carry a bare CR or LF
    # (RFC 5321 §2.3.8), so each becomes CRLF and the size announced counts those.
    data = b"Subject: bare\n\nfirst\rsecond\n.third\r\nlast"
    with fault_smtp(FaultScript(extensions=("PIPELINING", "SIZE 1000"))) as server:
        [outcome] = deliver(config_for(server), envelope(data=data))
    assert fates(outcome) == [S, S, S]
    expected = b"Subject: bare\r\n\r\nfirst\r\nsecond\r\n.third\r\nlast\r\n"
    assert server.messages[0].content == expected
    assert f"SIZE={len(expected)}" in [c.line for c in server.commands if c.verb == "MAIL"][0]


def test_pipelining_sends_mail_rcpt_and_data_in_one_go_when_offered() -> None:
    with fault_smtp(FaultScript()) as server:
        outcomes = deliver(config_for(server), envelope(), envelope())
    assert [fates(o) for o in outcomes] == [[S, S, S], [S, S, S]]
    transactions = [
        [c for c in server.commands if c.verb in ("MAIL", "RCPT", "DATA") and c.read == read]
        for read in sorted({c.read for c in server.commands if c.verb == "MAIL"})
    ]
    assert [[c.verb for c in group] for group in transactions] == [
        ["MAIL", "RCPT", "RCPT", "RCPT", "DATA"]
    ] * 2


def test_no_pipelining_when_not_offered() -> None:
    with fault_smtp(FaultScript(extensions=("8BITMIME",))) as server:
        [outcome] = deliver(config_for(server), envelope())
    assert fates(outcome) == [S, S, S]
    reads = [c.read for c in server.commands]
    assert len(reads) == len(set(reads))  # each command waited for the previous reply


def test_size_and_8bitmime_parameters_when_offered() -> None:
    data = message(body="Grüße aus Köln\n").replace(b"Content-Transfer-Encoding: 8bit", b"")
    assert not data.isascii()
    script = FaultScript(extensions=("SIZE 1000000", "8BITMIME"))
    with fault_smtp(script) as server:
        [outcome] = deliver(config_for(server), envelope(data=data))
    assert fates(outcome) == [S, S, S]
    [mail] = [c.line for c in server.commands if c.verb == "MAIL"]
    assert mail == f"MAIL FROM:<{SENDER}> SIZE={len(data)} BODY=8BITMIME"


def test_a_message_over_the_servers_size_is_permanent_without_sending_it() -> None:
    data = message(body="x" * 2000 + "\n")
    with fault_smtp(FaultScript(extensions=("SIZE 1000",))) as server:
        [outcome] = deliver(config_for(server), envelope(data=data))
    assert fates(outcome) == [P, P, P]
    assert outcome.recipients[0].text == (
        f"the message is {len(data)} bytes; the server accepts at most 1000"
    )
    assert "MAIL" not in server.verbs()


def test_utf8_addresses_need_smtputf8() -> None:
    recipients = ("jürgen@example.test",)
    with fault_smtp(FaultScript()) as plain, ScriptedSmtpServer(SmtpdScript()) as utf8:
        [refused] = deliver(config_for(plain), envelope(recipients=recipients))
        [accepted] = deliver(config_for(utf8), envelope(recipients=recipients))
    assert fates(refused) == [P]
    assert "SMTPUTF8" in refused.recipients[0].text
    assert "MAIL" not in plain.verbs()
    assert fates(accepted) == [S]
    assert utf8.messages[0].rcpt_tos == recipients
    assert [c.argument for c in utf8.commands if c.verb == "MAIL"][0].endswith("SMTPUTF8")


def test_an_address_with_a_line_break_never_reaches_the_server() -> None:
    evil = "x@example.test>\r\nRCPT TO:<evil@example.test"
    with fault_smtp(FaultScript()) as server:
        [outcome] = deliver(config_for(server), envelope(recipients=(RECIPIENTS[0], evil)))
    assert fates(outcome) == [S, P]
    assert outcome.recipients[1].stage is Stage.ENVELOPE
    assert all("evil" not in c.line for c in server.commands)
    assert server.messages[0].rcpt_tos == (RECIPIENTS[0],)


def test_a_server_without_ehlo_gets_helo() -> None:
    with fault_smtp(FaultScript(ehlo="500 5.5.1 Command unrecognized")) as server:
        [outcome] = deliver(config_for(server), envelope())
    assert fates(outcome) == [S, S, S]
    assert server.verbs()[:3] == ["EHLO", "HELO", "MAIL"]


# --- One session, many messages ----------------------------------------------------------------


def test_many_messages_share_one_session() -> None:
    with ScriptedSmtpServer() as server:
        outcomes = deliver(config_for(server), *[envelope() for _ in range(10)])
    assert all(o.is_success for o in outcomes)
    assert server.sessions == 1
    assert len(server.messages) == 10


def test_a_cancelled_delivery_never_leaves_a_session_to_reuse() -> None:
    async def run(server: FaultSmtpServer) -> SmtpConnection:
        connection = SmtpConnection(config_for(server, timeouts=Timeouts(5, 5, 5)))
        task = asyncio.create_task(connection.deliver(envelope()))
        while not server.messages:  # the message is in; its reply will never come
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return connection

    with fault_smtp(FaultScript(end_of_data=HANG)) as server:
        connection = asyncio.run(run(server))
    assert not connection.is_usable  # its owed reply could answer the next command


def test_a_session_the_server_closed_is_reopened_for_the_next_message() -> None:
    end_of_data: Callable[[FaultSession, bytes], Any] = lambda session, content: [  # noqa: E731
        "250 2.0.0 Ok",
        CLOSE,
    ]
    with fault_smtp(FaultScript(end_of_data=end_of_data)) as server:
        outcomes = deliver(config_for(server), envelope(), envelope(), envelope())
    assert [fates(o) for o in outcomes] == [[S, S, S]] * 3
    assert server.sessions == 3
    assert len(server.messages) == 3
