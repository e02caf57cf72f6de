"""The test email of "Send test email": a small, plain message, and reading the server's reply."""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formataddr, formatdate, make_msgid

TEST_SUBJECT = "Postroom test email"
# "250 2.0.0 Ok: queued as 4Xyz" (Postfix), "250 OK id=1rAbC-0001" (Exim),
# "250 Ok 0100018f...-000000" (Amazon SES). Microsoft 365 names no queue id, only the
# Message-ID and its host.
_QUEUE_ID_PATTERNS = (
    re.compile(r"queued as ([\w.@-]+)", re.IGNORECASE),
    re.compile(r"\bid=([\w.@-]+)", re.IGNORECASE),
    re.compile(r"^\s*(?:\d\.\d\.\d\s+)?ok\s+([0-9a-f][\w-]{15,})", re.IGNORECASE),
)


def _domain_of(address: str) -> str | None:
    _, _, domain = address.rpartition("@")
    return domain or None


def build_test_message(
    *, sender: str, recipient: str, server: str, sender_name: str = ""
) -> EmailMessage:
    """Build the test email from `sender` to `recipient`, saying which server it went through."""
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = formataddr((sender_name, sender)) if sender_name else sender
    message["To"] = recipient
    message["Subject"] = TEST_SUBJECT
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid("postroom-test", domain=_domain_of(sender))
    message.set_content(
        "Hello,\n\n"
        f"this is a test email from Postroom, sent through {server}.\n"
        "If you can read it, the company SMTP settings work: the server accepted the login "
        f"and let {sender} send.\n\n"
        "Nothing else to do; you can delete this message.\n"
    )
    return message


def message_bytes(message: EmailMessage | bytes) -> bytes:
    """The RFC 5322 bytes of `message`, CRLF line endings as SMTP wants them."""
    if isinstance(message, bytes):
        return message
    return message.as_bytes(policy=SMTP_POLICY)


def queue_id_from_reply(text: str) -> str | None:
    """The server's queue id in its reply to DATA, when it names one."""
    for pattern in _QUEUE_ID_PATTERNS:
        match = pattern.search(text)
        if match:
            return match.group(1).rstrip(".")
    return None
