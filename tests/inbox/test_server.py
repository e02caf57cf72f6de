"""The capture server: a real SMTP server on loopback that stores every message it receives."""

from __future__ import annotations

import asyncio
import smtplib
import time
from collections.abc import Iterator

import aiosmtplib
import pytest

from postroom.core.errors import ConfigurationError
from postroom.inbox.models import CapturedMessage
from postroom.inbox.server import CaptureServer

pytestmark = pytest.mark.django_db(transaction=True)

CRLF = b"\r\n"


@pytest.fixture
def capture() -> Iterator[CaptureServer]:
    server = CaptureServer("127.0.0.1", 0)
    server.start()
    yield server
    server.stop()


def _message(*lines: bytes) -> bytes:
    return CRLF.join(lines) + CRLF


PLAIN = _message(
    b"From: Alice <alice@example.com>",
    b"To: Bob <bob@example.net>",
    b"Subject: Hello from the sandbox",
    b"Message-ID: <1@example.com>",
    b"",
    b"Hi Bob,",
    b".a line that starts with a dot",
    b"..and one with two",
    b".",
    b"the line above was a lone dot, which must not end the message",
)


def test_a_message_sent_with_smtplib_is_stored_byte_for_byte(capture: CaptureServer) -> None:
    with smtplib.SMTP("127.0.0.1", capture.port, timeout=10) as client:
        refused = client.sendmail("alice@example.com", ["bob@example.net", "carol@x.test"], PLAIN)
        code, reply = client.noop()
    assert refused == {}
    (message,) = CapturedMessage.objects.all()
    assert bytes(message.raw) == PLAIN
    assert message.mail_from == "alice@example.com"
    assert message.rcpt_tos == ["bob@example.net", "carol@x.test"]
    assert message.peer.startswith("127.0.0.1:")
    assert message.subject == "Hello from the sandbox"
    assert message.from_header == "Alice <alice@example.com>"
    assert message.to_header == "Bob <bob@example.net>"
    assert message.message_id == "<1@example.com>"
    assert message.size == len(PLAIN)
    assert message.has_attachments is False


def test_the_reply_names_the_captured_message(capture: CaptureServer) -> None:
    with smtplib.SMTP("127.0.0.1", capture.port, timeout=10) as client:
        client.ehlo()
        client.mail("alice@example.com")
        client.rcpt("bob@example.net")
        code, reply = client.data(PLAIN)
    message = CapturedMessage.objects.get()
    assert code == 250
    assert reply.decode() == f"OK: captured as #{message.pk}"


UTF8 = _message(
    "From: Jörg Müller <jörg@bücher.example>".encode(),
    "To: 李雷 <李雷@例子.测试>".encode(),
    "Subject: Grüße ☃ aus der Sandbox".encode(),
    b"MIME-Version: 1.0",
    b"Content-Type: text/plain; charset=utf-8",
    b"Content-Transfer-Encoding: 8bit",
    b"",
    "Hallo 李雷, schöne Grüße ☃".encode(),
    b".leading dot after UTF-8",
)


