"""The real Postfix relay fixture behaves like the servers Postroom meets in production.

Driven with the standard library's smtplib, so a failure here points at the fixture, not at
Postroom's own SMTP client.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

import pytest

from tests.support.relay import PostfixRelay

pytestmark = pytest.mark.relay

# smtplib's default is no timeout at all; a stuck fixture should fail the test, not hang it.
TIMEOUT = 10


def _message(sender: str, to: str, subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message.set_content("Hello from the relay fixture test.\n")
    return message


def _trusting(relay: PostfixRelay) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=relay.ca_path)


def test_starttls_and_auth_deliver_one_message_to_the_maildir(
    relay_mailbox: PostfixRelay,
) -> None:
    relay = relay_mailbox
    sender = relay.allowed_senders[0]
    with smtplib.SMTP(relay.host, relay.starttls_port, timeout=TIMEOUT) as client:
        client.starttls(context=_trusting(relay))
        client.login(relay.user, relay.password)
        client.send_message(_message(sender, "someone@example.net", "over starttls"))

    [delivered] = relay.wait_for(1)
    assert delivered["Subject"] == "over starttls"
    assert delivered["X-Original-To"] == "someone@example.net"
    # Postfix prepends the envelope: the message as sent follows unchanged.
    assert delivered["Return-Path"] == f"<{sender}>"
    assert "with ESMTPSA" in delivered["Received"]  # S = TLS, A = authenticated
    assert b"Hello from the relay fixture test." in relay.raw_messages()[0]


def test_the_certificate_verifies_for_the_name_localhost(relay_mailbox: PostfixRelay) -> None:
    relay = relay_mailbox
    with smtplib.SMTP("localhost", relay.starttls_port, timeout=TIMEOUT) as client:
        client.starttls(context=_trusting(relay))
        client.login(relay.user, relay.password)
        client.sendmail(relay.allowed_senders[0], ["x@example.net"], b"Subject: by name\r\n\r\n")
    assert relay.wait_for(1)[0]["Subject"] == "by name"


def test_implicit_tls_delivers(relay_mailbox: PostfixRelay) -> None:
    relay = relay_mailbox
    with smtplib.SMTP_SSL(
        relay.host, relay.smtps_port, context=_trusting(relay), timeout=TIMEOUT
    ) as client:
        client.login(relay.user, relay.password)
        client.send_message(_message(relay.allowed_senders[0], "a@example.org", "implicit"))
    assert [m["Subject"] for m in relay.wait_for(1)] == ["implicit"]


def test_plain_port_offers_no_tls_and_delivers_with_auth(relay_mailbox: PostfixRelay) -> None:
    relay = relay_mailbox
    with smtplib.SMTP(relay.host, relay.plain_port, timeout=TIMEOUT) as client:
        client.ehlo()
        assert not client.has_extn("starttls")
        assert client.has_extn("auth")
        client.login(relay.user, relay.password)
        client.send_message(_message(relay.allowed_senders[0], "b@example.org", "plain"))
    [delivered] = relay.wait_for(1)
    assert "with ESMTPA " in delivered["Received"]  # authenticated, no TLS


def test_wrong_password_is_refused_with_535(relay: PostfixRelay) -> None:
    with smtplib.SMTP(relay.host, relay.starttls_port, timeout=TIMEOUT) as client:
        client.starttls(context=_trusting(relay))
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            client.login(relay.user, relay.password + "-wrong")
    assert refused.value.smtp_code == 535


def test_without_auth_the_relay_refuses_at_rcpt_with_554(relay_mailbox: PostfixRelay) -> None:
    relay = relay_mailbox
    with smtplib.SMTP(relay.host, relay.starttls_port, timeout=TIMEOUT) as client:
        client.starttls(context=_trusting(relay))
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail(relay.allowed_senders[0], ["c@example.org"], b"Subject: x\r\n\r\nx\r\n")
    code, reply = refused.value.recipients["c@example.org"]
    assert code == 554
    assert b"Relay access denied" in reply
    assert relay.messages() == []


def test_magic_recipients_fail_alone_and_the_others_are_delivered(
    relay_mailbox: PostfixRelay,
) -> None:
    relay = relay_mailbox
    recipients = ["ok@example.net", "tempfail+later@example.net", "reject+never@example.org"]
    with smtplib.SMTP(relay.host, relay.starttls_port, timeout=TIMEOUT) as client:
        client.starttls(context=_trusting(relay))
        client.login(relay.user, relay.password)
        refused = client.sendmail(relay.allowed_senders[0], recipients, b"Subject: mix\r\n\r\n")

    assert refused["tempfail+later@example.net"][0] == 451
    assert refused["tempfail+later@example.net"][1].startswith(b"4.7.1")
    assert refused["reject+never@example.org"][0] == 550
    assert refused["reject+never@example.org"][1].startswith(b"5.1.1")
    assert [m["X-Original-To"] for m in relay.wait_for(1)] == ["ok@example.net"]


def test_sender_check_port_refuses_an_address_the_login_does_not_own(
    relay_mailbox: PostfixRelay,
) -> None:
    relay = relay_mailbox
    with smtplib.SMTP(relay.host, relay.sender_check_port, timeout=TIMEOUT) as client:
        client.starttls(context=_trusting(relay))
        client.login(relay.user, relay.password)
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail("intruder@example.com", ["d@example.org"], b"Subject: no\r\n\r\nx\r\n")
        assert refused.value.smtp_code == 553
        assert b"not owned by user" in refused.value.smtp_error
        client.rset()
        client.sendmail(relay.allowed_senders[0], ["d@example.org"], b"Subject: yes\r\n\r\nx\r\n")
    assert [m["Subject"] for m in relay.wait_for(1)] == ["yes"]


def test_submission_port_refuses_mail_before_starttls_and_hides_auth(
    relay: PostfixRelay,
) -> None:
    with smtplib.SMTP(relay.host, relay.starttls_port, timeout=TIMEOUT) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        assert not client.has_extn("auth")
        code, reply = client.mail(relay.allowed_senders[0])
    assert code == 530
    assert b"STARTTLS" in reply


def test_certificate_is_not_trusted_by_the_system_store(relay: PostfixRelay) -> None:
    with (
        smtplib.SMTP(relay.host, relay.starttls_port, timeout=TIMEOUT) as client,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        client.starttls(context=ssl.create_default_context())


def test_wait_for_times_out_with_the_postfix_log(relay_mailbox: PostfixRelay) -> None:
    timed_out = r"(?s)expected 1 message.*found 0.*Last lines of .*postfix/"
    with pytest.raises(AssertionError, match=timed_out):
        relay_mailbox.wait_for(1, timeout=0.2)


def test_repr_never_shows_the_password(relay: PostfixRelay) -> None:
    assert relay.password not in repr(relay)
