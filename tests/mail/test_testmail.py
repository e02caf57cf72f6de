"""The test email and reading the server's reply to it."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import SMTP as SMTP_POLICY

import pytest

from postroom.mail.testmail import (
    TEST_SUBJECT,
    build_test_message,
    message_bytes,
    queue_id_from_reply,
)


def test_the_test_email_has_the_headers_a_real_message_needs() -> None:
    message = build_test_message(
        sender="info@example.com",
        sender_name="Acme Ltd",
        recipient="bob@example.org",
        server="smtp.example.com:587",
    )
    assert message["From"] == "Acme Ltd <info@example.com>"
    assert message["To"] == "bob@example.org"
    assert message["Subject"] == TEST_SUBJECT == "Postroom test email"
    assert message["Date"]
    assert message["Message-ID"].endswith("@example.com>")
    assert "smtp.example.com:587" in message.get_content()


def test_the_test_email_goes_out_with_crlf_line_endings() -> None:
    message = build_test_message(
        sender="info@example.com", recipient="bob@example.org", server="h:25"
    )
    raw = message_bytes(message)
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    parsed = message_from_bytes(raw, policy=SMTP_POLICY)
    assert parsed["Subject"] == "Postroom test email"
    assert message_bytes(raw) is raw


@pytest.mark.parametrize(
    ("reply", "queue_id"),
    [
        ("2.0.0 Ok: queued as 4ZKdfg6RXHz2vR", "4ZKdfg6RXHz2vR"),
        ("OK id=1rAbCd-0001Xy-2Z", "1rAbCd-0001Xy-2Z"),
        ("2.0.0 OK <abc@example.com> [Hostname=AM0PR01MB1234.eurprd01.prod.outlook.com]", None),
        (
            "Ok 0100018f2c1e3b5a-6d1b5f0c-1a2b-4c3d-9e8f-0123456789ab-000000",
            "0100018f2c1e3b5a-6d1b5f0c-1a2b-4c3d-9e8f-0123456789ab-000000",
        ),
        ("2.0.0 OK", None),
    ],
)
def test_the_queue_id_is_read_from_common_replies(reply: str, queue_id: str | None) -> None:
    assert queue_id_from_reply(reply) == queue_id