def test_utf8_mail_over_smtputf8_is_stored_byte_for_byte(capture: CaptureServer) -> None:
    with smtplib.SMTP("127.0.0.1", capture.port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("smtputf8")
        assert client.has_extn("8bitmime")
        client.sendmail(
            "jörg@bücher.example",
            ["李雷@例子.测试"],
            UTF8,
            mail_options=["SMTPUTF8", "BODY=8BITMIME"],
        )
    message = CapturedMessage.objects.get()
    assert bytes(message.raw) == UTF8
    assert message.mail_from == "jörg@bücher.example"
    assert message.rcpt_tos == ["李雷@例子.测试"]
    assert message.subject == "Grüße ☃ aus der Sandbox"
    assert message.to_header == "李雷 <李雷@例子.测试>"


def test_a_message_sent_with_aiosmtplib_is_stored_byte_for_byte(capture: CaptureServer) -> None:
    async def send() -> None:
        await aiosmtplib.send(
            UTF8,
            sender="jörg@bücher.example",
            recipients=["bob@example.net", "李雷@例子.测试"],
            hostname="127.0.0.1",
            port=capture.port,
            start_tls=False,
            timeout=10,
            mail_options=["SMTPUTF8", "BODY=8BITMIME"],
        )

    asyncio.run(send())
    message = CapturedMessage.objects.get()
    assert bytes(message.raw) == UTF8
    assert message.rcpt_tos == ["bob@example.net", "李雷@例子.测试"]


def test_the_server_offers_its_size_limit_and_refuses_bigger_mail(capture: CaptureServer) -> None:
    with smtplib.SMTP("127.0.0.1", capture.port, timeout=10) as client:
        client.ehlo()
        assert int(client.esmtp_features["size"]) == capture.data_size_limit
        code, _ = client.mail("a@example.com", options=[f"SIZE={capture.data_size_limit + 1}"])
    assert code == 552
    assert not CapturedMessage.objects.exists()


def test_several_clients_at_once_each_get_their_message_stored(capture: CaptureServer) -> None:
    async def send(number: int) -> None:
        await aiosmtplib.send(
            _message(f"Subject: parallel {number}".encode(), b"", b"body"),
            sender="a@example.com",
            recipients=["b@example.com"],
            hostname="127.0.0.1",
            port=capture.port,
            start_tls=False,
            timeout=10,
        )

    async def send_all() -> None:
        await asyncio.gather(*(send(number) for number in range(10)))

    asyncio.run(send_all())
    subjects = set(CapturedMessage.objects.values_list("subject", flat=True))
    assert subjects == {f"parallel {number}" for number in range(10)}


def test_the_null_sender_is_stored_as_empty(capture: CaptureServer) -> None:
    with smtplib.SMTP("127.0.0.1", capture.port, timeout=10) as client:
        client.sendmail("", ["postmaster@example.com"], PLAIN)
    assert CapturedMessage.objects.get().mail_from == ""


def test_lone_cr_and_lf_inside_lines_are_kept_as_sent(capture: CaptureServer) -> None:
    # smtplib sends bytes as they are (aiosmtplib would turn bare CR and LF into CRLF).
    raw = _message(b"Subject: bare line ends", b"", b"one\ntwo\rthree", b".four")
    with smtplib.SMTP("127.0.0.1", capture.port, timeout=10) as client:
        client.sendmail("a@example.com", ["b@example.com"], raw)
    assert bytes(CapturedMessage.objects.get().raw) == raw


def test_port_zero_binds_a_free_port_and_reports_it() -> None:
    server = CaptureServer("127.0.0.1", 0)
    server.start()
    try:
        assert server.port > 0
        with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
            code, banner = client.noop()
        assert code == 250
    finally:
        server.stop()
    with pytest.raises(OSError), smtplib.SMTP("127.0.0.1", server.port, timeout=2):
        pass


def test_a_busy_port_is_a_configuration_error_naming_the_setting(
    capture: CaptureServer,
) -> None:
    second = CaptureServer("127.0.0.1", capture.port)
    started_at = time.monotonic()
    with pytest.raises(ConfigurationError) as caught:
        second.start()
    assert time.monotonic() - started_at < 2, "a failed bind is reported at once"
    assert "POSTROOM_CAPTURE_PORT" in caught.value.message
    assert not second.is_running


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "example.com"])
def test_the_server_refuses_a_non_loopback_address(host: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        CaptureServer(host, 0)
    assert "loopback" in caught.value.message


def test_the_size_limit_is_at_least_the_outbox_limit(settings) -> None:  # type: ignore[no-untyped-def]
    settings.POSTROOM_MAX_MESSAGE_BYTES = 80 * 1024 * 1024
    assert CaptureServer("127.0.0.1", 0).data_size_limit == 80 * 1024 * 1024
