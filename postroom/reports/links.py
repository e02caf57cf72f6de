"""Signed, expiring download links to a run's file, for files too large to attach.

A link names the run and the time it was made, signed with the site's secret key (Django's
TimestampSigner through `signing.dumps`, which honours SECRET_KEY_FALLBACKS). It is the
whole credential: whoever has the email can download the file without logging in, as with
an attachment, for POSTROOM_REPORT_LINK_DAYS days. A changed or expired link is refused, and
the file itself is deleted when the link expires.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from postroom.campaigns.links import public_url
from postroom.core.errors import ConfigurationError, PostroomError
from postroom.reports.models import RunFile

_SALT = "postroom.reports.download"


class DownloadLinkError(PostroomError):
    code = "link_invalid"
    http_status = 404


def link_lifetime() -> dt.timedelta:
    return dt.timedelta(days=settings.POSTROOM_REPORT_LINK_DAYS)


def download_token(*, run_id: int) -> str:
    return signing.dumps({"run": run_id}, salt=_SALT, compress=False)


def download_run_id(token: str) -> int:
    """The run a token names; DownloadLinkError if it was changed or has expired."""
    try:
        data = signing.loads(token, salt=_SALT, max_age=link_lifetime())
    except signing.SignatureExpired:
        raise DownloadLinkError(
            "This download link has expired. Ask whoever sends the report to run it again."
        ) from None
    except signing.BadSignature:
        raise DownloadLinkError(
            "This download link is not valid: it was changed or cut short."
        ) from None
    run_id = data.get("run") if isinstance(data, dict) else None
    if not isinstance(run_id, int):
        raise DownloadLinkError("This download link is not valid: it was changed or cut short.")
    return run_id


def download_file(token: str) -> RunFile:
    """The file a link names, while the link and the file last; DownloadLinkError if not."""
    run_id = download_run_id(token)
    file = (
        RunFile.objects.select_related("run")
        .filter(run_id=run_id, expires_at__gt=timezone.now())
        .first()
    )
    if file is None:
        raise DownloadLinkError(
            "This download link has expired. Ask whoever sends the report to run it again."
        )
    return file


def download_url(*, run_id: int) -> str:
    try:
        base = public_url()
    except ConfigurationError:
        raise ConfigurationError(
            "This report is too large to attach and goes as a download link, and Postroom "
            "does not know its public address: set POSTROOM_PUBLIC_URL (for example "
            "https://postroom.example.com) and restart Postroom, or raise the schedule's size "
            "limit."
        ) from None
    return base + reverse("report_download", args=[download_token(run_id=run_id)])
