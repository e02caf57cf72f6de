"""Sending to a server paused (a wrong password, a blocked login) and senders it refused."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from postroom.outbox import wake
from postroom.outbox.models import (
    Message,
    MessageStatus,
    SenderRefusal,
    ServerPause,
)


def server_pause(*, server: str, code: int | None, reason: str) -> None:
    ServerPause.objects.update_or_create(
        server=server, defaults={"paused_at": timezone.now(), "code": code, "reason": reason}
    )
    # Other workers sending to this server stop too, instead of meeting the same refusal.
    transaction.on_commit(wake.notify_workers)


def server_resume(*, server: str) -> None:
    with transaction.atomic():
        ServerPause.objects.filter(server=server).delete()
        # Messages held back by the pause go now rather than at their scheduled retry.
        Message.objects.filter(
            status=MessageStatus.QUEUED, next_attempt_at__gt=timezone.now()
        ).update(next_attempt_at=timezone.now())
        transaction.on_commit(wake.notify_workers)


def sender_refusal_record(*, address: str, server: str, code: int | None, text: str) -> None:
    """Remember that the relay will not let us send as `address` (send-as policy auto)."""
    SenderRefusal.objects.update_or_create(
        address=address,
        defaults={"server": server, "refused_at": timezone.now(), "code": code, "text": text},
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
    """Whether any sending is paused: then every queued message is held (one route sends)."""
    return ServerPause.objects.exists()


def server_is_paused(*, server: str) -> bool:
    return ServerPause.objects.filter(server=server).exists()
