"""Pokes: in this process through the registry, across processes through the channel's socket."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from pathlib import Path

import pytest
from django.utils import timezone
from pytest_django.fixtures import Settings

from postroom.queue.wake import WakeChannel, WakeRegistry, seconds_until


def test_seconds_until_is_never_negative_and_never_past_the_cap() -> None:
    now = timezone.now()
    assert seconds_until(None, cap=5) == 5
    assert seconds_until(now - dt.timedelta(minutes=1), cap=5) == 0
    assert seconds_until(now + dt.timedelta(hours=1), cap=5) == 5
    assert 1 < seconds_until(now + dt.timedelta(seconds=2), cap=5) <= 2


def test_every_registered_callback_is_poked_until_it_is_removed() -> None:
    registry = WakeRegistry()
    calls: list[str] = []
    registry.add(lambda: calls.append("a"))
    second = lambda: calls.append("b")  # noqa: E731
    registry.add(second)
    assert registry.notify() is True
    registry.remove(second)
    registry.notify()
    assert calls == ["a", "b", "a"]
    assert WakeRegistry().notify() is False


@pytest.mark.django_db(transaction=True)  # on PostgreSQL the poke is a NOTIFY, sent at commit
def test_a_poke_from_another_process_reaches_the_listening_loop(
    settings: Settings, tmp_path: Path
) -> None:
    settings.DATA_DIR = tmp_path
    channel = WakeChannel(channel="postroom_test", socket_name="test.wake")
    poked = threading.Event()

    async def listen() -> None:
        listener = channel.listener(poked.set)
        await listener.start()
        try:
            # Another process has no local callback: its notify sends the datagram (SQLite)
            # or the NOTIFY (PostgreSQL).
            await asyncio.to_thread(
                WakeChannel(channel="postroom_test", socket_name="test.wake").notify
            )
            for _ in range(100):
                if poked.is_set():
                    return
                await asyncio.sleep(0.01)
        finally:
            await listener.stop()

    asyncio.run(listen())
    assert poked.is_set()
    assert not channel.socket_path().exists()
