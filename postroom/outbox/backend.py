"""A Django email backend that puts mail into the outbox instead of sending it.

With `EMAIL_BACKEND = "postroom.outbox.backend.OutboxEmailBackend"`, `send_mail`, password
reset mails and any other `django.core.mail` user go through the same durable queue, retries
and records as the rest of Postroom's mail.

When `send_messages` returns, each message's row is committed: the outbox owns it. Called
inside the caller's own `transaction.atomic()`, the row is part of that transaction instead,
and commits or rolls back with it — mail about an order that was rolled back is never sent.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from email.utils import formataddr
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend

from postroom.company.selectors import company_get
from postroom.core.errors import ValidationError
from postroom.mail.addresses import parse_address
from postroom.mail.message import new_message_id
from postroom.outbox.enqueue import message_enqueue_raw
from postroom.outbox.models import Lane, Message, Source

logger = logging.getLogger(__name__)

# Django's own default for DEFAULT_FROM_EMAIL: nobody chose it, and "localhost" is no
# domain a relay accepts mail from.
DJANGO_DEFAULT_FROM_EMAIL = "webmaster@localhost"


class OutboxEmailBackend(BaseEmailBackend):
    """Queue each message in the outbox (transactional lane). Nothing touches the network."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Queue each message; return how many were queued.

        An invalid message raises (ValidationError, or Django's BadHeaderError for a header
        with a line break) after the messages before it were queued; with fail_silently the
        error is logged and the next message is tried.
        """
        queued = 0
        for email_message in email_messages:
            try:
                outbox_message_enqueue(email_message=email_message)
            except Exception:
                if not self.fail_silently:
                    raise
                logger.exception(
                    "Could not queue the email %r in the outbox (fail_silently was asked).",
                    email_message.subject,
                )
                continue
            queued += 1
        return queued


def outbox_message_enqueue(*, email_message: EmailMessage, sender_user: Any = None) -> Message:
    """Queue one Django EmailMessage as its exact bytes; return the outbox Message."""
    if _is_unset_sender(email_message.from_email):
        # A copy: the caller's object keeps what the caller set.
        email_message = copy.copy(email_message)
        email_message.from_email = _company_sender()
    if not email_message.recipients():  # To + Cc + Bcc; Bcc is in no header
        raise ValidationError(
            f"The email {email_message.subject!r} has no recipients: give it a To, Cc or Bcc.",
            field="recipients",
        )
    sender = parse_address(email_message.from_email, label="Sender", field="from_email")

    def envelope(addresses: Sequence[str], kind: str) -> list[str]:
        return [
            parse_address(address, label=f"{kind} {index}", field="recipients").addr_spec
            for index, address in enumerate(addresses, start=1)
        ]

    to = envelope(email_message.to, "To")
    cc = envelope(email_message.cc, "Cc")
    bcc = envelope(email_message.bcc, "Bcc")
    mime = email_message.message()  # a header with a line break raises BadHeaderError here
    if "message-id" not in {name.lower() for name in email_message.extra_headers}:
        # Django names this machine (often "localhost") on the right of its Message-IDs;
        # the sender's domain is what RFC 5322 §3.6.4 suggests and what the rest of
        # Postroom's mail carries.
        del mime["Message-ID"]
        mime["Message-ID"] = new_message_id(sender.addr_spec.rpartition("@")[2])
    # CRLF everywhere, as it goes on the wire (RFC 5322 §2.1): the bytes Django's own SMTP
    # backend sends, ending in CRLF as DATA needs (RFC 5321 §4.1.1.4).
    raw = mime.as_bytes(linesep="\r\n")
    if not raw.endswith(b"\r\n"):
        raw += b"\r\n"
    return message_enqueue_raw(
        envelope_from=sender.addr_spec,
        recipients=to,
        cc=cc,
        bcc=bcc,
        raw=raw,
        source=Source.DJANGO,
        lane=Lane.TRANSACTIONAL,
        sender_user=sender_user,
    )


def _is_unset_sender(from_email: str) -> bool:
    return from_email == DJANGO_DEFAULT_FROM_EMAIL == settings.DEFAULT_FROM_EMAIL


def _company_sender() -> str:
    """The company address, for mail whose code named no sender and no default was set."""
    company = company_get()
    if not company.sender_email:
        raise ValidationError(
            "This email has no sender: set the company email address (Company > SMTP Server "
            "Information > Edit), or DEFAULT_FROM_EMAIL, or give the email a from_email.",
            field="from_email",
        )
    if company.sender_name:
        return formataddr((company.sender_name, company.sender_email))
    return company.sender_email
