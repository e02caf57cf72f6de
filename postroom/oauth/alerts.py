"""Telling people that an OAuth sign-in is in trouble: the administrators for the company
relay's, the user for their own mailbox's.

The email goes through the outbox like all mail. For the company relay it may have to wait
behind the very sign-in it is about (the dashboard and the log say it at once); a user's
alert leaves through the company relay.
"""

from __future__ import annotations

import logging

from django.contrib.auth import get_user_model
from django.core.mail import send_mail

from postroom.core.errors import PostroomError
from postroom.oauth.models import OAuthConnection

logger = logging.getLogger(__name__)

# accounts.models.Role.ADMINISTRATOR; the accounts app sits above this one.
_ADMINISTRATOR = "administrator"


def _recipients(connection: OAuthConnection) -> list[str]:
    if connection.user is not None:
        return [connection.user.email] if connection.user.email else []
    return list(
        get_user_model()
        .objects.filter(role=_ADMINISTRATOR, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
    )


def _where(connection: OAuthConnection) -> str:
    if connection.user is not None:
        return "your mailbox's OAuth sign-in (Profile → My mailbox)"
    return "the company relay's OAuth sign-in (Company → OAuth sign-in)"


def oauth_alert_send(connection: OAuthConnection, *, subject: str, problem: str) -> None:
    logger.error("OAuth for %s: %s", connection.owner, problem)
    recipients = _recipients(connection)
    if not recipients:
        return
    body = (
        f"{problem}\n\nOpen {_where(connection)} in Postroom and sign in again (or correct the "
        "settings there). Mail that needs this sign-in waits, held, and nothing is lost.\n"
    )
    try:
        send_mail(f"Postroom: {subject}", body, from_email=None, recipient_list=recipients)
    except PostroomError as error:  # no company address to send from: the log still says it
        logger.error("Could not queue the OAuth alert email: %s", error.message)  # noqa: TRY400
