"""The outbox's read queries: who sees what, filters, counts, keyset pages."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from postroom.accounts.models import Role
from postroom.core.errors import NotFoundError, PermissionDeniedError
from postroom.outbox import selectors
from postroom.outbox.models import Attempt, Classification, Lane, Message, MessageStatus
from postroom.outbox.selectors import MessageFilters
from tests.accounts.factories import admin_make, user_make
from tests.outbox.message_factories import message_queue

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Django's PBKDF2 (1,000,000 rounds) costs about a second per user made; these tests
    # log users in with force_login and never check a password.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _subjects(page: selectors.MessagePage) -> list[str]:
    return [message.subject for message in page.messages]


def _set_status(message: Message, status: MessageStatus) -> None:
    Message.objects.filter(pk=message.pk).update(status=status)


def test_an_administrator_sees_every_message_and_staff_only_their_own():
    admin = admin_make()
    alice = user_make("alice")
    bob = user_make("bob", role=Role.MARKETER)
    message_queue(subject="from alice", sender_user=alice)
    message_queue(subject="from bob", sender_user=bob)
    message_queue(subject="from the system")

    every = selectors.message_page(user=admin, filters=MessageFilters())
    own = selectors.message_page(user=alice, filters=MessageFilters())

    assert _subjects(every) == ["from the system", "from bob", "from alice"]
    assert _subjects(own) == ["from alice"]
    assert selectors.message_status_counts(user=bob, filters=MessageFilters())["queued"] == 1


def test_message_get_refuses_someone_elses_message_and_names_a_missing_one():
    alice = user_make("alice")
    bob = user_make("bob")
    message = message_queue(sender_user=alice)

    assert selectors.message_get(user=alice, pk=message.pk) == message
    with pytest.raises(PermissionDeniedError):
        selectors.message_get(user=bob, pk=message.pk)
    with pytest.raises(NotFoundError, match="no message 999"):
        selectors.message_get(user=alice, pk=999)


def test_filters_by_status_lane_sender_and_recipient():
    admin = admin_make()
    m1 = message_queue(subject="one", sender="sales@acme.example", to=["x@customer.example"])
    message_queue(subject="two", sender="news@acme.example", lane=Lane.BULK, to=["y@other.example"])
    message_queue(subject="three", sender="sales@acme.example", to=["z@other.example"])
    _set_status(m1, MessageStatus.FAILED)

    def subjects(**filters: str) -> list[str]:
        return _subjects(selectors.message_page(user=admin, filters=MessageFilters(**filters)))

    assert subjects(status="failed") == ["one"]
    assert subjects(lane="bulk") == ["two"]
    assert subjects(sender="SALES@") == ["three", "one"]
    assert subjects(recipient="other.example") == ["three", "two"]
    assert subjects(sender="sales", recipient="other") == ["three"]


def test_a_message_with_two_matching_recipients_is_listed_once():
    admin = admin_make()
    message_queue(to=["a@team.example", "b@team.example", "c@else.example"])

    page = selectors.message_page(user=admin, filters=MessageFilters(recipient="team.example"))

    assert len(page.messages) == 1


def test_date_filters_include_the_whole_last_day():
    admin = admin_make()
    old = message_queue(subject="old")
    edge = message_queue(subject="edge")
    new = message_queue(subject="new")
    day = dt.date(2024, 3, 10)
    start = timezone.make_aware(dt.datetime.combine(day, dt.time.min))
    Message.objects.filter(pk=old.pk).update(created_at=start - dt.timedelta(seconds=1))
    Message.objects.filter(pk=edge.pk).update(created_at=start + dt.timedelta(hours=23, minutes=59))
    Message.objects.filter(pk=new.pk).update(created_at=start + dt.timedelta(days=1))

    def subjects(**filters: dt.date) -> list[str]:
        return _subjects(selectors.message_page(user=admin, filters=MessageFilters(**filters)))

    assert subjects(created_from=day, created_to=day) == ["edge"]
    assert subjects(created_from=day) == ["new", "edge"]
    assert subjects(created_to=day) == ["edge", "old"]


def test_status_counts_ignore_the_status_filter_but_keep_the_others():
    admin = admin_make()
    failed = message_queue(lane=Lane.BULK)
    message_queue(lane=Lane.BULK)
    message_queue(lane=Lane.TRANSACTIONAL)
    _set_status(failed, MessageStatus.FAILED)

    counts = selectors.message_status_counts(
        user=admin, filters=MessageFilters(status="failed", lane="bulk")
    )

    assert counts["failed"] == 1
    assert counts["queued"] == 1
    assert counts["sent"] == 0
    assert set(counts) == set(MessageStatus.values)


def test_keyset_pages_cover_every_message_once_in_both_directions():
    admin = admin_make()
    for number in range(7):
        message_queue(subject=f"m{number}")
    filters = MessageFilters()

    def page(**keys: int | None) -> selectors.MessagePage:
        return selectors.message_page(user=admin, filters=filters, per_page=3, **keys)

    first = page()
    second = page(before=first.older_than)
    third = page(before=second.older_than)
    back = page(after=second.newer_than)

    assert _subjects(first) == ["m6", "m5", "m4"]
    assert first.newer_than is None
    assert _subjects(second) == ["m3", "m2", "m1"]
    assert _subjects(third) == ["m0"]
    assert third.older_than is None
    assert third.newer_than is not None
    assert _subjects(back) == ["m6", "m5", "m4"]
    assert back.newer_than is None
    assert back.older_than == first.older_than


def test_the_list_carries_the_first_recipients_and_how_many_more():
    admin = admin_make()
    message_queue(to=[f"r{number}@example.org" for number in range(5)])
    message_queue(subject="single", to=["only@example.org"])

    many, single = reversed(selectors.message_page(user=admin, filters=MessageFilters()).messages)

    assert [r.address for r in many.first_recipients] == [
        "r0@example.org",
        "r1@example.org",
        "r2@example.org",
    ]
    assert many.more_recipients == 2
    assert [r.address for r in single.first_recipients] == ["only@example.org"]
    assert single.more_recipients == 0


def test_message_detail_has_headers_parts_recipients_and_attempts_in_order():
    admin = admin_make()
    message = message_queue(subject="Quarterly", to=["a@example.org", "b@example.org"])
    first, second = message.recipients.all()
    now = timezone.now()
    Attempt.objects.create(
        message=message,
        recipient=first,
        at=now,
        server="smtp.example.com:587",
        stage="rcpt",
        code=250,
        enhanced_code="2.1.5",
        text="Ok",
        classification=Classification.SUCCESS,
    )
    Attempt.objects.create(
        message=message,
        recipient=second,
        at=now - dt.timedelta(minutes=5),
        server="smtp.example.com:587",
        stage="rcpt",
        code=450,
        enhanced_code="4.2.0",
        text="Mailbox busy",
        classification=Classification.TEMPORARY,
    )

    detail = selectors.message_detail(message=selectors.message_get(user=admin, pk=message.pk))

    assert ("Subject", "Quarterly") in detail.headers
    assert ("Message-ID", message.message_id) in detail.headers
    assert [part.content_type for part in detail.parts] == ["text/plain"]
    assert [r.address for r in detail.recipients] == ["a@example.org", "b@example.org"]
    assert detail.recipient_counts == {"queued": 2}
    assert [a.code for a in detail.attempts] == [450, 250]
    assert detail.attempt_total == 2


def test_message_raw_is_the_stored_bytes_or_the_bulk_rendering():
    message = message_queue()
    assert selectors.message_raw(message=message) == bytes(message.raw)

    from postroom.mail.addresses import parse_address
    from postroom.outbox.bulk import bulk_enqueue, bulk_template_store, message_bytes
    from postroom.outbox.models import Source

    template = bulk_template_store(
        from_=parse_address("news@example.com"),
        subject="Hi {{ name }}",
        text="Hi {{ name }}",
        html=None,
    )
    bulk_enqueue(
        template=template,
        recipients=[(parse_address("ann@example.net"), {"name": "Ann"})],
        source=Source.CAMPAIGN,
    )
    bulk_message = Message.objects.get(recipients__address="ann@example.net")
    assert bulk_message.raw is None
    raw = selectors.message_raw(message=bulk_message)
    assert raw == message_bytes(bulk_message)
    assert b"Subject: Hi Ann" in raw
