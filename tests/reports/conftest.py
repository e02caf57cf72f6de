"""Fixtures of the report tests: the external databases (tests/reports/databases.py), data
sources pointing at them, reports and schedules."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from postroom.accounts.models import User
from postroom.company.selectors import company_get
from postroom.reports import schedules, services
from postroom.reports.models import DataSource, Report, Schedule
from tests.accounts.factories import admin_make
from tests.reports.databases import (  # noqa: F401 - fixtures
    ExternalDatabase,
    mariadb_source,
    postgres_source,
    sqlite_source,
)


@pytest.fixture
def owner() -> User:
    return admin_make("ada", email="ada@acme.example")


@pytest.fixture
def company() -> Any:
    company = company_get()
    company.name = "Acme"
    company.sender_email = "office@acme.example"
    company.sender_name = "Acme Office"
    company.save()
    return company


def source_make(
    database: ExternalDatabase, *, actor: User | None = None, name: str = ""
) -> DataSource:
    return services.source_save(
        actor=actor,
        values=services.SourceInput(
            name=name or f"ERP ({database.kind})",
            kind=database.kind,
            host=database.host,
            port=database.port or None,
            database=database.name,
            username=database.user,
            password=database.password,
        ),
    )


def report_make(
    source: DataSource | None,
    *,
    sql: str = "SELECT id, day, region, amount, seller FROM sales ORDER BY id",
    owner: User | None = None,
    **fields: Any,
) -> Report:
    values = services.ReportInput(
        name=fields.pop("name", "Sales by day"),
        data_source_id=source.pk if source else None,
        sql=sql if source else "",
        **fields,
    )
    report = services.report_save(actor=None, values=values)
    if owner is not None:
        Report.objects.filter(pk=report.pk).update(owner=owner)
        report.refresh_from_db()
    return report


def schedule_make(
    report: Report,
    *,
    now: dt.datetime | None = None,
    actor: User | None = None,
    **fields: Any,
) -> Schedule:
    values = schedules.ScheduleInput(
        frequency=fields.pop("frequency", "daily"),
        time_zone=fields.pop("time_zone", "Europe/Berlin"),
        subject=fields.pop("subject", "{{ report.name }} for {{ run.period }}"),
        time_of_day=fields.pop("time_of_day", dt.time(7, 0)),
        recipient_addresses=fields.pop("recipient_addresses", ["boss@example.net"]),
        **fields,
    )
    return schedules.schedule_save(actor=actor, report=report, values=values, now=now)
