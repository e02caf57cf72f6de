"""A Django email backend that puts mail into the outbox instead of sending it.

With `EMAIL_BACKEND = "postroom.outbox.backend.OutboxEmailBackend"`, `send_mail`, password
reset mails and any other `django.core.mail` user go through the same durable queue, retries
and records as the rest of Postroom's mail.

When `send_messages` returns, each message's row is committed: the outbox owns it. Called
inside the caller's own `transaction.atomic()`, the row is part of that transaction instead,
and commits or rolls back with it — mail about an order that was rolled back is never sent.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from email.utils import formataddr, getaddresses
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend

from postroom.company.selectors import company_get
from postroom.core.errors import ValidationError
from postroom.outbox.models import Lane, Source
from postroom.outbox.services import message_enqueue_raw

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


def outbox_message_enqueue(*, email_message: EmailMessage, sender_user: Any = None) -> Any:
    """Queue one Django EmailMessage as its exact bytes; return the outbox Message."""
    if _is_unset_sender(email_message.from_email):
        email_message.from_email = _company_sender()
    recipients = email_message.recipients()  # To + Cc + Bcc; Bcc is in no header
    if not recipients:
        raise ValidationError(
            f"The email {email_message.subject!r} has no recipients: give it a To, Cc or Bcc.",
            field="recipients",
        )
    # CRLF everywhere, as it goes on the wire (RFC 5322 §2.1); Django's SMTP backend sends
    # the same bytes.
    raw = email_message.message().as_bytes(linesep="\r\n")
    return message_enqueue_raw(
        envelope_from=address_spec(email_message.from_email, field="from_email"),
        recipients=[address_spec(address, field="recipients") for address in recipients],
        raw=raw,
        source=Source.DJANGO,
        lane=Lane.TRANSACTIONAL,
        sender_user=sender_user,
    )


def address_spec(value: str, *, field: str) -> str:
    """The bare address of `value`, which may be "Name <a@b>" as Django allows."""
    if any(character in value for character in "\r\n\0"):
        raise ValidationError(
            f"The address {value!r} contains a line break or NUL; remove it.", field=field
        )
    parsed = getaddresses([value])
    if len(parsed) != 1 or "@" not in parsed[0][1]:
        raise ValidationError(
            f"{value!r} is not one email address. Write it as name@example.com or "
            '"Name <name@example.com>".',
            field=field,
        )
    return parsed[0][1]


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
