"""Who sees which report, and the reports, schedules and runs they see.

Administrators see and do everything. A report is "given" to others by an administrator: to
whole roles (`shared_roles`) and to single users (`shared_users`). Those people may preview
it, run it and schedule it; only administrators write SQL, change a report and manage data
sources. A schedule is changed by whoever set it up and by administrators; everyone who
sees the report sees its schedules and their history.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from postroom.core.errors import NotFoundError
from postroom.reports.models import DataSource, Report, ReportRun, Schedule


def is_report_admin(user: Any) -> bool:
    return bool(
        user is not None and user.is_authenticated and user.is_active and user.is_administrator
    )


def report_visible_list(*, user: Any) -> QuerySet[Report]:
    reports = Report.objects.select_related("data_source", "owner")
    if is_report_admin(user):
        return reports
    if user is None or not (user.is_authenticated and user.is_active):
        return reports.none()
    # Roles are a short JSON list on a handful of reports: read in Python, the same on
    # SQLite (which cannot search inside JSON lists) and PostgreSQL.
    given_to_role = [
        pk
        for pk, roles in Report.objects.values_list("pk", "shared_roles")
        if isinstance(roles, list) and user.role in roles
    ]
    return reports.filter(Q(owner=user) | Q(shared_users=user) | Q(pk__in=given_to_role)).distinct()


def report_get(*, user: Any, pk: int) -> Report:
    """A report `user` may see; NotFoundError otherwise (one they may not see does not
    exist to them)."""
    report = report_visible_list(user=user).filter(pk=pk).first()
    if report is None:
        raise NotFoundError(f"There is no report {pk}.")
    return report


def schedule_visible_list(*, user: Any) -> QuerySet[Schedule]:
    return Schedule.objects.filter(report__in=report_visible_list(user=user)).select_related(
        "report", "created_by"
    )


def schedule_get(*, user: Any, pk: int) -> Schedule:
    schedule = schedule_visible_list(user=user).filter(pk=pk).first()
    if schedule is None:
        raise NotFoundError(f"There is no report schedule {pk}.")
    return schedule


def schedule_can_change(*, user: Any, schedule: Schedule) -> bool:
    return is_report_admin(user) or (
        user is not None and user.is_authenticated and schedule.created_by_id == user.pk
    )


def run_list(
    *, user: Any, schedule: Schedule | None = None, report: Report | None = None
) -> QuerySet[ReportRun]:
    runs = ReportRun.objects.filter(report__in=report_visible_list(user=user)).select_related(
        "message", "schedule", "report"
    )
    if schedule is not None:
        runs = runs.filter(schedule=schedule)
    if report is not None:
        runs = runs.filter(report=report)
    return runs.order_by("-id")


def run_get(*, user: Any, pk: int) -> ReportRun:
    run = run_list(user=user).filter(pk=pk).first()
    if run is None:
        raise NotFoundError(f"There is no report run {pk}.")
    return run


def data_source_list() -> QuerySet[DataSource]:
    return DataSource.objects.all()


def data_source_get(*, pk: int) -> DataSource:
    source = DataSource.objects.filter(pk=pk).first()
    if source is None:
        raise NotFoundError(f"There is no data source {pk}.")
    return source
