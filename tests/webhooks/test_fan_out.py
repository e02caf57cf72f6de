"""Fan-out: each new outbox event becomes one delivery per subscribed endpoint, exactly once."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import transaction
from django.utils import timezone

from postroom.accounts.models import User
from postroom.outbox.models import Event, EventKind
from postroom.webhooks import delivery as delivery_module
from postroom.webhooks.delivery import GAP_WAIT, events_fan_out
from postroom.webhooks.models import Cursor, CursorGap, Delivery, Endpoint
from postroom.webhooks.services import endpoint_create
from tests.webhooks.conftest import enqueue_message

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def baseline() -> int:
    """Start the checkpoint at the id sequence's current end, so the ids these tests make
    follow it without holes (on PostgreSQL, earlier tests' rolled-back ids leave some)."""
    probe = Event.objects.create(kind=EventKind.MESSAGE_QUEUED, created_at=timezone.now())
    newest = probe.pk
    Cursor.objects.update_or_create(name="events", defaults={"last_event_id": newest})
    probe.delete()
    return newest


def endpoint(
    admin: User,
    *,
    url: str = "https://erp.example.com/hooks",
    all_events: bool = True,
    event_types: tuple[str, ...] = (),
) -> Endpoint:
    created, _ = endpoint_create(
        actor=admin, url=url, all_events=all_events, event_types=event_types
    )
    return created


def test_a_queued_message_becomes_one_delivery_per_endpoint(admin: User) -> None:
    first, second = endpoint(admin), endpoint(admin, url="https://crm.example.com/in")
    message = enqueue_message()
    assert events_fan_out() == 1

    deliveries = Delivery.objects.order_by("endpoint_id")
    assert [d.endpoint_id for d in deliveries] == [first.pk, second.pk]
    event = Event.objects.get(kind=EventKind.MESSAGE_QUEUED)
    for item in deliveries:
        assert item.event_id == event.pk
        assert item.webhook_id == f"evt_{event.pk}"
        body = json.loads(item.body)
        assert body["id"] == f"evt_{event.pk}"
        assert body["type"] == "message.queued"
        assert body["data"]["message_id"] == message.message_id
        assert body["data"]["recipients"] == ["bob@example.net"]
    assert Cursor.objects.get().last_event_id == event.pk


def test_fanning_out_twice_creates_nothing_more(admin: User) -> None:
    endpoint(admin)
    enqueue_message()
    enqueue_message("carol@example.net")
    assert events_fan_out() == 2
    assert events_fan_out() == 0
    assert Delivery.objects.count() == 2


def test_a_crash_inside_the_fan_out_leaves_nothing_half_done(
    admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint(admin)
    enqueue_message()
    before = Cursor.objects.get().last_event_id

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("power cut")

    with monkeypatch.context() as patched:
        patched.setattr(Delivery.objects, "bulk_create", crash)
        with pytest.raises(RuntimeError):
            events_fan_out()
    assert Cursor.objects.get().last_event_id == before  # the advance rolled back with it
    assert Delivery.objects.count() == 0

    assert events_fan_out() == 1  # the restart picks the same events up, once
    assert events_fan_out() == 0
    assert Delivery.objects.count() == 1


def test_a_dispatcher_with_a_stale_cursor_writes_nothing(
    admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint(admin)
    enqueue_message()
    stale = Cursor.objects.get()
    assert events_fan_out() == 1
    # A second dispatcher that read the cursor before the first one committed.
    monkeypatch.setattr(delivery_module, "events_cursor_ensure", lambda: stale)
    assert events_fan_out() == 0
    assert Delivery.objects.count() == 1


def test_unsubscribed_event_types_are_not_delivered(admin: User) -> None:
    sent_only = endpoint(admin, all_events=False, event_types=("message.sent",))
    everything = endpoint(admin, url="https://all.example.com/")
    enqueue_message()
    events_fan_out()
    assert not Delivery.objects.filter(endpoint=sent_only).exists()
    assert Delivery.objects.filter(endpoint=everything).count() == 1


def test_an_endpoint_gets_only_events_after_it_was_created(admin: User) -> None:
    enqueue_message()
    events_fan_out()
    late = endpoint(admin)
    enqueue_message("carol@example.net")
    events_fan_out()
    deliveries = list(Delivery.objects.filter(endpoint=late))
    assert len(deliveries) == 1
    assert json.loads(deliveries[0].body)["data"]["recipients"] == ["carol@example.net"]


def test_an_endpoint_created_before_a_backlog_is_fanned_out_skips_older_events(
    admin: User, baseline: int
) -> None:
    # The dispatcher was not running: events queued up before the endpoint existed.
    enqueue_message()
    late = endpoint(admin)
    Endpoint.objects.filter(pk=late.pk).update(created_at=timezone.now())
    Cursor.objects.update(last_event_id=baseline)
    enqueue_message("carol@example.net")
    assert events_fan_out() == 2
    assert Delivery.objects.filter(endpoint=late).count() == 1


def test_an_inactive_endpoint_gets_no_new_deliveries(admin: User) -> None:
    off = endpoint(admin)
    Endpoint.objects.filter(pk=off.pk).update(is_active=False)
    enqueue_message()
    events_fan_out()
    assert not Delivery.objects.exists()


def test_an_event_committed_after_a_higher_id_is_still_fanned_out(admin: User) -> None:
    # On PostgreSQL, transaction A can take id 5 and commit after B's id 6 is visible. The
    # hole is simulated by deleting the middle event and inserting it again with its id.
    endpoint(admin)
    enqueue_message("a@example.net")
    enqueue_message("b@example.net")
    enqueue_message("c@example.net")
    first, middle, last = Event.objects.order_by("id")
    in_flight = {f.attname: getattr(middle, f.attname) for f in Event._meta.concrete_fields}
    middle.delete()

    assert events_fan_out() == 2
    assert list(CursorGap.objects.values_list("event_id", flat=True)) == [in_flight["id"]]
    assert Cursor.objects.get().last_event_id == last.pk

    with transaction.atomic():  # the late commit
        Event.objects.create(**in_flight)
    assert events_fan_out() == 1
    assert not CursorGap.objects.exists()
    webhook_ids = sorted(Delivery.objects.values_list("webhook_id", flat=True))
    assert webhook_ids == sorted(f"evt_{pk}" for pk in (first.pk, in_flight["id"], last.pk))
    assert events_fan_out() == 0


def test_a_hole_that_never_fills_is_given_up_after_the_gap_wait(admin: User) -> None:
    endpoint(admin)
    enqueue_message("a@example.net")
    enqueue_message("b@example.net")
    enqueue_message("c@example.net")
    Event.objects.order_by("id")[1].delete()  # a rolled-back transaction's id
    events_fan_out()
    assert CursorGap.objects.count() == 1
    later = timezone.now() + GAP_WAIT + dt.timedelta(seconds=1)
    events_fan_out(now=later)
    assert not CursorGap.objects.exists()
