"""The SMTP listener with Python's smtplib: STARTTLS and AUTH, the bytes stored as received
under a Received line, and every refusal the issue names, each with its reply."""

from __future__ import annotations

import smtplib
import ssl

import pytest
from django.test import override_settings

from postroom.outbox.models import Lane, Message, MessageStatus, Source
from postroom.smtpd.server import SmtpListener
from tests.smtpd.conftest import HOST, Credentials, client_context, message, submission

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_message_sent_with_starttls_and_auth_is_in_the_outbox_as_received(
    listener: SmtpListener, make_credential: Credentials
) -> None:
    _, password = make_credential()
    data = message()
    with submission(listener.ports["starttls"], login=("erp", password)) as client:
        code, reply = client.mail("invoices@acme.example")
        client.rcpt("customer@example.org")
        code, reply = client.data(data)
    assert code == 250 and b"queued as" in reply
    stored = Message.objects.get()
    assert (stored.source, stored.status) == (Source.SMTP, MessageStatus.QUEUED)
    assert stored.lane == Lane.BULK  # a person's email overtakes machines' mail
    assert stored.source_detail == f"SMTP credential erp from {HOST}"
    raw = bytes(stored.raw)
    assert raw.startswith(b"Received: from erp.acme.example ([127.0.0.1])\r\n\tby ")
    assert b"with ESMTPSA id " in raw and b"(credential erp)" in raw
    assert raw.endswith(data)  # the bytes as they came, nothing re-serialised
    assert list(stored.recipients.values_list("address", flat=True)) == ["customer@example.org"]


def test_auth_before_starttls_and_mail_before_auth_are_refused(
    listener: SmtpListener, make_credential: Credentials
) -> None:
    _, password = make_credential()
    with smtplib.SMTP(HOST, listener.ports["starttls"], timeout=10) as client:
        client.ehlo("x")
        code, _ = client.docmd("AUTH", "PLAIN")
        assert code == 530  # STARTTLS first
    with submission(listener.ports["starttls"]) as client:
        code, reply = client.mail("invoices@acme.example")
    assert (code, reply) == (530, b"5.7.0 Authentication required: log in with an SMTP credential")


def test_a_wrong_password_is_refused(listener: SmtpListener, make_credential: Credentials) -> None:
    make_credential()
    with (
        submission(listener.ports["starttls"]) as client,
        pytest.raises(smtplib.SMTPAuthenticationError) as refused,
    ):
        client.login("erp", "not-the-password")
    assert refused.value.smtp_code == 535


def test_senders_the_credential_may_not_use_are_refused(
    listener: SmtpListener, make_credential: Credentials
) -> None:
    _, password = make_credential(senders=("invoices@acme.example",))
    with submission(listener.ports["starttls"], login=("erp", password)) as client:
        code, reply = client.mail("ceo@acme.example")
        assert code == 550 and b"not an address this SMTP credential may send as" in reply
        client.rset()
        client.mail("invoices@acme.example")
        client.rcpt("customer@example.org")
        # The envelope is allowed; the From inside is another mailbox, even behind a name.
        forged = message().replace(
            b"From: Acme Invoices <invoices@acme.example>",
            b'From: "invoices@acme.example" <ceo@acme.example>',
        )
        code, reply = client.data(forged)
    assert code == 550 and b"From <ceo@acme.example>" in reply
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    "payload",
    [
        b"Subject: x\r\n\r\nline\n.\nMAIL FROM:<ceo@acme.example>\r\n",  # <LF>.<LF> smuggling
        b"Subject: x\r\n\r\nline\r.\rmore\r\n",  # bare CR
        b"Subject: x\r\n\r\nline\r\n.\nRCPT TO:<x@example.org>\r\n",  # <CRLF>.<LF>
    ],
)
def test_smuggling_payloads_are_refused(
    listener: SmtpListener, make_credential: Credentials, payload: bytes
) -> None:
    _, password = make_credential()
    with submission(listener.ports["starttls"], login=("erp", password)) as client:
        client.mail("invoices@acme.example")
        client.rcpt("customer@example.org")
        client.putcmd("data")
        assert client.getreply()[0] == 354
        client.send(b"From: invoices@acme.example\r\n" + payload + b".\r\n")
        code, reply = client.getreply()
    assert code == 550 and b"5.6.11 Bare CR or LF" in reply
    assert not Message.objects.exists()


