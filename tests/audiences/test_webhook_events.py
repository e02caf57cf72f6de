"""The suppression list's events reach webhook endpoints that want them: an endpoint that
chose only `recipient.suppressed` gets each new suppressed address, signed like any event."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from postroom.outbox.models import Event, EventKind, SuppressionReason
from postroom.outbox.suppression import suppression_add
from postroom.webhooks.delivery import events_fan_out
from postroom.webhooks.models import Cursor, Delivery
from postroom.webhooks.services import EVENT_TYPES, endpoint_create
from tests.accounts.factories import admin_make

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def checkpoint_at_the_end() -> None:
    """Start the dispatcher's checkpoint after every event so far (as test_fan_out does)."""
    probe = Event.objects.create(kind=EventKind.MESSAGE_QUEUED, created_at=timezone.now())
    Cursor.objects.update_or_create(name="events", defaults={"last_event_id": probe.pk})
    probe.delete()


def test_the_event_types_include_the_suppression_events() -> None:
    assert {"recipient.suppressed", "message.suppressed"} <= set(EVENT_TYPES)


def test_an_endpoint_for_recipient_suppressed_gets_each_new_address() -> None:
    endpoint, _ = endpoint_create(
        actor=admin_make(),
        url="https://crm.example.com/hooks",
        all_events=False,
        event_types=("recipient.suppressed",),
    )
    suppression_add(actor=None, address="ann@example.org", reason=SuppressionReason.UNSUBSCRIBED)
    suppression_add(actor=None, address="ANN@example.org")  # already there: no event
    assert events_fan_out() == 1
    delivery = Delivery.objects.get(endpoint=endpoint)
    body = json.loads(delivery.body)
    assert body["type"] == "recipient.suppressed"
    assert body["data"] == {
        "recipient": "ann@example.org",
        "reason": "unsubscribed",
        "source": "added through the API",
    }
