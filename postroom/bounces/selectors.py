"""Reads of the bounce mailbox's settings and of what it found."""

from __future__ import annotations

from postroom.bounces.models import BounceMailbox, BounceReport, SeenMail

# The page lists this many of the latest reports and of the mails that could not be read.
LATEST_SHOWN = 50


def bounce_mailbox_get() -> BounceMailbox:
    """The one bounce mailbox (pk 1), made with its defaults on first use."""
    mailbox, _ = BounceMailbox.objects.get_or_create(pk=1)
    return mailbox


def bounce_reports_latest(limit: int = LATEST_SHOWN) -> list[BounceReport]:
    return list(BounceReport.objects.select_related("message").order_by("-id")[:limit])


def bounce_mails_failed(limit: int = LATEST_SHOWN) -> list[SeenMail]:
    """The mails whose processing failed: they stay in the mailbox and are not read again."""
    return list(SeenMail.objects.exclude(error="").order_by("-seen_at")[:limit])
