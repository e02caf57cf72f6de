"""Mail for the bounce mailbox's tests: a Postfix-style DSN (RFC 3464) and mail that is not
a bounce, each with its own Message-ID (the same mail read twice shows as one report)."""

from __future__ import annotations

from email.utils import make_msgid


def dsn(
    recipient: str = "gone@example.net",
    *,
    original_message_id: str = "",
    status: str = "5.1.1",
    diagnostic: str = "550 5.1.1 No such user",
) -> bytes:
    """A delivery status notification as Postfix writes one; with `original_message_id`,
    the returned headers name the message it is about."""
    original = (
        f"\r\n--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: info@example.com\r\nTo: {recipient}\r\nSubject: Hello\r\n"
        f"Message-ID: {original_message_id}\r\n"
        if original_message_id
        else ""
    )
    return (
        "From: MAILER-DAEMON@relay.example.com (Mail Delivery System)\r\n"
        "To: bounces@example.com\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: {make_msgid(domain='relay.example.com')}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n'
        "\r\n--b1\r\nContent-Type: text/plain\r\n\r\n"
        "Your message could not be delivered.\r\n"
        "\r\n--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; relay.example.com\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Action: failed\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; {diagnostic}\r\n"
        f"{original}"
        "\r\n--b1--\r\n"
    ).encode()


def not_a_bounce() -> bytes:
    return (
        "From: someone@example.org\r\nTo: bounces@example.com\r\nSubject: Hello\r\n"
        f"Message-ID: {make_msgid(domain='example.org')}\r\n\r\nJust saying hello.\r\n"
    ).encode()
