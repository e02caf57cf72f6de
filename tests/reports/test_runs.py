"""A run, as the worker's job runner does it: the report's file attached to one outbox message
to its recipients (or a signed link when it is too large), skipped when empty if asked, and a
failure recorded in words with an email to the owner and nothing to the recipients."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import io
import time
from email.message import EmailMessage

import openpyxl
import pytest
from django.core import signing
from django.test import Client

from postroom.accounts.models import User
from postroom.outbox.models import Lane, Message, Source
from postroom.queue.jobs import MAX_ATTEMPTS, job_claim_batch
from postroom.queue.models import Job
from postroom.queue.runner import JobContext, job_run
from postroom.reports import schedules
from postroom.reports.links import download_token
from postroom.reports.models import ReportRun, RunFile, RunStatus, Schedule
from postroom.reports.runs import REPORT_JOB_KINDS
from tests.reports.conftest import report_make, schedule_make, source_make
from tests.reports.databases import ExternalDatabase

pytestmark = pytest.mark.django_db


def run_here(run: ReportRun) -> ReportRun:
    """Claim the run's job and run it to its end in this thread, as the job runner would."""
    claimed = job_claim_batch(runner="test", kinds=list(REPORT_JOB_KINDS), limit=10)
    [mine] = [item for item in claimed if item.id == run.job_id]
    job_run(REPORT_JOB_KINDS[mine.kind], JobContext(mine))
    run.refresh_from_db()
    return run


def parsed(message: Message) -> EmailMessage:
    return email.message_from_bytes(bytes(message.raw), policy=email.policy.default)  # type: ignore[return-value]


@pytest.fixture
def sales(sqlite_source: ExternalDatabase, owner: User, company: object) -> Schedule:
    report = report_make(
        source_make(sqlite_source),
        owner=owner,
        format="xlsx",
        sql="SELECT day, region, amount FROM sales WHERE day >= :p_start AND day < :p_end "
        "ORDER BY id",
        parameters=[{"name": "p", "type": "period", "value": "2026-05-01..2026-05-31"}],
    )
    return schedule_make(
        report,
        subject="{{ report.name }}: {{ run.period }}",
        body="{{ run.rows }} sales.",
        recipient_addresses=["boss@example.net", "Clerk <clerk@example.net>"],
    )


def test_a_run_mails_its_file_as_an_attachment_through_the_outbox(sales: Schedule) -> None:
    run = run_here(schedules.schedule_run_now(actor=None, schedule=sales))
    assert run.status == RunStatus.SENT, run.error
    assert (run.rows, run.is_truncated, run.is_link) == (3, False, False)
    assert run.period == "1–31 May 2026"
    assert run.filename == f"sales-by-day-{run.scheduled_for:%Y-%m-%d}.xlsx"
    message = run.message
    assert message is not None
    assert (message.source, message.lane) == (Source.REPORT, Lane.BULK)
    mail = parsed(message)
    assert mail["Subject"] == "Sales by day: 1–31 May 2026"
    assert mail["From"] == "Acme Office <office@acme.example>"
    assert mail["To"] == "boss@example.net, Clerk <clerk@example.net>"
    body = mail.get_body(preferencelist=("plain",)).get_content()
    assert body.replace("\r\n", "\n").startswith(
        "3 sales.\n\nThe report is attached: sales-by-day-"
    )
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_filename() == run.filename
    assert len(attachment.get_content()) == run.size
    sheet = openpyxl.load_workbook(io.BytesIO(attachment.get_content())).active
    assert [cell.value for cell in sheet[1]] == ["day", "region", "amount"]
    assert sheet["B4"].value == "North" and sheet["C2"].value == 120.5


def test_an_empty_result_is_skipped_when_the_schedule_says_so(sales: Schedule) -> None:
    report = sales.report
    report.parameters = [{"name": "p", "type": "period", "value": "2020-01-01..2020-01-31"}]
    report.save()
    Schedule.objects.filter(pk=sales.pk).update(is_skip_if_empty=True)
    run = run_here(schedules.schedule_run_now(actor=None, schedule=sales))
    assert (run.status, run.rows, run.message) == (RunStatus.SKIPPED, 0, None)
    assert not Message.objects.exists()


