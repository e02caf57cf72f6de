"""The message every contender sends: an invoice notice of about 2 KB, one recipient each.

All contenders send the same sender, subject pattern and body, so their figures compare the
way the message is built and carried, not the message. smtp-source generates its own text,
of the same size (`-l BODY_BYTES` plus its few headers).
"""

from __future__ import annotations

import email.utils

SENDER = "billing@example.com"
SENDER_NAME = "Example Trading"
RECIPIENT_DOMAIN = "example.net"

# The "messages of about 2 KB": a 1,870-byte body plus about 300 bytes of headers.
# Lines under 76 characters, so the text goes as 7bit, as most business mail does.
_LINE = "Item {n:03d}  Widget, stainless, 40 mm ........................ 2 x 12.50 EUR"
BODY = (
    "Dear customer,\n\n"
    "please find below the details of your invoice.\nPayment is due within 30 days.\n\n"
    + "\n".join(_LINE.format(n=n) for n in range(1, 24))
    + "\n\nTotal: 575.00 EUR\n\nKind regards,\nExample Trading, accounts department\n"
)
BODY_BYTES = len(BODY.encode())


def recipient(index: int) -> str:
    return f"customer{index}@{RECIPIENT_DOMAIN}"


def subject(index: int) -> str:
    return f"Invoice {index:06d} from {SENDER_NAME}"


class PreRendered:
    """RFC 5322 bytes for message `index`, from pieces encoded once.

    The "ceiling" contender sends these: joining a few bytes objects costs about a
    microsecond, so what it measures is the SMTP conversation, not message building.
    """

    def __init__(self) -> None:
        self._date = email.utils.formatdate(localtime=False).encode()
        self._body = BODY.replace("\n", "\r\n").encode()
        self._from = f"{SENDER_NAME} <{SENDER}>".encode()

    def message(self, index: int) -> bytes:
        return b"".join(
            (
                b"From: ", self._from, b"\r\n",
                b"To: ", recipient(index).encode(), b"\r\n",
                b"Subject: ", subject(index).encode(), b"\r\n",
                b"Date: ", self._date, b"\r\n",
                b"Message-ID: <bench.", str(index).encode(), b"@example.com>\r\n",
                b"MIME-Version: 1.0\r\n",
                b'Content-Type: text/plain; charset="utf-8"\r\n',
                b"Content-Transfer-Encoding: 7bit\r\n",
                b"\r\n",
                self._body,
            )
        )  # fmt: skip
