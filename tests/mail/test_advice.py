"""The mapping from what went wrong to plain words: pure functions, no sockets."""

from __future__ import annotations

import datetime as dt
import errno
import socket
import ssl

import pytest

from postroom.mail import advice, tls_advice
from postroom.mail.advice import Diagnosis
from postroom.mail.check_report import reply_text
from postroom.mail.classify import diagnose_reply
from postroom.mail.replies import Reply, Stage, split_enhanced_status
from postroom.mail.tls import CertificateInfo

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def cert(
    *,
    names: tuple[str, ...] = ("mail.example.net",),
    issuer: str = "Example Internal CA",
    not_after: dt.datetime = NOW + dt.timedelta(days=90),
    self_signed: bool = False,
) -> CertificateInfo:
    subject = f"CN={names[0]}"
    return CertificateInfo(
        subject=subject,
        common_name=names[0],
        names=names,
        issuer=subject if self_signed else f"CN={issuer}",
        issuer_common_name=names[0] if self_signed else issuer,
        not_before=NOW - dt.timedelta(days=300),
        not_after=not_after,
        fingerprint_sha256="AA:BB",
    )


def verification_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, f"certificate verify failed: {message}")
    error.verify_code = code
    error.verify_message = message
    return error


# --- Replies --------------------------------------------------------------------------------


def diagnose(*, phase: str, code: int, message: str, **context: str) -> Diagnosis:
    """What the reply table (postroom.mail.classify) says of `code message` at `phase`."""
    return diagnose_reply(Stage(phase.lower()), Reply.parse(code, message), **context)


@pytest.mark.parametrize(
    ("phase", "code", "message"),
    [
        ("AUTH", 535, "5.7.139 Authentication unsuccessful, basic authentication is disabled."),
        (
            "AUTH",
            535,
            "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is "
            "disabled for the Tenant.",
        ),
        ("AUTH", 530, "5.7.30 Basic authentication is not supported for Client Submission."),
        ("MAIL", 550, "5.7.30 Basic authentication is not supported for Client Submission."),
        ("AUTH", 535, "5.7.3 Authentication unsuccessful"),
    ],
)
def test_microsoft_basic_auth_refusals_say_smtp_auth_is_disabled(
    phase: str, code: int, message: str
) -> None:
    diagnosis = diagnose(
        phase=phase, code=code, message=message, host="smtp.office365.com", login="a@contoso.com"
    )
    assert diagnosis.code == "basic_auth_disabled"
    assert "Authenticated SMTP" in diagnosis.advice
    assert "OAuth" in diagnosis.advice
    assert message.split()[0] in diagnosis.summary


def test_535_is_a_wrong_password_with_the_reply_quoted() -> None:
    diagnosis = diagnose(
        phase="AUTH",
        code=535,
        message="5.7.8 Error: authentication failed: bad credentials",
        host="mail.example.com",
        login="mailer@example.com",
    )
    assert diagnosis.code == "wrong_password"
    assert "'mailer@example.com'" in diagnosis.summary
    assert "535 5.7.8 Error: authentication failed" in diagnosis.summary
    assert "app password" not in diagnosis.advice


@pytest.mark.parametrize(
    ("host", "needle"),
    [
        ("smtp.gmail.com", "Google Account → Security → App passwords"),
        ("smtp.googlemail.com", "Google Account"),
        ("smtp.mail.yahoo.com", "Generate app password"),
        ("smtp.mail.me.com", "appleid.apple.com"),
    ],
)
def test_535_at_a_provider_that_needs_app_passwords_says_how_to_make_one(
    host: str, needle: str
) -> None:
    diagnosis = diagnose(
        phase="AUTH",
        code=535,
        message="5.7.8 Username and Password not accepted.",
        host=host,
        login="someone@example.com",
    )
    assert diagnosis.code == "wrong_password"
    assert needle in diagnosis.advice


def test_535_at_microsoft_mentions_authenticated_smtp() -> None:
    diagnosis = diagnose(
        phase="AUTH", code=535, message="5.7.8 bad", login="x", host="smtp.office365.com"
    )
    assert "Authenticated SMTP" in diagnosis.advice


