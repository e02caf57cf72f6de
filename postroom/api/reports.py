"""/api/v1/reports, /report-schedules and /report-runs: the reports, Run now, and each
schedule's run history (scope `reports`).

A key restricted to a user (its sender user) sees what that user was given; any other key
sees every report. Report writing and data sources stay on the pages: SQL is written by an
administrator, logged in. Run now is answered at once (202): the run is a job of the worker,
and its status, rows, size and outbox message appear on the run as it goes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Field, Path, Query, Router, Schema, Status
from pydantic import ConfigDict

from postroom.accounts.models import ApiScope
from postroom.api.auth import ApiKeyAuth, request_api_key
from postroom.api.cursors import MAX_ID, cursor_decode, cursor_encode
from postroom.api.schemas import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    error_responses,
    query_check_known,
)
from postroom.core.errors import NotFoundError
from postroom.queue.keyset import keyset_page
from postroom.reports import schedules, selectors
from postroom.reports.models import Report, ReportRun, Schedule
from postroom.reports.timing import schedule_describe

router = Router(tags=["Reports"])
REPORT_CURSOR = "r1"
RUN_CURSOR = "rr1"
_AUTH = ApiKeyAuth(ApiScope.REPORTS)


class _Strict(Schema):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ScheduleOut(Schema):
    id: int
    report_id: int
    when: str = Field(description="In words, such as “Monday to Friday at 07:00 (Europe/Berlin)”.")
    cron: str
    time_zone: str
    is_paused: bool
    next_run_at: dt.datetime | None
    subject: str


class ReportOut(Schema):
    id: int
    name: str
    description: str
    source: str = Field(description="The data source's name, or “postroom” for a built-in report.")
    format: str
    schedules: list[ScheduleOut]


class ReportListOut(Schema):
    items: list[ReportOut]
    next_cursor: str | None


class RunOut(Schema):
    id: int
    report_id: int
    schedule_id: int
    trigger: str = Field(
        description="scheduled, catch_up (late, after Postroom was down) or manual"
    )
    status: str = Field(description="queued, running, sent, skipped or failed")
    scheduled_for: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    rows: int | None
    is_truncated: bool
    size: int | None = Field(description="The file's bytes.")
    filename: str
    is_link: bool = Field(
        description="Mailed as a signed download link, being over the size limit."
    )
    period: str
    parameters: dict[str, str]
    message_id: int | None = Field(description="The outbox message (see /messages/{id}).")
    message_status: str | None
    missed_count: int
    note: str
    error: str


class RunListOut(Schema):
    items: list[RunOut]
    next_cursor: str | None


class PageQuery(_Strict):
    cursor: str | None = Field(None, max_length=100)
    limit: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)


def _user(request: HttpRequest) -> Any:
    """Whose view the key has: its sender user's, or None for every report."""
    return request_api_key(request).sender_user


def _reports(request: HttpRequest) -> Any:
    user = _user(request)
    if user is None:
        return Report.objects.select_related("data_source")
    return selectors.report_visible_list(user=user)


def _schedule_out(schedule: Schedule) -> dict[str, Any]:
    return {
        "id": schedule.pk,
        "report_id": schedule.report_id,
        "when": schedule_describe(
            frequency=schedule.frequency,
            cron=schedule.cron,
            time_of_day=schedule.time_of_day,
            weekday=schedule.weekday,
            month_day=schedule.month_day,
            time_zone=schedule.time_zone,
        ),
        "cron": schedule.cron,
        "time_zone": schedule.time_zone,
        "is_paused": schedule.is_paused,
        "next_run_at": schedule.next_run_at,
        "subject": schedule.subject,
    }


def _report_out(report: Report) -> dict[str, Any]:
    return {
        "id": report.pk,
        "name": report.name,
        "description": report.description,
        "source": report.data_source.name if report.data_source else "postroom",
        "format": report.format,
        "schedules": [_schedule_out(s) for s in report.schedules.order_by("id")],
    }