def test_a_file_over_the_size_limit_goes_as_a_signed_link_that_works_until_it_expires(
    sales: Schedule, settings: object
) -> None:
    Schedule.objects.filter(pk=sales.pk).update(attach_max_bytes=100)
    run = run_here(schedules.schedule_run_now(actor=None, schedule=sales))
    assert run.status == RunStatus.SENT and run.is_link, run.error
    mail = parsed(run.message)  # type: ignore[arg-type]
    assert not list(mail.iter_attachments())
    body = mail.get_body(preferencelist=("plain",)).get_content()
    link = next(line for line in body.splitlines() if "/reports/download/" in line)
    path = link[link.index("/reports/download/") :]
    client = Client()  # nobody logged in: the link is the credential
    response = client.get(path)
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{run.filename}"'
    assert openpyxl.load_workbook(io.BytesIO(response.content)).active["B2"].value == "North"

    tampered = path.replace(path.split("/")[-2], download_token(run_id=run.pk + 1)[:-3] + "abc")
    assert client.get(tampered).status_code == 404
    other_salt = signing.dumps({"run": run.pk}, salt="something else")
    assert client.get(f"/reports/download/{other_salt}/").status_code == 404

    settings.POSTROOM_REPORT_LINK_DAYS = 0  # type: ignore[attr-defined]
    time.sleep(1.1)  # the link's timestamp counts whole seconds
    expired = client.get(path)
    assert expired.status_code == 404
    assert "This download link has expired" in expired.content.decode()


def test_a_file_whose_link_has_expired_is_gone(sales: Schedule) -> None:
    Schedule.objects.filter(pk=sales.pk).update(attach_max_bytes=0)
    run = run_here(schedules.schedule_run_now(actor=None, schedule=sales))
    RunFile.objects.filter(run=run).update(expires_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    response = Client().get(f"/reports/download/{download_token(run_id=run.pk)}/")
    assert response.status_code == 404


def test_a_failing_query_fails_the_run_in_words_and_mails_only_the_owner(sales: Schedule) -> None:
    report = sales.report
    report.sql = "SELECT nothing_here FROM sales"
    report.save()
    run = run_here(schedules.schedule_run_now(actor=None, schedule=sales))
    assert run.status == RunStatus.FAILED and run.message is None
    assert run.error.startswith("The query names a column the table does not have.")
    [alert] = Message.objects.all()
    mail = parsed(alert)
    assert mail["To"] == "ada <ada@acme.example>"
    assert mail["Subject"] == "Postroom: the report “Sales by day” failed"
    assert run.error in mail.get_body(preferencelist=("plain",)).get_content()


def test_a_run_without_a_company_address_fails_in_words(sales: Schedule, company: object) -> None:
    company.sender_email = ""  # type: ignore[attr-defined]
    company.save()  # type: ignore[attr-defined]
    run = run_here(schedules.schedule_run_now(actor=None, schedule=sales))
    assert run.status == RunStatus.FAILED
    assert run.error.startswith("The company has no email address to send reports from")
    assert not Message.objects.exists()


def test_a_truncated_run_says_so_in_its_email(sales: Schedule, settings: object) -> None:
    settings.POSTROOM_REPORT_MAX_ROWS = 2  # type: ignore[attr-defined]
    run = run_here(schedules.schedule_run_now(actor=None, schedule=sales))
    assert run.status == RunStatus.SENT and run.is_truncated and run.rows == 2
    body = parsed(run.message).get_body(preferencelist=("plain",)).get_content()  # type: ignore[arg-type]
    assert "Truncated: the query returned more than 2 rows; this report holds the first 2." in body


def test_a_run_whose_worker_died_three_times_is_failed_and_the_owner_told(sales: Schedule) -> None:
    run = schedules.schedule_run_now(actor=None, schedule=sales)
    Job.objects.filter(pk=run.job_id).update(attempts=MAX_ATTEMPTS)
    run = run_here(run)
    assert run.status == RunStatus.FAILED
    assert "the worker running it stopped unexpectedly 3 times" in run.error
    assert parsed(Message.objects.get())["To"] == "ada <ada@acme.example>"