def test_header_injection_through_an_encoded_word_is_refused(
    listener: SmtpListener, make_credential: Credentials
) -> None:
    _, password = make_credential()
    injected = message().replace(
        b"Subject: Invoice 2026-0042",
        b"Subject: =?utf-8?q?x=0D=0ABcc:_everyone@example.org?=",
    )
    with submission(listener.ports["starttls"], login=("erp", password)) as client:
        client.mail("invoices@acme.example")
        client.rcpt("customer@example.org")
        code, reply = client.data(injected)
    assert code == 554 and b"Subject" in reply
    assert not Message.objects.exists()


@override_settings(POSTROOM_MAX_MESSAGE_BYTES=2_000)
def test_size_is_advertised_and_enforced(
    listener: SmtpListener, make_credential: Credentials
) -> None:
    _, password = make_credential()
    with submission(listener.ports["starttls"], login=("erp", password)) as client:
        assert client.esmtp_features["size"] == "2000"
        client.mail("invoices@acme.example")
        client.rcpt("customer@example.org")
        code, _ = client.data(message() + (b"y" * 70 + b"\r\n") * 50)  # 3,600 bytes
    assert code == 552
    assert not Message.objects.exists()


def test_the_credentials_limits_on_recipients_and_messages_a_minute(
    listener: SmtpListener, make_credential: Credentials
) -> None:
    _, password = make_credential(max_recipients=2, rate_limit_per_minute=2)
    with submission(listener.ports["starttls"], login=("erp", password)) as client:
        client.mail("invoices@acme.example")
        assert client.rcpt("a@example.org")[0] == 250
        assert client.rcpt("b@example.org")[0] == 250
        code, reply = client.rcpt("c@example.org")
        assert code == 452 and b"at most 2" in reply
        client.rset()
        assert client.mail("invoices@acme.example")[0] == 250  # the second this minute
        client.rset()
        code, reply = client.mail("invoices@acme.example")
    assert code == 450 and b"limit of 2 messages a minute" in reply


def test_a_listed_network_sends_without_auth_and_others_may_not(
    listener: SmtpListener, make_credential: Credentials
) -> None:
    make_credential(
        "scanner", senders=("scanner@acme.example",), networks_without_auth=("127.0.0.0/8",)
    )
    with submission(listener.ports["starttls"]) as client:
        client.sendmail(
            "scanner@acme.example", ["ops@acme.example"], message("scanner@acme.example")
        )
    assert Message.objects.get().source_detail == f"SMTP credential scanner from {HOST}"


def test_the_implicit_tls_port_takes_auth_at_once(
    listener: SmtpListener, make_credential: Credentials
) -> None:
    _, password = make_credential()
    with smtplib.SMTP_SSL(
        HOST, listener.ports["implicit_tls"], context=client_context(), timeout=10
    ) as client:
        client.login("erp", password)
        client.sendmail("invoices@acme.example", ["customer@example.org"], message())
    assert Message.objects.count() == 1


def test_a_removed_credential_stops_working_at_the_next_refresh(
    listener: SmtpListener, make_credential: Credentials
) -> None:
    credential, password = make_credential()
    credential.delete()
    listener.refresh_now()
    with (
        submission(listener.ports["starttls"]) as client,
        pytest.raises(smtplib.SMTPAuthenticationError),
    ):
        client.login("erp", password)


def test_a_plain_text_client_cannot_skip_tls(listener: SmtpListener) -> None:
    with smtplib.SMTP(HOST, listener.ports["starttls"], timeout=10) as client:
        client.ehlo("x")
        assert "starttls" in client.esmtp_features and "auth" not in client.esmtp_features
        code, _ = client.mail("invoices@acme.example")
    assert code == 530


def test_the_certificate_is_self_signed_for_loopback(listener: SmtpListener) -> None:
    with submission(listener.ports["starttls"]) as client:
        sock = client.sock
        assert isinstance(sock, ssl.SSLSocket) and sock.version() in {"TLSv1.2", "TLSv1.3"}


def test_a_message_sent_again_after_a_lost_connection_is_stored_once(
    listener: SmtpListener, make_credential: Credentials
) -> None:
    _, password = make_credential()
    replies = []
    for _ in range(2):  # the system did not see the first 250 and sends it again
        with submission(listener.ports["starttls"], login=("erp", password)) as client:
            client.mail("invoices@acme.example")
            client.rcpt("customer@example.org")
            replies.append(client.data(message()))
    assert [code for code, _ in replies] == [250, 250]
    assert Message.objects.count() == 1
    assert all(f"(outbox #{Message.objects.get().pk})".encode() in text for _, text in replies)