def test_a_host_merely_containing_a_provider_name_is_not_that_provider() -> None:
    assert advice.app_password_advice("gmail.com.evil.example") is None
    assert advice.app_password_advice("notgmail.com") is None
    assert advice.app_password_advice("smtp.gmail.com") is not None


def test_gmail_534_5_7_9_asks_for_an_app_password() -> None:
    diagnosis = diagnose(
        phase="AUTH",
        code=534,
        host="smtp.gmail.com",
        login="a@gmail.com",
        message="5.7.9 Application-specific password required. Learn more at ...",
    )
    assert diagnosis.code == "app_password_required"
    assert "2-Step Verification" in diagnosis.advice


@pytest.mark.parametrize("phase", ["AUTH", "MAIL"])
def test_530_must_issue_starttls_first_says_to_require_encryption(phase: str) -> None:
    diagnosis = diagnose(
        phase=phase, code=530, host="h", message="5.7.0 Must issue a STARTTLS command first"
    )
    assert diagnosis.code == "encryption_required"
    assert "Secure Connection Required to Y" in diagnosis.advice


def test_530_authentication_required_at_mail_asks_for_a_login() -> None:
    diagnosis = diagnose(phase="MAIL", code=530, host="h", message="5.7.0 Authentication required")
    assert diagnosis.code == "auth_required"
    assert "SMTP Authentication Login and Password" in diagnosis.advice


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (553, "5.7.1 <bob@example.com>: Sender address rejected: not owned by user mailer"),
        (550, "5.7.60 SMTP; Client does not have permissions to send as this sender"),
        (550, "5.7.1 Sender address rejected: not owned by user mailer"),
        (553, "Sorry, that domain isn't in my list of allowed rcpthosts"),
    ],
)
def test_mail_from_refusals_say_the_login_may_not_send_as_that_address(
    code: int, message: str
) -> None:
    diagnosis = diagnose(
        phase="MAIL",
        code=code,
        message=message,
        host="h",
        login="mailer@example.com",
        address="bob@example.com",
    )
    assert diagnosis.code == "sender_not_allowed"
    assert "'mailer@example.com'" in diagnosis.summary
    assert "bob@example.com" in diagnosis.summary
    assert "Send As" in diagnosis.advice


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (554, "5.7.1 <x@elsewhere.example>: Relay access denied"),
        (550, "5.7.54 SMTP; Unable to relay recipient in non-accepted domain"),
        (550, "5.7.1 Relaying denied"),
    ],
)
def test_rcpt_relay_refusals_say_the_server_does_not_relay(code: int, message: str) -> None:
    diagnosis = diagnose(
        phase="RCPT", code=code, message=message, host="h", address="x@elsewhere.example"
    )
    assert diagnosis.code == "relay_denied"
    assert "x@elsewhere.example" in diagnosis.summary
    assert "Login and Password" in diagnosis.advice


def test_unknown_recipient_is_not_a_relay_problem() -> None:
    diagnosis = diagnose(
        phase="RCPT",
        code=550,
        host="h",
        address="nobody@x",
        message="5.1.1 <nobody@x>: Recipient address rejected: User unknown",
    )
    assert diagnosis.code == "recipient_unknown"


def test_a_4xx_reply_is_temporary() -> None:
    diagnosis = diagnose(phase="RCPT", code=451, host="h", message="4.7.1 Try again later")
    assert diagnosis.code == "temporary_failure"
    assert "Try again" in diagnosis.advice


def test_a_refused_greeting_says_the_server_refuses_this_machine() -> None:
    diagnosis = diagnose(
        phase="GREETING",
        code=554,
        host="h",
        message="5.7.1 Service unavailable; client host blocked",
    )
    assert diagnosis.code == "greeting_refused"


def test_an_unknown_refusal_still_quotes_the_server() -> None:
    diagnosis = diagnose(phase="MAIL", code=555, host="h", message="Odd things")
    assert diagnosis.code == "refused"
    assert "555 Odd things" in diagnosis.summary


