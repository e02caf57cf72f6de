"""A lasting pause is told to the administrators (issue 8 §1): once, after
POSTROOM_PAUSE_ALERT_MINUTES, in the log and by an email queued first in line."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from django.utils import timezone
from pytest_django.fixtures import Settings

from postroom.company.selectors import company_get
from postroom.outbox.models import Message, ServerPause
from postroom.outbox.pauses import server_pause, server_pause_alerts_send
from tests.accounts.factories import admin_make, user_make

pytestmark = pytest.mark.django_db

SERVER = "smtp.acme.example:587"


@pytest.fixture(autouse=True)
def mail_through_the_outbox(settings: Settings) -> None:
    settings.EMAIL_BACKEND = "postroom.outbox.backend.OutboxEmailBackend"
    company = company_get()
    company.sender_email = "postroom@acme.example"
    company.save()


def paused(minutes_ago: int) -> ServerPause:
    server_pause(server=SERVER, code=535, reason="The server refused the password.")
    ServerPause.objects.filter(server=SERVER).update(
        paused_at=timezone.now() - dt.timedelta(minutes=minutes_ago)
    )
    return ServerPause.objects.get(server=SERVER)


def test_a_pause_lasting_longer_than_the_setting_alerts_the_administrators_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    admin_make("ada", email="ada@acme.example")
    user_make("sam", email="sam@acme.example")  # staff: not told
    paused(minutes_ago=20)
    with caplog.at_level(logging.ERROR, logger="postroom.outbox.pauses"):
        alerted = server_pause_alerts_send(after=dt.timedelta(minutes=15))
    assert [pause.server for pause in alerted] == [SERVER]
    assert f"Sending through {SERVER} has been paused since" in caplog.text
    (alert,) = Message.objects.all()
    assert alert.subject == f"Postroom: sending through {SERVER} is paused"
    assert list(alert.recipients.values_list("address", flat=True)) == ["ada@acme.example"]
    assert ServerPause.objects.get().alerted_at is not None

    assert server_pause_alerts_send(after=dt.timedelta(minutes=15)) == []  # once
    assert Message.objects.count() == 1


def test_a_young_pause_is_not_alerted_yet_and_a_new_pause_is_alerted_again() -> None:
    admin_make("ada", email="ada@acme.example")
    paused(minutes_ago=5)
    assert server_pause_alerts_send(after=dt.timedelta(minutes=15)) == []
    paused(minutes_ago=30)
    assert len(server_pause_alerts_send(after=dt.timedelta(minutes=15))) == 1
    paused(minutes_ago=30)  # paused anew after a resume: told anew
    assert len(server_pause_alerts_send(after=dt.timedelta(minutes=15))) == 1
