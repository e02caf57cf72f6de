"""What replies mean: the classification table, without a socket."""

from __future__ import annotations

import pytest

from postroom.mail.classify import (
    Classification,
    Failure,
    PauseScope,
    classify_missing_reply,
    classify_reply,
    diagnose_reply,
    explain_failure,
    is_out_of_step,
    is_throttling,
    is_too_many_recipients,
    reply_rule,
)
from postroom.mail.replies import Reply, ReplyClass, Stage, split_enhanced_status

S, T, P, U, C = (
    Classification.SUCCESS,
    Classification.TEMPORARY,
    Classification.PERMANENT,
    Classification.UNCERTAIN,
    Classification.CONFIG,
)
SERVER, SENDER = PauseScope.SERVER, PauseScope.SENDER


def reply(line: str) -> Reply:
    code, _, message = line.partition(" ")
    return Reply.parse(int(code), message)


@pytest.mark.parametrize(
    ("stage", "line", "classification", "pause"),
    [
        # Success, and only the reply each command expects.
        (Stage.RCPT, "250 2.1.5 Ok", S, None),
        (Stage.RCPT, "251 2.1.5 User not local; will forward", S, None),
        (Stage.DATA, "354 End data with <CR><LF>.<CR><LF>", S, None),
        (Stage.END_OF_DATA, "250 2.0.0 Ok: queued as 4Xyz", S, None),
        (Stage.DATA, "250 2.0.0 Ok", T, None),  # out of step: never "sent"
        (Stage.END_OF_DATA, "354 go on", T, None),
        # Per recipient (RFC 5321 §4.2.1).
        (Stage.RCPT, "450 4.2.0 Greylisted, try again later", T, None),
        (Stage.RCPT, "451 4.7.1 <tempfail@x>: Recipient address rejected", T, None),
        (Stage.RCPT, "452 4.2.2 Mailbox full", T, None),
        (Stage.RCPT, "550 5.1.1 User unknown", P, None),
        (Stage.RCPT, "553 5.1.3 Bad recipient address syntax", P, None),
        (Stage.RCPT, "550 5.7.1 Recipient restricted to internal senders", P, None),
        # End of data.
        (Stage.END_OF_DATA, "451 4.3.0 Error: queue file write error", T, None),
        (Stage.END_OF_DATA, "554 5.7.1 Message rejected as spam", P, None),
        (Stage.END_OF_DATA, "552 5.3.4 Message size exceeds fixed limit", P, None),
        (Stage.DATA, "554 5.5.1 Error: no valid recipients", P, None),
        # The settings are wrong: pause the server.
        (Stage.AUTH, "535 5.7.8 Error: authentication failed", C, SERVER),
        (Stage.AUTH, "534 5.7.9 Application-specific password required", C, SERVER),
        (Stage.AUTH, "454 4.7.0 Temporary authentication failure", T, None),
        (Stage.STARTTLS, "554 5.7.0 TLS not available", C, SERVER),
        (Stage.EHLO, "501 5.5.2 Invalid hostname", C, SERVER),
        (Stage.GREETING, "554 5.7.1 Client host blocked using zen.spamhaus.org", C, SERVER),
        (Stage.MAIL, "530 5.7.0 Authentication required", C, SERVER),
        (Stage.MAIL, "530 5.7.0 Must issue a STARTTLS command first", C, SERVER),
        (Stage.MAIL, "530 5.7.57 Client not authenticated to send mail", C, SERVER),
        (Stage.RCPT, "554 5.7.1 <x@elsewhere.test>: Relay access denied", C, SERVER),
        (
            Stage.RCPT,
            "550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain",
            C,
            SERVER,
        ),
        # The sender is refused: pause that sender.
        (Stage.MAIL, "553 5.7.1 <a@x>: Sender address rejected: not owned by user u", C, SENDER),
        (
            Stage.MAIL,
            "550 5.7.60 SMTP; Client does not have permissions to send as this sender",
            C,
            SENDER,
        ),  # fmt: skip
        (Stage.MAIL, "550 5.1.0 Sender rejected: domain not found", C, SENDER),
        (
            Stage.END_OF_DATA,
            "550 5.7.60 SMTP; Client does not have permissions to send as this sender",
            C,
            SENDER,
        ),  # fmt: skip
        (
            Stage.END_OF_DATA,
            "554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException",
            C,
            SENDER,
        ),  # fmt: skip
        # ... unless MAIL refused something about the message itself.
        (Stage.MAIL, "552 5.3.4 Message size exceeds fixed maximum message size", P, None),
        (Stage.MAIL, "553 5.6.7 SMTPUTF8 required for this address", P, None),
        (Stage.MAIL, "555 5.5.4 Unsupported option: SMTPUTF8", P, None),
        # Not an SMTP code.
        (Stage.MAIL, "999 what", T, None),
        (Stage.MAIL, "25 short", T, None),
    ],
)
def test_classification_table(
    stage: Stage, line: str, classification: Classification, pause: PauseScope | None
) -> None:
    verdict = classify_reply(stage, reply(line))
    assert verdict.classification is classification
    assert verdict.pause_scope is pause
    assert verdict.should_pause is (pause is not None)