def test_enhanced_status_is_read_from_the_start_of_the_text() -> None:
    assert split_enhanced_status(535, "5.7.139 Authentication unsuccessful")[0] == "5.7.139"
    assert split_enhanced_status(535, "Authentication 5.7.8 unsuccessful")[0] == ""
    assert reply_text(250, "mx.example\nSIZE 10\nHELP") == "250 mx.example / SIZE 10 / HELP"


# --- Connection and TLS ---------------------------------------------------------------------


def test_refused_connection_names_port_and_firewall() -> None:
    diagnosis = advice.diagnose_connect_failure(
        host="smtp.example.com",
        port=2525,
        timeout=30,
        error=ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
    )
    assert diagnosis.code == "connection_refused"
    assert "port 2525" in diagnosis.summary
    assert "587" in diagnosis.advice and "465" in diagnosis.advice
    assert "firewall" in diagnosis.advice


def test_connect_timeout_suspects_a_firewall() -> None:
    diagnosis = advice.diagnose_connect_failure(host="h", port=25, timeout=30, error=TimeoutError())
    assert diagnosis.code == "connect_timeout"
    assert "30 s" in diagnosis.summary
    assert "firewall" in diagnosis.advice


def test_dns_failure_points_at_the_server_address() -> None:
    diagnosis = advice.diagnose_dns_failure(
        host="smtp.example.invalid", error=socket.gaierror(socket.EAI_NONAME, "Name unknown")
    )
    assert diagnosis.code == "dns_failed"
    assert "smtp.example.invalid" in diagnosis.summary
    assert "SMTP Server Address" in diagnosis.advice


def test_dns_without_an_answer_is_a_network_problem() -> None:
    diagnosis = advice.diagnose_dns_failure(
        host="h", error=socket.gaierror(socket.EAI_AGAIN, "Temporary failure")
    )
    assert diagnosis.code == "dns_unavailable"


def test_wrong_version_number_is_recognised_as_tls_against_plain_text() -> None:
    error = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    error.reason = "WRONG_VERSION_NUMBER"
    assert tls_advice.is_plain_text_tls_error(error)
    other = ssl.SSLError(1, "[SSL: SSLV3_ALERT_HANDSHAKE_FAILURE] handshake failure")
    other.reason = "SSLV3_ALERT_HANDSHAKE_FAILURE"
    assert not tls_advice.is_plain_text_tls_error(other)


def test_tls_on_a_plain_port_explains_465_and_587() -> None:
    diagnosis = tls_advice.diagnose_tls_on_plain_port(
        port=587, plain_greeting="220 mx.example ESMTP"
    )
    assert diagnosis.code == "tls_on_plain_port"
    assert "WRONG_VERSION_NUMBER" in diagnosis.summary
    assert "220 mx.example ESMTP" in diagnosis.summary
    assert "465" in diagnosis.advice and "587" in diagnosis.advice


def test_silence_from_a_port_that_speaks_tls_means_implicit_tls_is_needed() -> None:
    diagnosis = tls_advice.diagnose_greeting_timeout(port=465, timeout=30, speaks_implicit_tls=True)
    assert diagnosis.code == "plain_on_tls_port"
    assert "Implicit TLS" in diagnosis.advice
    generic = tls_advice.diagnose_greeting_timeout(port=2525, timeout=30, speaks_implicit_tls=False)
    assert generic.code == "greeting_timeout"
    assert "30 s" in generic.summary


def test_certificate_for_another_name_says_issued_for_x_not_y() -> None:
    diagnosis = tls_advice.diagnose_certificate(
        host="10.0.0.5",
        certificate=cert(names=("mail.example.net", "smtp.example.net")),
        error=verification_error(
            64, "IP address mismatch, certificate is not valid for '10.0.0.5'."
        ),
        now=NOW,
    )
    assert diagnosis.code == "certificate_wrong_host"
    assert diagnosis.summary == (
        "The server's certificate is issued for mail.example.net, smtp.example.net, not 10.0.0.5."
    )
    assert "mail.example.net" in diagnosis.advice


