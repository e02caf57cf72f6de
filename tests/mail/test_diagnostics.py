"""The connection check against real SMTP servers: scripted aiosmtpd on 127.0.0.1.

Each diagnosis the Company page and `postroom doctor` can give is provoked here for real:
the server refuses, stays silent, shows the wrong certificate, answers 535 or 5.7.139.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest

from postroom.mail.config import SmtpServerConfig, Timeouts, TlsPolicy
from postroom.mail.diagnostics import CheckReport, StepStatus, check_connection, send_test_email
from tests.support.certs import CertAuthority, IssuedCert
from tests.support.smtpd import ScriptedSmtpServer, closed_port

Start = Callable[..., ScriptedSmtpServer]

LOGIN = "mailer@example.com"
PASSWORD = "Quiet-Relay-Secret-7f3a9c"
USERS = {LOGIN: PASSWORD}
# Loopback answers in milliseconds; short timeouts keep the silent-server tests quick.
FAST = Timeouts(connect=1, command=5, data=5)
MUST_STARTTLS = "530 5.7.0 Must issue a STARTTLS command first"


@pytest.fixture(scope="module")
def cert(test_ca: CertAuthority) -> IssuedCert:
    return test_ca.issue(stem="diagnostics")


def config_for(
    server: ScriptedSmtpServer,
    ca: CertAuthority | None,
    *,
    tls: TlsPolicy = TlsPolicy.STARTTLS_REQUIRED,
    **changes: Any,
) -> SmtpServerConfig:
    config = SmtpServerConfig(
        host="127.0.0.1",
        port=server.port,
        tls=tls,
        login=LOGIN,
        password=PASSWORD,
        ca_pem=ca.pem if ca else "",
        timeouts=FAST,
    )
    return dataclasses.replace(config, **changes)


def check(config: SmtpServerConfig, senders: list[str] | None = None, **kwargs: Any) -> CheckReport:
    report = asyncio.run(check_connection(config, senders=senders or [LOGIN], **kwargs))
    assert_password_never_shown(report)
    return report


def assert_password_never_shown(report: CheckReport) -> None:
    text = report.transcript() + json.dumps(report.as_dict())
    assert PASSWORD not in text
    assert base64.b64encode(f"\0{LOGIN}\0{PASSWORD}".encode()).decode() not in text
    assert base64.b64encode(PASSWORD.encode()).decode() not in text


def statuses(report: CheckReport) -> list[tuple[str, str]]:
    return [(step.key, step.status.value) for step in report.steps]


def failed(report: CheckReport) -> Any:
    steps = [step for step in report.steps if step.status is StepStatus.FAIL]
    assert steps, report.transcript()
    return steps[0]


# --- Everything works -----------------------------------------------------------------------


def test_starttls_auth_and_senders_pass_step_by_step(
    scripted_smtpd: Start, cert: IssuedCert, test_ca: CertAuthority
) -> None:
    server = scripted_smtpd(cert=cert, users=USERS, require_tls_reply=MUST_STARTTLS)
    report = check(config_for(server, test_ca), senders=[LOGIN, "Alice@example.com", LOGIN])

    assert report.is_ok, report.transcript()
    assert statuses(report) == [
        ("dns", "ok"),
        ("tcp", "ok"),
        ("greeting", "ok"),
        ("ehlo", "ok"),
        ("starttls", "ok"),
        ("certificate", "ok"),
        ("ehlo_tls", "ok"),
        ("auth", "ok"),
        ("mail_from", "ok"),
        ("mail_from", "ok"),
    ]
    assert [step.name for step in report.steps_for("mail_from")] == [
        f"MAIL FROM {LOGIN}",
        "MAIL FROM Alice@example.com",
    ]
    assert report.step("greeting").summary == "220 mx.postroom.test ESMTP Postroom test server"
    ehlo = report.step("ehlo")
    assert "STARTTLS" in ehlo.summary and "PIPELINING" in ehlo.summary
    assert "SIZE: 33554432 bytes" in ehlo.details
    assert "AUTH: not offered" in ehlo.details  # only after TLS, as it should be
    assert "AUTH: LOGIN PLAIN" in report.step("ehlo_tls").details
    assert "SMTPUTF8: yes" in ehlo.details and "8BITMIME: yes" in ehlo.details
    assert report.step("starttls").summary.startswith("Encrypted with TLSv1.")
    certificate = report.step("certificate")
    assert "issued for localhost, 127.0.0.1 by Postroom Test CA" in certificate.summary
    assert any(line.startswith("Issuer: CN=Postroom Test CA") for line in certificate.details)
    assert report.step("auth").summary == f"Logged in as {LOGIN} with PLAIN (encrypted)."
    # Nothing was sent: MAIL FROM and RSET, never RCPT or DATA; nothing before TLS but EHLO.
    assert server.verbs() == [
        "EHLO",
        "STARTTLS",
        "EHLO",
        "AUTH",
        "MAIL",
        "RSET",
        "MAIL",
        "RSET",
        "QUIT",
    ]
    assert not server.has_mail_before_tls
    assert server.messages == []


def test_implicit_tls_sends_a_test_email_and_reports_the_queue_id(
    scripted_smtpd: Start, cert: IssuedCert, test_ca: CertAuthority
) -> None:
    server = scripted_smtpd(cert=cert, implicit_tls=True, users=USERS)
    report = check(
        config_for(server, test_ca, tls=TlsPolicy.IMPLICIT), test_recipient="bob@example.org"
    )

    assert report.is_ok, report.transcript()
    assert [key for key, _ in statuses(report)] == [
        "dns",
        "tcp",
        "tls",
        "certificate",
        "greeting",
        "ehlo",
        "auth",
        "mail_from",
        "test_email",
    ]
    [message] = server.wait_for_messages(1)
    assert message.is_tls and message.login == LOGIN
    assert message.mail_from == LOGIN and message.rcpt_tos == ("bob@example.org",)
    assert b"Subject: Postroom test email" in message.content
    test_email = report.step("test_email")
    assert test_email.summary == (
        f"The server accepted the test email for bob@example.org: 250 2.0.0 Ok: queued as "
        f"{message.queue_id}"
    )
    assert f"Queue id: {message.queue_id}" in test_email.details


def test_send_test_email_checks_only_the_company_sender(
    scripted_smtpd: Start, cert: IssuedCert, test_ca: CertAuthority
) -> None:
    server = scripted_smtpd(cert=cert, users=USERS)
    report = asyncio.run(
        send_test_email(config_for(server, test_ca), sender=LOGIN, recipient="bob@example.org")
    )
    assert report.is_ok, report.transcript()
    assert len(report.steps_for("mail_from")) == 1
    assert server.wait_for_messages(1)[0].rcpt_tos == ("bob@example.org",)


def test_the_chosen_auth_method_is_the_one_used(
    scripted_smtpd: Start, cert: IssuedCert, test_ca: CertAuthority
) -> None:
    server = scripted_smtpd(cert=cert, users=USERS)
    report = check(config_for(server, test_ca, auth_method="LOGIN"))
    assert report.is_ok, report.transcript()
    assert [attempt.mechanism for attempt in server.auth_attempts] == ["LOGIN"]


def test_a_chosen_auth_method_the_server_lacks_is_named(
    scripted_smtpd: Start, cert: IssuedCert, test_ca: CertAuthority
) -> None:
    server = scripted_smtpd(cert=cert, users=USERS, auth_mechanisms=("PLAIN",))
    report = check(config_for(server, test_ca, auth_method="LOGIN"))
    assert failed(report).code == "auth_method_not_offered"
    assert server.auth_attempts == []


def test_a_non_ascii_sender_uses_smtputf8(
    scripted_smtpd: Start, cert: IssuedCert, test_ca: CertAuthority
) -> None:
    server = scripted_smtpd(cert=cert, users=USERS)
    report = check(config_for(server, test_ca), senders=["jörg@example.com"])
    assert report.is_ok, report.transcript()
    assert any(c.verb == "MAIL" and "SMTPUTF8" in c.argument for c in server.commands)


# --- Before SMTP: DNS, TCP ------------------------------------------------------------------


def test_nothing_listening_is_connection_refused() -> None:
    with closed_port() as port:
        config = SmtpServerConfig(
            host="127.0.0.1", port=port, tls=TlsPolicy.STARTTLS_REQUIRED, timeouts=FAST
        )
        report = check(config, test_recipient="bob@example.org")
    step = failed(report)
    assert (step.key, step.code) == ("tcp", "connection_refused")
    assert f"port {port}" in step.summary
    assert "firewall" in step.advice
    assert statuses(report)[-2:] == [("mail_from", "skip"), ("test_email", "skip")]


def test_an_unknown_host_is_a_dns_failure() -> None:
    config = SmtpServerConfig(
        host="smtp.postroom-test.invalid", port=587, tls=TlsPolicy.STARTTLS_REQUIRED, timeouts=FAST
    )
    report = check(config)
    step = failed(report)
    assert step.key == "dns"
    assert step.code in ("dns_failed", "dns_unavailable")
    assert "smtp.postroom-test.invalid" in step.summary


def test_a_server_that_never_greets_times_out(scripted_smtpd: Start) -> None:
    server = scripted_smtpd(silent=True)
    report = check(config_for(server, None))
    step = failed(report)
    assert (step.key, step.code) == ("greeting", "greeting_timeout")
    assert "within 1 s" in step.summary


def test_a_refused_greeting_is_reported_with_the_servers_words(scripted_smtpd: Start) -> None:
    server = scripted_smtpd(greeting_reply="554 5.7.1 Service unavailable; client host blocked")
    report = check(config_for(server, None))
    step = failed(report)
    assert (step.key, step.code) == ("greeting", "greeting_refused")
    assert "554 5.7.1 Service unavailable" in step.summary


# --- The port and the TLS mode disagree -----------------------------------------------------


def test_implicit_tls_against_a_starttls_port_is_wrong_version_number(
    scripted_smtpd: Start, cert: IssuedCert, test_ca: CertAuthority
) -> None:
    server = scripted_smtpd(cert=cert, users=USERS)  # speaks plain SMTP first, like 587
    report = check(config_for(server, test_ca, tls=TlsPolicy.IMPLICIT))
    step = failed(report)
    assert (step.key, step.code) == ("tls", "tls_on_plain_port")
    assert "WRONG_VERSION_NUMBER" in step.summary
    assert '"220 mx.postroom.test ESMTP Postroom test server"' in step.summary
    assert "465" in step.advice and "587" in step.advice
    assert server.auth_attempts == [] and not server.has_envelope


def test_starttls_against_an_implicit_tls_port_says_use_implicit_tls(
    scripted_smtpd: Start, cert: IssuedCert, test_ca: CertAuthority
) -> None:
    server = scripted_smtpd(cert=cert, implicit_tls=True, users=USERS)  # like 465
    report = check(config_for(server, test_ca, tls=TlsPolicy.STARTTLS_REQUIRED))
    step = failed(report)
    assert (step.key, step.code) == ("greeting", "plain_on_tls_port")
    assert "Implicit TLS" in step.advice and "465" in step.advice
    assert server.commands == []


# --- Certificates ---------------------------------------------------------------------------


def test_a_certificate_for_another_host_name_is_refused_and_shown(
    scripted_smtpd: Start, test_ca: CertAuthority
) -> None:
    other = test_ca.issue(("mail.example.net",), stem="other-host")
    server = scripted_smtpd(cert=other, users=USERS)
    report = check(config_for(server, test_ca))
    step = failed(report)
    assert (step.key, step.code) == ("starttls", "certificate_wrong_host")
    assert step.summary == "The server's certificate is issued for mail.example.net, not 127.0.0.1."
    assert "Names: mail.example.net" in step.details
    assert server.auth_attempts == [] and not server.has_envelope


def test_a_certificate_for_another_host_name_fails_with_implicit_tls_too(
    scripted_smtpd: Start, test_ca: CertAuthority
) -> None:
    other = test_ca.issue(("mail.example.net",), stem="other-host-465")
    server = scripted_smtpd(cert=other, implicit_tls=True, users=USERS)
    report = check(config_for(server, test_ca, tls=TlsPolicy.IMPLICIT, host="localhost"))
    step = failed(report)
    assert (step.key, step.code) == ("tls", "certificate_wrong_host")
    assert "issued for mail.example.net, not localhost" in step.summary


def test_an_unknown_ca_is_refused_until_it_is_added_under_advanced(
    scripted_smtpd: Start, cert: IssuedCert, test_ca: CertAuthority
) -> None:
    server = scripted_smtpd(cert=cert, users=USERS)
    refused = check(config_for(server, None))
    step = failed(refused)
    assert (step.key, step.code) == ("starttls", "certificate_untrusted")
    assert "signed by Postroom Test CA" in step.summary
    assert "Advanced → Custom CA certificate" in step.advice
    assert server.auth_attempts == []

    accepted = check(config_for(server, test_ca))
    assert accepted.is_ok, accepted.transcript()
    assert "plus the custom CA" in " ".join(accepted.step("certificate").details)


def test_an_expired_certificate_gives_its_date(
    scripted_smtpd: Start, test_ca: CertAuthority
) -> None:
    expired = test_ca.issue(stem="expired", expired=True)
    server = scripted_smtpd(cert=expired, implicit_tls=True, users=USERS)
    report = check(config_for(server, test_ca, tls=TlsPolicy.IMPLICIT))
    step = failed(report)
    assert (step.key, step.code) == ("tls", "certificate_expired")
    assert step.summary.startswith("The server's certificate expired on 20")
    assert server.auth_attempts == []


def test_a_custom_ca_that_is_not_pem_stops_before_connecting(scripted_smtpd: Start) -> None:
    server = scripted_smtpd()
    report = check(config_for(server, None, ca_pem="-----BEGIN CERTIFICATE-----\nnope\n"))
    step = failed(report)
    assert (step.key, step.code) == ("tls_settings", "custom_ca_invalid")
    assert server.sessions == 0


# --- TLS required: never plain text ---------------------------------------------------------


def test_required_starttls_not_offered_stops_before_anything_is_sent(scripted_smtpd: Start) -> None:
    server = scripted_smtpd(users=USERS, auth_before_tls=True)  # no cert: no STARTTLS
    report = check(config_for(server, None), test_recipient="bob@example.org")
    step = failed(report)
    assert (step.key, step.code) == ("starttls", "starttls_not_offered")
    assert "stopped before logging in or sending" in step.summary
    assert server.verbs() == ["EHLO", "QUIT"]
    assert server.auth_attempts == [] and not server.has_envelope
    assert statuses(report)[-2:] == [("mail_from", "skip"), ("test_email", "skip")]


def test_required_starttls_answered_454_stops_before_anything_is_sent(
    scripted_smtpd: Start, cert: IssuedCert, test_ca: CertAuthority
) -> None:
    server = scripted_smtpd(
        cert=cert,
        users=USERS,
        auth_before_tls=True,
        starttls_reply="454 4.7.0 TLS not available due to local problem",
    )
    report = check(config_for(server, test_ca))
    step = failed(report)
    assert (step.key, step.code) == ("starttls", "starttls_refused")
    assert "454 4.7.0 TLS not available" in step.summary
    assert server.verbs() == ["EHLO", "STARTTLS", "QUIT"]
    assert server.auth_attempts == [] and not server.has_envelope


def test_optional_starttls_missing_warns_that_an_allowed_password_travels_unencrypted(
    scripted_smtpd: Start,
) -> None:
    server = scripted_smtpd(users=USERS, auth_before_tls=True)
    # Not allowed, the password is kept back: tests/mail/test_password_in_clear.py.
    report = check(
        config_for(server, None, tls=TlsPolicy.STARTTLS_OPPORTUNISTIC, allow_plaintext_auth=True)
    )
    assert report.is_ok and report.has_warnings
    step = report.step("starttls")
    assert (step.status, step.code) == (StepStatus.WARN, "starttls_not_offered_plaintext")
    assert "the password would travel unencrypted" in step.summary
    assert report.step("auth").summary.endswith("(unencrypted).")


def test_tls_mode_none_warns_when_the_server_offers_starttls(
    scripted_smtpd: Start, cert: IssuedCert
) -> None:
    server = scripted_smtpd(cert=cert)
    report = check(config_for(server, None, tls=TlsPolicy.NONE, login="", password=""))
    step = report.step("starttls")
    assert (step.status, step.code) == (StepStatus.WARN, "tls_off")
    assert "TLS mode to Automatic" in step.advice


def test_must_issue_starttls_first_says_to_require_encryption(
    scripted_smtpd: Start, cert: IssuedCert
) -> None:
    server = scripted_smtpd(cert=cert, require_tls_reply=MUST_STARTTLS)
    report = check(config_for(server, None, tls=TlsPolicy.NONE, login="", password=""))
    step = failed(report)
    assert (step.key, step.code) == ("mail_from", "encryption_required")
    assert MUST_STARTTLS in step.summary
    assert "Secure Connection Required to Y" in step.advice


# --- AUTH -----------------------------------------------------------------------------------


def test_a_wrong_password_is_535_and_the_password_is_never_shown(
    scripted_smtpd: Start, cert: IssuedCert, test_ca: CertAuthority
) -> None:
    server = scripted_smtpd(cert=cert, users={LOGIN: "the-right-one"})
    report = check(config_for(server, test_ca), test_recipient="bob@example.org")
    step = failed(report)
    assert (step.key, step.code) == ("auth", "wrong_password")
    assert "535 5.7.8" in step.summary
    assert [a.is_success for a in server.auth_attempts] == [False]
    assert not server.has_envelope


@pytest.mark.parametrize(
    "reply",
    [
        "535 5.7.139 Authentication unsuccessful, basic authentication is disabled.",
        "535 5.7.3 Authentication unsuccessful",
        "530 5.7.30 Basic authentication is not supported for Client Submission.",
    ],
)
def test_microsoft_basic_auth_disabled_is_recognised(
    scripted_smtpd: Start, cert: IssuedCert, test_ca: CertAuthority, reply: str
) -> None:
    server = scripted_smtpd(cert=cert, users=USERS, auth_reply=reply)
    report = check(config_for(server, test_ca))
    step = failed(report)
    assert (step.key, step.code) == ("auth", "basic_auth_disabled")
    assert reply in step.summary
    assert "Authenticated SMTP" in step.advice


def test_auth_not_offered_with_a_login_set(
    scripted_smtpd: Start, cert: IssuedCert, test_ca: CertAuthority
) -> None:
    server = scripted_smtpd(cert=cert, offer_auth=False)
    report = check(config_for(server, test_ca))
    step = failed(report)
    assert (step.key, step.code) == ("auth", "auth_not_offered")
    assert "clear the SMTP Authentication Login" in step.advice


def test_no_login_and_a_server_that_wants_one(
    scripted_smtpd: Start, cert: IssuedCert, test_ca: CertAuthority
) -> None:
    server = scripted_smtpd(cert=cert, require_auth_reply="530 5.7.0 Authentication required")
    report = check(config_for(server, test_ca, login="", password=""))
    assert report.step("auth").status is StepStatus.SKIP
    step = failed(report)
    assert (step.key, step.code) == ("mail_from", "auth_required")


# --- Senders and the test email -------------------------------------------------------------


@pytest.mark.parametrize(
    "refusal",
    [
        "553 5.7.1 <bob@example.com>: Sender address rejected: not owned by user "
        "mailer@example.com",
        "550 5.7.60 SMTP; Client does not have permissions to send as this sender",
    ],
)
def test_each_sender_gets_its_own_line_and_a_refused_one_is_explained(
    scripted_smtpd: Start, cert: IssuedCert, test_ca: CertAuthority, refusal: str
) -> None:
    server = scripted_smtpd(cert=cert, users=USERS, sender_replies={"bob@example.com": refusal})
    report = check(
        config_for(server, test_ca), senders=[LOGIN, "bob@example.com", "carol@example.com"]
    )
    lines = report.steps_for("mail_from")
    assert [(s.name, s.status.value) for s in lines] == [
        (f"MAIL FROM {LOGIN}", "ok"),
        ("MAIL FROM bob@example.com", "fail"),
        ("MAIL FROM carol@example.com", "ok"),
    ]
    assert lines[1].code == "sender_not_allowed"
    assert refusal in lines[1].summary
    assert f"the login '{LOGIN}' send as bob@example.com" in lines[1].summary
    assert server.messages == []


def test_relay_denied_at_rcpt_of_the_test_email(
    scripted_smtpd: Start, cert: IssuedCert, test_ca: CertAuthority
) -> None:
    server = scripted_smtpd(
        cert=cert, users=USERS, default_recipient_reply="554 5.7.1 <{address}>: Relay access denied"
    )
    report = check(config_for(server, test_ca), test_recipient="bob@elsewhere.example")
    step = failed(report)
    assert (step.key, step.code) == ("test_email", "relay_denied")
    assert "554 5.7.1 <bob@elsewhere.example>: Relay access denied" in step.summary
    assert f"MAIL FROM:<{LOGIN}> → 250 2.1.0 Ok" in step.details
    assert server.messages == []


def test_a_message_refused_at_data_is_reported(
    scripted_smtpd: Start, cert: IssuedCert, test_ca: CertAuthority
) -> None:
    server = scripted_smtpd(cert=cert, users=USERS, data_reply="554 5.7.1 Message rejected as spam")
    report = check(config_for(server, test_ca), test_recipient="bob@example.org")
    step = failed(report)
    assert (step.key, step.code) == ("test_email", "message_rejected")
    assert "554 5.7.1 Message rejected as spam" in step.summary


def test_no_senders_is_a_warning_not_a_crash(
    scripted_smtpd: Start, cert: IssuedCert, test_ca: CertAuthority
) -> None:
    server = scripted_smtpd(cert=cert, users=USERS)
    report = asyncio.run(check_connection(config_for(server, test_ca), senders=[]))
    step = report.step("mail_from")
    assert (step.status, step.code) == (StepStatus.WARN, "no_senders")
    assert report.is_ok