@pytest.mark.parametrize(
    ("line", "throttling"),
    [
        ("421 4.7.0 Try again later, closing connection", True),
        ("421 Service not available", True),
        ("451 4.7.1 Rate limit exceeded, try again later", True),
        ("454 4.7.0 Too many login attempts, please try again later", True),
        ("451 4.7.500 Server busy. Please try again later", True),
        ("452 4.4.5 Insufficient system resources", True),  # RFC 3463: system congestion
        ("450 Too many connections from your host", True),
        ("451 4.3.2 System not accepting network messages", True),
        # One recipient's business, not our pace:
        ("450 4.2.1 The user is receiving mail at a rate that prevents additional messages", False),
        ("450 4.2.0 Greylisted, see http://postgrey.schweikert.ch/", False),
        ("451 4.7.1 <tempfail@x>: Recipient address rejected: try again", False),
        ("452 4.2.2 Mailbox full", False),
        ("550 5.7.1 Too many recipients on this server today", False),  # 5xx: not a pace
    ],
)
def test_throttling_replies(line: str, throttling: bool) -> None:
    assert is_throttling(reply(line)) is throttling


def test_a_throttling_reply_says_so_in_its_verdict() -> None:
    verdict = classify_reply(Stage.END_OF_DATA, reply("451 4.7.1 Rate limit exceeded"))
    assert verdict.classification is T and verdict.is_throttling
    assert not classify_reply(Stage.RCPT, reply("450 4.2.0 Greylisted")).is_throttling


@pytest.mark.parametrize(
    ("line", "too_many"),
    [
        ("452 4.5.3 Error: too many recipients", True),
        ("452 Too many recipients", True),  # RFC 5321 §4.5.3.1.10: 452 is the code for it
        ("552 5.5.3 Too many recipients", True),  # the legacy code, treated as temporary
        ("552 Too many recipients for this message", True),
        ("452 4.2.2 Mailbox full", False),
        ("452 4.3.1 Insufficient system storage", False),
        ("552 5.2.2 Mailbox full", False),
        ("550 5.1.1 User unknown", False),
    ],
)
def test_too_many_recipients(line: str, too_many: bool) -> None:
    parsed = reply(line)
    assert is_too_many_recipients(parsed) is too_many
    verdict = classify_reply(Stage.RCPT, parsed)
    assert verdict.is_too_many_recipients is too_many
    if too_many:
        assert verdict.classification is T  # never a permanent failure


@pytest.mark.parametrize(
    ("code", "message", "enhanced", "text"),
    [
        (250, "2.1.5 Ok", "2.1.5", "Ok"),
        (
            550,
            "5.7.60 SMTP; Client does not have permissions",
            "5.7.60",
            "SMTP; Client does not have permissions",
        ),  # fmt: skip
        (250, "Ok", "", "Ok"),
        (550, "4.2.0 mismatched class", "", "4.2.0 mismatched class"),  # RFC 2034 §4
        (250, "2.0.0", "2.0.0", ""),
        (250, "2.0.0Ok", "", "2.0.0Ok"),
        (451, "4.7.1 line one\n4.7.1 line two", "4.7.1", "line one\n4.7.1 line two"),
    ],
)
def test_enhanced_status_codes_are_split_off(
    code: int, message: str, enhanced: str, text: str
) -> None:
    assert split_enhanced_status(code, message) == (enhanced, text)


@pytest.mark.parametrize(
    ("failure", "is_final_dot_sent", "classification", "pause"),
    [
        (Failure.REFUSED, False, T, None),
        (Failure.TIMEOUT, False, T, None),
        (Failure.DISCONNECTED, False, T, None),
        (Failure.GARBAGE, False, T, None),
        (Failure.TIMEOUT, True, U, None),
        (Failure.DISCONNECTED, True, U, None),
        (Failure.GARBAGE, True, U, None),
        (Failure.TLS_CERTIFICATE, False, C, SERVER),
        (Failure.TLS_HANDSHAKE, False, C, SERVER),
    ],
)
def test_no_reply(
    failure: Failure,
    is_final_dot_sent: bool,
    classification: Classification,
    pause: PauseScope | None,
) -> None:
    verdict = classify_missing_reply(failure, is_final_dot_sent=is_final_dot_sent)
    assert verdict.classification is classification
    assert verdict.pause_scope is pause


