"""A report's run: a job of the worker's job runner (postroom.queue.runner).

The job reads the report (postroom.reports.execution), makes its file
(postroom.reports.documents) and queues its email (postroom.reports.mailing), and records
the outcome on the run in the transaction that queues the email and ends the job, so a run is
mailed once or not at all. Every failure a person can fix (the query, the data, the
recipients, the company address) marks the run failed with its reason and mails the owner;
anything else reaches `run_stopped` through the job runner, which does the same. Nothing a
report holds can stop the worker.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.utils import timezone

from postroom.core.errors import PostroomError
from postroom.queue.jobs import ClaimedJob, JobCancelledError, JobKind
from postroom.queue.runner import JobContext
from postroom.reports.links import download_url, link_lifetime
from postroom.reports.mailing import Document, failure_mail, merge_context, report_mail
from postroom.reports.models import ReportRun, RunFile, RunStatus
from postroom.reports.table import truncation_note
from postroom.reports.timing import zone_get

logger = logging.getLogger(__name__)

REPORT_RUN = "reports.run"


def _run_of(context: JobContext) -> ReportRun | None:
    run = (
        ReportRun.objects.select_related(
            "report", "report__data_source", "report__owner", "schedule", "schedule__created_by"
        )
        .filter(pk=context.job.payload["run_id"])
        .first()
    )
    if run is None or run.job_id != context.job.id:
        return None
    if run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
        return None
    return run


def report_run_job(context: JobContext) -> None:
    """Run a report and mail it; the run ends sent, skipped or failed."""
    # Imported when a report runs, not when the worker starts: SQLAlchemy, openpyxl and
    # fpdf2 (with Pillow and fontTools) are some 40 MB that a worker which runs no report
    # should not carry (bench/campaign.py measures the worker's memory).
    from postroom.reports.documents import document_make
    from postroom.reports.execution import report_result

    run = _run_of(context)
    if run is None:
        return
    ReportRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, started_at=timezone.now())
    context.phase("Running the query")
    tz = zone_get(run.schedule.time_zone)
    try:
        result = report_result(run.report, now=run.scheduled_for, tz=tz)
        context.phase("Writing the file")
        document = document_make(
            run.report, result.table, tz=tz, day=run.scheduled_for.astimezone(tz).date()
        )
    except PostroomError as error:
        _failed(run, error.message, context)
        return
    context.check()
    table = result.table
    fields = {
        "rows": table.row_count,
        "is_truncated": table.is_truncated,
        "parameters": result.resolved.shown,
        "period": result.resolved.period[:200],
        "size": len(document.data),
        "filename": document.filename,
    }
    if table.row_count == 0 and run.schedule.is_skip_if_empty:
        with transaction.atomic():
            _finish(run, status=RunStatus.SKIPPED, **fields)
            context.finish()
        return
    context.phase("Queuing the email")
    context_values = merge_context(
        report_name=run.report.name,
        description=run.report.description,
        period=result.resolved.period,
        rows=table.row_count,
        date=f"{run.scheduled_for.astimezone(tz):%Y-%m-%d}",
        is_truncated=table.is_truncated,
    )
    notes = [truncation_note(table)] if table.is_truncated else []
    if run.note:
        notes.append(run.note)
    try:
        with transaction.atomic():
            link = _stored_link(run, document)
            message = report_mail(
                run=run, document=document, context=context_values, link=link, notes=notes
            )
            _finish(run, status=RunStatus.SENT, message=message, is_link=link is not None, **fields)
            context.finish()
    except PostroomError as error:
        _failed(run, error.message, context, **fields)


def _stored_link(run: ReportRun, document: Document) -> str | None:
    """Above the schedule's size limit, keep the file for the link and return the link."""
    if len(document.data) <= run.schedule.attach_max_bytes:
        return None
    link = download_url(run_id=run.pk)  # ConfigurationError without a public address
    RunFile.objects.update_or_create(
        run=run,
        defaults={
            "content_type": document.content_type,
            "data": document.data,
            "expires_at": timezone.now() + link_lifetime(),
        },
    )
    return link


def _finish(run: ReportRun, *, status: str, **fields: object) -> None:
    ReportRun.objects.filter(pk=run.pk).update(status=status, finished_at=timezone.now(), **fields)


def _failed(run: ReportRun, reason: str, context: JobContext, **fields: object) -> None:
    with transaction.atomic():
        _finish(run, status=RunStatus.FAILED, error=reason, **fields)
        failure_mail(run=run, reason=reason)
        context.finish()


def run_stopped(claimed: ClaimedJob, error: Exception) -> None:
    """The job ended without finishing (an unexpected error, a cancel, the worker dying
    three times): the run is failed with the reason, and its owner is told."""
    if isinstance(error, JobCancelledError):
        reason = "The run was cancelled; nothing was sent."
    elif isinstance(error, PostroomError):
        reason = error.message
    else:
        detail = f"{type(error).__name__}: {error}"[:500]
        reason = (
            f"The run stopped on an unexpected error and nothing was sent ({detail}). Use Run "
            "now to try again; if it fails again, give this message to your administrator."
        )
    run = (
        ReportRun.objects.select_related(
            "report", "report__owner", "schedule", "schedule__created_by"
        )
        .filter(
            pk=int(claimed.payload.get("run_id") or 0),
            job_id=claimed.id,
            status__in=[RunStatus.QUEUED, RunStatus.RUNNING],
        )
        .first()
    )
    if run is None:
        return
    _finish(run, status=RunStatus.FAILED, error=reason)
    failure_mail(run=run, reason=reason)


def run_files_expire(*, now: dt.datetime | None = None) -> int:
    """Delete the files whose links have expired; how many."""
    expired = RunFile.objects.filter(expires_at__lte=now or timezone.now())
    if not expired.exists():  # most rounds: no write (SQLite's one write lock)
        return 0
    deleted, _ = expired.delete()
    return deleted


REPORT_JOB_KINDS = {REPORT_RUN: JobKind(run=report_run_job, stopped=run_stopped)}
