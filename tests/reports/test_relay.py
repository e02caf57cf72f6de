"""A scheduled report through the whole of Postroom's background, as `postroom run` runs it
(postroom.runtime.background: the scheduler, the job runner and the outbox worker), delivered
by the real Postfix relay (STARTTLS, AUTH): the mail arrives with its file, which reads back,
and the run's history shows the outbox message as sent."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.utils import timezone
from pypdf import PdfReader

from postroom.company.models import SendAsPolicy
from postroom.outbox.models import MessageStatus
from postroom.outbox.worker import WorkerOptions
from postroom.reports.models import ReportRun, RunStatus, RunTrigger, Schedule
from postroom.reports.schedules import schedule_run_now
from postroom.runtime.background import run_background
from tests.outbox.worker_harness import company_on_relay, wait_until
from tests.reports.conftest import report_make, schedule_make, source_make
from tests.reports.databases import ExternalDatabase
from tests.support.relay import PostfixRelay

pytestmark = [pytest.mark.relay, pytest.mark.django_db(transaction=True)]


@contextmanager
def running_background() -> Iterator[None]:
    """Postroom's background work on its own event loop in a thread, stopped at the end."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        options = WorkerOptions(name="test-background", batch_size=50, concurrency=4)
        try:
            loop.run_until_complete(run_background(options, stop=stop))
        except BaseException as error:  # surfaced in the test below
            failure.append(error)
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="test-background", daemon=True)
    thread.start()
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
        assert not thread.is_alive(), "the background did not stop within 30 s"
        if failure:
            raise failure[0]


@pytest.fixture
def relay_company(relay_mailbox: PostfixRelay) -> PostfixRelay:
    company_on_relay(relay_mailbox, port=relay_mailbox.starttls_port, policy=SendAsPolicy.AUTO)
    return relay_mailbox


def run_of(schedule: Schedule) -> ReportRun | None:
    return ReportRun.objects.filter(schedule=schedule).select_related("message").first()


def test_a_due_schedule_is_run_and_its_csv_delivered_through_the_relay(
    relay_company: PostfixRelay, postgres_source: ExternalDatabase
) -> None:
    report = report_make(
        source_make(postgres_source),
        sql="SELECT id, region, amount, seller FROM sales WHERE day < :before ORDER BY id",
        parameters=[{"name": "before", "type": "date", "value": "2026-06-01"}],
    )
    schedule = schedule_make(
        report,
        subject="{{ report.name }}: {{ run.rows }} rows",
        recipient_addresses=["Boss <boss@example.net>"],
    )
    Schedule.objects.filter(pk=schedule.pk).update(
        next_run_at=timezone.now() - dt.timedelta(seconds=1)
    )
    with running_background():
        [mail] = relay_company.wait_for(1, timeout=30)
        wait_until(
            lambda: (
                (run := run_of(schedule)) is not None
                and run.message is not None
                and run.message.status == MessageStatus.SENT
            ),
            timeout=20,
            what="the run's message recorded as sent",
        )
    assert mail["Subject"] == "Sales by day: 3 rows"
    assert str(mail["X-Original-To"]) == "boss@example.net"
    [attachment] = list(mail.iter_attachments())
    data = attachment.get_payload(decode=True)
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["id", "region", "amount", "seller"]
    assert rows[1] == ["1", "North", "120.50", "Ann Müller"]
    assert rows[3][3] == "'=cmd|' /C calc'!A0"
    run = run_of(schedule)
    assert run is not None
    assert (run.status, run.trigger, run.rows) == (RunStatus.SENT, RunTrigger.SCHEDULED, 3)
    schedule.refresh_from_db()
    assert schedule.next_run_at is not None and schedule.next_run_at > timezone.now()


def test_run_now_mails_a_pdf_with_its_chart_through_the_relay(
    relay_company: PostfixRelay, mariadb_source: ExternalDatabase
) -> None:
    report = report_make(
        source_make(mariadb_source),
        format="pdf",
        sql="SELECT region, SUM(amount) AS total FROM sales GROUP BY region ORDER BY region",
        chart="bar",
        chart_label_column="region",
        chart_value_columns=["total"],
    )
    schedule = schedule_make(report, recipient_addresses=["board@example.net"])
    schedule_run_now(actor=None, schedule=schedule)
    with running_background():
        [mail] = relay_company.wait_for(1, timeout=30)
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    text = "\n".join(
        page.extract_text() for page in PdfReader(io.BytesIO(attachment.get_content())).pages
    )
    assert text.startswith("Sales by day")
    assert re.search(r"■\s+total", text)
    assert "North 162.75" in text and "East 10.00" in text
