"""The links in a campaign message: one signed token per recipient, and the URLs built on it.

A token names a campaign and a contact and the day it was made, signed with the site's
secret key (Django's `Signer`, which honours SECRET_KEY_FALLBACKS when the key is rotated).
It is the recipient's only credential: the unsubscribe page and its one-click POST (RFC 8058)
need no login, session or CSRF token, and a token that was changed or is older than
`LINK_MAX_AGE` is refused. The same token serves the unsubscribe link, the open pixel and the
click redirects: whoever holds one holds the message, which carries them all.

The links point at POSTROOM_PUBLIC_URL, the address the recipients' mail programs reach the
site at. Outside local mode a campaign is refused without it: a link to 127.0.0.1 would
unsubscribe nobody.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.utils import timezone

from postroom.core.errors import ConfigurationError

_SALT = "postroom.campaigns.links"
# A year: an old message still unsubscribes, far past the 30 days the US CAN-SPAM rule asks
# a link to keep working (16 CFR 316.5), while a token that leaked stops working one day.
LINK_MAX_AGE = dt.timedelta(days=365)
_EPOCH = dt.date(2020, 1, 1)
# Where the recipients' pages are, under the public URL: short, since they are in every
# message (a click link is CLICK_PATH, the token, "/", the link's number, "/").
UNSUBSCRIBE_PATH = "u/"
OPEN_PATH = "t/o/"
CLICK_PATH = "t/c/"


class LinkError(Exception):
    """A token that was tampered with, is malformed, or has expired (`is_expired`)."""

    def __init__(self, message: str, *, is_expired: bool = False) -> None:
        super().__init__(message)
        self.is_expired = is_expired


@dataclass(frozen=True)
class LinkToken:
    campaign_id: int
    contact_id: int
    issued_on: dt.date


def _b36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, rest = divmod(number, 36)
        text = digits[rest] + text
        if not number:
            return text


def token_make(*, campaign_id: int, contact_id: int, issued_on: dt.date | None = None) -> str:
    """A recipient's token: campaign, contact and day in base 36, then the signature."""
    day = (issued_on or timezone.now().date()) - _EPOCH
    value = f"{_b36(campaign_id)}.{_b36(contact_id)}.{_b36(day.days)}"
    return signing.Signer(salt=_SALT).sign(value)


def token_read(token: str, *, today: dt.date | None = None) -> LinkToken:
    """The campaign and contact a token names; LinkError if it is not ours or too old."""
    try:
        value = signing.Signer(salt=_SALT).unsign(token)
        campaign, contact, days = (int(part, 36) for part in value.split("."))
    except (signing.BadSignature, ValueError):
        raise LinkError("This link is not valid: it was changed or cut short.") from None
    issued_on = _EPOCH + dt.timedelta(days=days)
    if (today or timezone.now().date()) - issued_on > LINK_MAX_AGE:
        raise LinkError("This link has expired.", is_expired=True)
    return LinkToken(campaign_id=campaign, contact_id=contact, issued_on=issued_on)


def public_url() -> str:
    """The site's address for recipients: POSTROOM_PUBLIC_URL, or in local mode the address
    `postroom run` serves (mail programs on this machine reach it)."""
    configured = settings.POSTROOM_PUBLIC_URL
    if configured:
        return configured.rstrip("/")
    if settings.PRODUCTION:
        raise ConfigurationError(
            "Campaign messages carry unsubscribe links to this site, and Postroom does not "
            "know its public address: set POSTROOM_PUBLIC_URL (for example "
            "https://postroom.example.com) and restart Postroom."
        )
    return f"http://{settings.POSTROOM_HTTP_HOST}:{settings.POSTROOM_HTTP_PORT}"


@dataclass(frozen=True)
class RecipientLinks:
    unsubscribe: str
    open: str
    click: str  # the click link's start: the link's index and "/" follow


class LinkMaker:
    """Tokens and URLs for one campaign's recipients. The paths are constants the site's
    routes are built from (web/views/campaign_links.py), not looked up: the worker that
    writes a campaign's messages never loads the site's routes."""

    def __init__(self, *, base: str, campaign_id: int) -> None:
        self.campaign_id = campaign_id
        self._signer = signing.Signer(salt=_SALT)
        self._day = _b36((timezone.now().date() - _EPOCH).days)
        self._base = base

    def token(self, contact_id: int) -> str:
        return self._signer.sign(f"{_b36(self.campaign_id)}.{_b36(contact_id)}.{self._day}")

    def links(self, token: str) -> RecipientLinks:
        # A token is base 36, dots, a colon and URL-safe base 64: nothing to escape in a path.
        return RecipientLinks(
            unsubscribe=f"{self._base}/{UNSUBSCRIBE_PATH}{token}/",
            open=f"{self._base}/{OPEN_PATH}{token}/",
            click=f"{self._base}/{CLICK_PATH}{token}/",
        )


def unsubscribe_mailto(*, address: str, token: str) -> str:
    """The List-Unsubscribe mailto (RFC 2369): to the campaign's sender, the token in the
    subject so whoever reads that mailbox can find the recipient."""
    return f"mailto:{address}?subject=unsubscribe%20{token.replace(':', '%3A')}"