def run_out(run: ReportRun) -> dict[str, Any]:
    message = run.message
    return {
        "id": run.pk,
        "report_id": run.report_id,
        "schedule_id": run.schedule_id,
        "trigger": run.trigger,
        "status": run.status,
        "scheduled_for": run.scheduled_for,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "rows": run.rows,
        "is_truncated": run.is_truncated,
        "size": run.size,
        "filename": run.filename,
        "is_link": run.is_link,
        "period": run.period,
        "parameters": run.parameters,
        "message_id": message.pk if message else None,
        "message_status": message.status if message else None,
        "missed_count": run.missed_count,
        "note": run.note,
        "error": run.error,
    }


def _report(request: HttpRequest, report_id: int) -> Report:
    report = _reports(request).filter(pk=report_id).first()
    if report is None:
        raise NotFoundError(f"There is no report {report_id}.")
    return report


def _schedule(request: HttpRequest, schedule_id: int) -> Schedule:
    schedule = (
        Schedule.objects.select_related("report")
        .filter(pk=schedule_id, report__in=_reports(request))
        .first()
    )
    if schedule is None:
        raise NotFoundError(f"There is no report schedule {schedule_id}.")
    return schedule


@router.get(
    "/reports",
    response={200: ReportListOut, **error_responses()},
    auth=_AUTH,
    operation_id="report_list",
    summary="List the reports",
    description="Ordered by id, each with its schedules. Follow `next_cursor` for the next page.",
)
def report_list(request: HttpRequest, query: Query[PageQuery]) -> dict[str, Any]:
    query_check_known(request, PageQuery)
    after = cursor_decode(query.cursor, kind=REPORT_CURSOR) if query.cursor else None
    page = keyset_page(_reports(request), size=query.limit, descending=False, following=after)
    return {
        "items": [_report_out(report) for report in page.rows],
        "next_cursor": cursor_encode(kind=REPORT_CURSOR, pk=page.following)
        if page.following
        else None,
    }


@router.get(
    "/reports/{report_id}",
    response={200: ReportOut, **error_responses(404)},
    auth=_AUTH,
    operation_id="report_get",
    summary="Get a report and its schedules",
)
def report_get(request: HttpRequest, report_id: int = Path(..., ge=1, le=MAX_ID)) -> dict[str, Any]:
    return _report_out(_report(request, report_id))


@router.post(
    "/report-schedules/{schedule_id}/run",
    response={202: RunOut, **error_responses(404)},
    auth=_AUTH,
    operation_id="report_schedule_run",
    summary="Run a schedule now",
    description="Runs the report now and mails it to the schedule's recipients, paused or not. "
    "Answered at once: follow the run at /report-runs/{id}.",
)
def report_schedule_run(
    request: HttpRequest, schedule_id: int = Path(..., ge=1, le=MAX_ID)
) -> Status[dict[str, Any]]:
    schedule = _schedule(request, schedule_id)
    run = schedules.schedule_run_now(actor=_user(request), schedule=schedule)
    return Status(202, run_out(run))


@router.get(
    "/report-schedules/{schedule_id}/runs",
    response={200: RunListOut, **error_responses(404)},
    auth=_AUTH,
    operation_id="report_schedule_runs",
    summary="A schedule's run history",
    description="Newest first. Follow `next_cursor` for older runs.",
)
def report_schedule_runs(
    request: HttpRequest, query: Query[PageQuery], schedule_id: int = Path(..., ge=1, le=MAX_ID)
) -> dict[str, Any]:
    query_check_known(request, PageQuery)
    schedule = _schedule(request, schedule_id)
    after = cursor_decode(query.cursor, kind=RUN_CURSOR) if query.cursor else None
    page = keyset_page(
        ReportRun.objects.filter(schedule=schedule).select_related("message"),
        size=query.limit,
        following=after,
    )
    return {
        "items": [run_out(run) for run in page.rows],
        "next_cursor": cursor_encode(kind=RUN_CURSOR, pk=page.following)
        if page.following
        else None,
    }


@router.get(
    "/report-runs/{run_id}",
    response={200: RunOut, **error_responses(404)},
    auth=_AUTH,
    operation_id="report_run_get",
    summary="Get a run",
)
def report_run_get(
    request: HttpRequest, run_id: int = Path(..., ge=1, le=MAX_ID)
) -> dict[str, Any]:
    run = (
        ReportRun.objects.select_related("message")
        .filter(pk=run_id, report__in=_reports(request))
        .first()
    )
    if run is None:
        raise NotFoundError(f"There is no report run {run_id}.")
    return run_out(run)