def test_out_of_step_replies() -> None:
    assert is_out_of_step(Stage.DATA, reply("250 Ok"))
    assert is_out_of_step(Stage.RCPT, reply("354 go ahead"))
    assert not is_out_of_step(Stage.DATA, reply("354 go ahead"))
    assert not is_out_of_step(Stage.RCPT, reply("550 5.1.1 User unknown"))


def test_classifications_match_the_outbox_values() -> None:
    assert [c.value for c in Classification] == [
        "success", "temporary", "permanent", "uncertain", "config",
    ]  # fmt: skip


def test_a_reply_prints_like_the_server_said_it() -> None:
    assert str(reply("550 5.1.1 User unknown")) == "550 5.1.1 User unknown"
    assert str(Reply.missing("no reply to DATA within 5 s")) == "no reply to DATA within 5 s"


# --- One sentence for the Outbox: explain_failure -------------------------------------------


def test_a_refused_recipient_is_explained_by_the_reply_table() -> None:
    explained = explain_failure(
        stage="rcpt",
        classification="permanent",
        code=550,
        enhanced="5.1.1",
        text="<nobody@example.org>: Recipient address rejected: User unknown",
        recipient="nobody@example.org",
    )
    assert explained.code == "recipient_unknown"
    assert explained.sentence == (
        "The recipient nobody@example.org does not exist (550 5.1.1 <nobody@example.org>: "
        "Recipient address rejected: User unknown). Check the address for typos and try "
        "another one."
    )


def test_a_refused_sender_names_the_sender_and_the_login() -> None:
    explained = explain_failure(
        stage="mail",
        classification="config",
        code=553,
        enhanced="5.7.1",
        text="<bob@example.com>: Sender address rejected: not owned by user mailer",
        sender="bob@example.com",
        recipient="carol@example.org",
        login="mailer",
    )
    assert explained.code == "sender_not_allowed"
    assert "does not let the login 'mailer' send as bob@example.com" in explained.summary
    assert "Send As" in explained.advice


def test_an_uncertain_delivery_says_the_server_may_have_it_and_what_postroom_does() -> None:
    explained = explain_failure(
        stage="end_of_data",
        classification="uncertain",
        code=None,
        text="no reply after the end of the message within 600 s",
    )
    assert explained.code == "uncertain"
    assert explained.summary.startswith("No reply after the end of the message within 600 s.")
    assert "the server may have it" in explained.summary
    assert "same Message-ID" in explained.advice


def test_a_pause_without_a_reply_points_at_check_connection_and_resume() -> None:
    explained = explain_failure(
        stage="starttls",
        classification="config",
        code=None,
        text="TLS certificate not accepted: Hostname mismatch",
    )
    assert explained.code == "settings"
    assert explained.summary == "TLS certificate not accepted: Hostname mismatch."
    assert "Check connection" in explained.advice and "Resume sending" in explained.advice


def test_a_deferral_without_a_reply_says_postroom_tries_again() -> None:
    explained = explain_failure(
        stage="tls",  # a stage name no Stage has: still explained
        classification="temporary",
        code=None,
        text="connection refused: Connection refused",
    )
    assert explained.code == "no_reply"
    assert explained.summary == "Connection refused: Connection refused."
    assert "tries again later" in explained.advice


@pytest.mark.parametrize(
    ("stage", "line", "advice_code"),
    [
        (Stage.AUTH, "535 5.7.8 Error: authentication failed", "wrong_password"),
        (Stage.MAIL, "530 5.7.0 Must issue a STARTTLS command first", "encryption_required"),
        (Stage.RCPT, "554 5.7.1 <x@elsewhere.test>: Relay access denied", "relay_denied"),
        (Stage.MAIL, "553 5.6.7 SMTPUTF8 required for this address", "smtputf8_missing"),
        (
            Stage.END_OF_DATA,
            "550 5.7.60 SMTP; Client does not have permissions",
            "sender_not_allowed",
        ),
        (Stage.RCPT, "452 4.5.3 Error: too many recipients", "too_many_recipients"),
        (Stage.DATA, "250 2.0.0 Ok", "out_of_step"),
        (Stage.MAIL, "999 what", "not_smtp"),
    ],
)
def test_one_row_gives_the_verdict_and_the_advice(
    stage: Stage, line: str, advice_code: str
) -> None:
    parsed = reply(line)
    rule = reply_rule(stage, parsed)
    assert diagnose_reply(stage, parsed).code == advice_code
    if parsed.reply_class is not ReplyClass.TRANSIENT_NEGATIVE:
        assert classify_reply(stage, parsed) == rule.verdict
