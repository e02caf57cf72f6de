"""The built-in reports read Postroom's own mail and contacts for their period, in the
schedule's time zone, through the ORM (the same on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from postroom.contacts.models import Contact
from postroom.outbox.models import Message, Recipient, RecipientStatus
from postroom.reports.builtins import BUILTINS
from postroom.reports.execution import report_result
from tests.outbox.worker_harness import enqueue
from tests.reports.conftest import report_make

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")


def queued_at(message: Message, moment: dt.datetime) -> None:
    Message.objects.filter(pk=message.pk).update(created_at=moment)


def test_deliveries_per_day_count_recipients_by_status_on_the_zones_days() -> None:
    first = enqueue("a@example.org", "b@example.org")
    second = enqueue("c@example.org")
    # 22:30 UTC on 31 May is 1 June in Berlin: both land on 1 June there.
    queued_at(first, dt.datetime(2026, 5, 31, 22, 30, tzinfo=dt.UTC))
    queued_at(second, dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC))
    Recipient.objects.filter(address="a@example.org").update(status=RecipientStatus.SENT)
    Recipient.objects.filter(address="b@example.org").update(status=RecipientStatus.FAILED)
    report = report_make(
        None,
        builtin="deliveries",
        parameters=[{"name": "period", "type": "period", "value": "2026-06-01..2026-06-01"}],
    )
    table = report_result(report, now=dt.datetime(2026, 6, 2, tzinfo=dt.UTC), tz=BERLIN).table
    assert table.columns[:5] == ["Day", "Sent", "Captured", "Deferred", "Failed"]
    [row] = table.rows
    by_column = dict(zip(table.columns, row, strict=True))
    assert by_column["Day"] == dt.date(2026, 6, 1)
    assert (by_column["Sent"], by_column["Failed"], by_column["Waiting"]) == (1, 1, 1)


def test_failures_list_each_failed_recipient_with_its_reason() -> None:
    message = enqueue("gone@example.org", subject="Invoice 7")
    Recipient.objects.filter(message=message).update(
        status=RecipientStatus.FAILED,
        last_code=550,
        last_enhanced_code="5.1.1",
        last_text="User unknown",
    )
    report = report_make(
        None,
        builtin="failures",
        parameters=[{"name": "period", "type": "period", "value": "today"}],
    )
    table = report_result(report, now=dt.datetime.now(dt.UTC), tz=dt.UTC).table
    [row] = table.rows
    assert row[1:] == (
        "Invoice 7",
        "Alice Smith <alice@example.com>",
        "gone@example.org",
        "failed",
        "550 5.1.1",
        "User unknown",
        0,
    )


def test_contacts_added_and_every_other_built_in_report_run() -> None:
    Contact.objects.create(email="ann@example.org", email_key="ann@example.org")
    now = dt.datetime.now(dt.UTC)
    for key in BUILTINS:
        report = report_make(None, builtin=key, name=BUILTINS[key].name)
        table = report_result(report, now=now + dt.timedelta(days=1), tz=dt.UTC).table
        if key == "contacts":
            assert table.rows == [(now.date(), 1)]
        assert table.columns, key
