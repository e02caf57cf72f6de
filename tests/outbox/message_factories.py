"""Outbox messages for tests, queued through the real service (so they obey every rule)."""

from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid
from typing import Any

from postroom.outbox.enqueue import message_enqueue_raw
from postroom.outbox.models import Lane, Message, Source


def raw_email(
    *,
    sender: str = "app@example.com",
    to: Sequence[str] = ("alice@example.com",),
    subject: str = "Hello",
    body: str = "Hello there.\n",
) -> bytes:
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="example.com")
    message.set_content(body)
    return message.as_bytes()


def message_queue(
    *,
    sender: str = "app@example.com",
    to: Sequence[str] = ("alice@example.com",),
    subject: str = "Hello",
    body: str = "Hello there.\n",
    lane: Lane = Lane.TRANSACTIONAL,
    sender_user: Any = None,
    source: Source = Source.API,
) -> Message:
    return message_enqueue_raw(
        envelope_from=sender,
        recipients=list(to),
        raw=raw_email(sender=sender, to=to, subject=subject, body=body),
        source=source,
        lane=lane,
        sender_user=sender_user,
    )