def test_certificate_from_an_unknown_ca_says_add_the_ca_under_advanced() -> None:
    diagnosis = tls_advice.diagnose_certificate(
        host="mail.example.net",
        certificate=cert(issuer="Acme Internal CA"),
        now=NOW,
        error=verification_error(20, "unable to get local issuer certificate"),
    )
    assert diagnosis.code == "certificate_untrusted"
    assert "Acme Internal CA" in diagnosis.summary
    assert "Advanced → Custom CA certificate" in diagnosis.advice


def test_an_untrusted_certificate_that_also_expired_says_both() -> None:
    diagnosis = tls_advice.diagnose_certificate(
        host="mail.example.net",
        now=NOW,
        certificate=cert(not_after=dt.datetime(2026, 3, 1, tzinfo=dt.UTC)),
        error=verification_error(20, "unable to get local issuer certificate"),
    )
    assert diagnosis.code == "certificate_untrusted"
    assert "It also expired on 2026-03-01." in diagnosis.summary


def test_self_signed_certificate_is_named_so() -> None:
    diagnosis = tls_advice.diagnose_certificate(
        host="mail.example.net",
        certificate=cert(self_signed=True),
        now=NOW,
        error=verification_error(18, "self-signed certificate"),
    )
    assert diagnosis.code == "certificate_untrusted"
    assert "self-signed" in diagnosis.summary


def test_expired_certificate_gives_the_date() -> None:
    diagnosis = tls_advice.diagnose_certificate(
        host="mail.example.net",
        now=NOW,
        certificate=cert(not_after=dt.datetime(2026, 5, 2, 12, tzinfo=dt.UTC)),
        error=verification_error(10, "certificate has expired"),
    )
    assert diagnosis.code == "certificate_expired"
    assert diagnosis.summary == "The server's certificate expired on 2026-05-02."


def test_starttls_missing_when_required_stops_and_says_so() -> None:
    diagnosis = advice.diagnose_starttls_not_offered(port=25, is_required=True, has_login=True)
    assert diagnosis.code == "starttls_not_offered"
    assert "stopped before logging in" in diagnosis.summary


def test_starttls_missing_when_optional_warns_about_the_password() -> None:
    diagnosis = advice.diagnose_starttls_not_offered(port=25, is_required=False, has_login=True)
    assert diagnosis.code == "starttls_not_offered_plaintext"
    assert "the password would travel unencrypted" in diagnosis.summary
    without_login = advice.diagnose_starttls_not_offered(
        port=25, is_required=False, has_login=False
    )
    assert "password" not in without_login.summary


def test_starttls_454_says_it_will_not_continue_in_plain_text() -> None:
    diagnosis = diagnose(phase="STARTTLS", code=454, message="4.7.0 TLS not available")
    assert diagnosis.code == "starttls_refused"
    assert "454 4.7.0 TLS not available" in diagnosis.summary
    assert "does not continue in plain text" in diagnosis.summary


def test_auth_not_offered_before_tls_suggests_turning_tls_on() -> None:
    diagnosis = advice.diagnose_auth_not_offered(is_encrypted=False, offers_starttls=True, port=587)
    assert diagnosis.code == "auth_needs_tls"
    plain = advice.diagnose_auth_not_offered(is_encrypted=True, offers_starttls=False, port=25)
    assert plain.code == "auth_not_offered"
    assert "587" in plain.advice


def test_auth_method_not_offered_names_what_the_server_offers() -> None:
    diagnosis = advice.diagnose_auth_mechanism(wanted="LOGIN", offered=["PLAIN", "XOAUTH2"])
    assert diagnosis.code == "auth_method_not_offered"
    assert "PLAIN XOAUTH2" in diagnosis.summary
    only_oauth = advice.diagnose_auth_mechanism(wanted="auto", offered=["XOAUTH2"])
    assert only_oauth.code == "auth_method_unsupported"
