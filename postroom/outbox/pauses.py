"""Sending to a server paused (a wrong password, a blocked login) and senders it refused."""

from __future__ import annotations

import datetime as dt
import logging

from django.core.mail import send_mail
from django.db import connection, transaction
from django.utils import timezone

from postroom.accounts.models import Role, User
from postroom.core.errors import PostroomError
from postroom.outbox import holds, wake
from postroom.outbox.models import (
    Message,
    MessageStatus,
    SenderRefusal,
    ServerPause,
)

logger = logging.getLogger(__name__)


def server_pause(*, server: str, code: int | None, reason: str) -> None:
    ServerPause.objects.update_or_create(
        server=server,
        defaults={"paused_at": timezone.now(), "code": code, "reason": reason, "alerted_at": None},
    )
    # Other workers sending to this server stop too, instead of meeting the same refusal.
    transaction.on_commit(wake.notify_workers)


def server_resume(*, server: str) -> None:
    with transaction.atomic():
        ServerPause.objects.filter(server=server).delete()
        # Messages held back by the pause (tried, and queued again for later) go now rather
        # than at their scheduled retry. Mail never tried keeps its time: a campaign's
        # throttle spacing, a "send at", or a campaign's own hold (postroom.outbox.holds).
        now = timezone.now()
        Message.objects.filter(
            status=MessageStatus.QUEUED,
            attempt_count__gt=0,
            next_attempt_at__gt=now,
            next_attempt_at__lt=now + holds.HOLD_OFFSET / 2,
        ).update(next_attempt_at=now)
        transaction.on_commit(wake.notify_workers)


def sender_refusal_record(*, address: str, server: str, code: int | None, text: str) -> None:
    """Remember that the relay will not let us send as `address` (send-as policy auto)."""
    SenderRefusal.objects.update_or_create(
        address=address,
        defaults={"server": server, "refused_at": timezone.now(), "code": code, "text": text},
    )


def server_pause_alerts_send(*, after: dt.timedelta) -> list[ServerPause]:
    """Tell the administrators of every pause that has lasted `after` and was not told yet.

    Two ways, since mail through the paused server waits like all the rest: an ERROR in the
    log, which an operator's log monitoring sees at once, and an email to each administrator,
    queued first in line, which leaves the moment sending resumes (or at once, if the pause
    was of another server). The dashboard says when they were told.
    """
    now = timezone.now()
    with transaction.atomic():
        due = list(
            ServerPause.objects.select_for_update()
            .filter(paused_at__lte=now - after, alerted_at__isnull=True)
            .order_by("paused_at")
        )
        for pause in due:
            logger.error(
                "Sending through %s has been paused since %s: %s Mail waits until an "
                "administrator corrects Company > SMTP Server Information or resumes sending.",
                pause.server,
                pause.paused_at.isoformat(timespec="minutes"),
                pause.reason,
            )
            _alert_email_queue(pause)
            pause.alerted_at = now
            pause.save(update_fields=["alerted_at"])
    return due


def _alert_email_queue(pause: ServerPause) -> None:
    administrators = list(
        User.objects.filter(role=Role.ADMINISTRATOR, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
    )
    if not administrators:
        return
    since = timezone.localtime(pause.paused_at).strftime("%Y-%m-%d %H:%M")
    try:
        _send_alert(pause, since, administrators)
    except PostroomError as error:  # no company address to send from: the log still says it
        # A known condition with its own message: no traceback to show.
        logger.error("Could not queue the pause alert email: %s", error.message)  # noqa: TRY400


def _send_alert(pause: ServerPause, since: str, administrators: list[str]) -> None:
    send_mail(
        f"Postroom: sending through {pause.server} is paused",
        (
            f"Sending through {pause.server} has been paused since {since}:\n\n"
            f"{pause.reason}\n\n"
            "Mail waits, held, and nothing is lost. Correct the setting under Company > SMTP "
            "Server Information (Test these settings tries it first): saving it, or a passing "
            "Check connection, resumes sending. This email itself waits with the rest when it "
            "has to leave through the same server.\n"
        ),
        from_email=None,
        recipient_list=administrators,
    )


def server_pauses_lift() -> list[ServerPause]:
    """Resume every paused server, after the settings that caused the pauses changed; the
    next attempt shows whether the change fixed them (a failure pauses the server again)."""
    pauses = list(ServerPause.objects.all())
    for pause in pauses:
        server_resume(server=pause.server)
    return pauses


def server_pause_get(*, server: str) -> ServerPause | None:
    return ServerPause.objects.filter(server=server).first()


def server_is_any_paused() -> bool:
    """Whether any sending is paused: then every queued message is held (one route sends).

    Written out: every API send asks it for its answer, and the ORM's exists() spent more
    building the query than the database spent running it."""
    with connection.cursor() as cursor:
        table = connection.ops.quote_name(ServerPause._meta.db_table)
        cursor.execute(f"SELECT 1 FROM {table} LIMIT 1")  # noqa: S608 - the model's own name
        return cursor.fetchone() is not None


def server_is_paused(*, server: str) -> bool:
    return ServerPause.objects.filter(server=server).exists()
