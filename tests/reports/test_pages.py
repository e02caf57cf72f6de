"""The Reports pages, through Django's test client: an administrator connects a database (its
password write-only), writes a report, previews it with its chart and schedules it; a staff
user sees only the reports given to them, runs and schedules those, and is refused the rest."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from postroom.accounts.models import Role, User
from postroom.audit.models import AuditEntry
from postroom.reports.models import DataSource, Report, ReportRun, Schedule
from tests.accounts.factories import PASSWORD, user_make
from tests.reports.conftest import report_make, schedule_make, source_make
from tests.reports.databases import ExternalDatabase

pytestmark = pytest.mark.django_db

SECRET = "s3cret-Pa55word-never-shown"


def logged_in(user: User) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.fixture
def staff() -> User:
    return user_make("sam", role=Role.STAFF, email="sam@acme.example")


def test_an_administrator_connects_a_database_whose_password_is_never_shown(
    owner: User, postgres_source: ExternalDatabase
) -> None:
    client = logged_in(owner)
    response = client.post(
        "/reports/sources/new/",
        {
            "name": "ERP",
            "kind": "postgresql",
            "host": postgres_source.host,
            "port": postgres_source.port,
            "database": postgres_source.name,
            "username": postgres_source.user,
            "password": SECRET,
        },
        follow=True,
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "ERP is saved. Test connection: Connected to " in page
    source = DataSource.objects.get(name="ERP")
    assert source.password_encrypted and SECRET not in source.password_encrypted
    edit = client.get(f"/reports/sources/{source.pk}/edit/").content.decode()
    assert SECRET not in edit and "A password is set." in edit
    entry = AuditEntry.objects.get(action="report_source.created")
    assert entry.changes["Password"] == {"changed": True, "secret": "set"}
    assert SECRET not in str(entry.changes)
    # A blank password keeps the stored one.
    client.post(
        f"/reports/sources/{source.pk}/edit/",
        {
            "name": "ERP",
            "kind": "postgresql",
            "host": postgres_source.host,
            "database": postgres_source.name,
            "username": postgres_source.user,
            "password": "",
        },
    )
    source.refresh_from_db()
    assert source.has_password


def test_test_connection_answers_in_plain_words(
    owner: User, postgres_source: ExternalDatabase
) -> None:
    source = source_make(postgres_source)
    DataSource.objects.filter(pk=source.pk).update(database="nowhere_at_all")
    response = logged_in(owner).post(
        f"/reports/sources/{source.pk}/test/", headers={"HX-Request": "true"}
    )
    assert "The database does not exist on that server: check its name" in response.content.decode()


def test_an_administrator_writes_a_report_and_previews_it_with_its_chart(
    owner: User, sqlite_source: ExternalDatabase
) -> None:
    source = source_make(sqlite_source)
    client = logged_in(owner)
    response = client.post(
        "/reports/new/",
        {
            "name": "Sales by region",
            "source": str(source.pk),
            "format": "pdf",
            "sql": "SELECT region, SUM(amount) AS total FROM sales WHERE day >= :from_day "
            "GROUP BY region ORDER BY region",
            "parameters": "from_day date 2026-05-01",
            "chart": "bar",
            "chart_label_column": "region",
            "chart_value_columns": "total",
        },
    )
    report = Report.objects.get(name="Sales by region")
    assert response.status_code == 302 and response["Location"] == f"/reports/{report.pk}/"
    preview = client.get(f"/reports/{report.pk}/preview/", headers={"HX-Request": "true"})
    html = preview.content.decode()
    assert "<svg" in html and html.count("<rect") == 3
    assert re.search(r"<td>East</td><td>10\.0</td>", html)
    assert "3 rows." in html


def test_a_bad_query_shows_its_error_in_the_preview(
    owner: User, sqlite_source: ExternalDatabase
) -> None:
    report = report_make(source_make(sqlite_source), sql="SELECT nope FROM sales")
    html = logged_in(owner).get(f"/reports/{report.pk}/preview/").content.decode()
    assert "The query names a column the table does not have" in html


def test_staff_see_only_reports_given_to_them_and_may_not_write_any(
    staff: User, sqlite_source: ExternalDatabase
) -> None:
    source = source_make(sqlite_source)
    hidden = report_make(source, name="Payroll")
    given = report_make(source, name="Sales", shared_roles=["staff"])
    client = logged_in(staff)
    listing = client.get("/reports/").content.decode()
    assert "Sales" in listing and "Payroll" not in listing
    assert client.get(f"/reports/{hidden.pk}/").status_code == 404
    assert client.get(f"/reports/{hidden.pk}/preview/").status_code == 404
    for path in ("/reports/new/", "/reports/sources/", f"/reports/{given.pk}/edit/"):
        assert client.get(path).status_code == 403, path
    assert "SELECT" not in client.get(f"/reports/{given.pk}/").content.decode()


def test_staff_schedule_a_report_given_to_them_and_run_it_now(
    staff: User, company: object, sqlite_source: ExternalDatabase
) -> None:
    report = report_make(source_make(sqlite_source), name="Sales")
    report.shared_users.add(staff)
    client = logged_in(staff)
    response = client.post(
        f"/reports/{report.pk}/schedules/new/",
        {
            "frequency": "weekly",
            "time_of_day": "07:30",
            "weekday": "0",
            "time_zone": "Europe/Berlin",
            "subject": "{{ report.name }} {{ run.period }}",
            "body": "Rows: {{ run.rows }}",
            "recipient_addresses": "boss@example.net",
            "attach_max_mb": "5",
        },
    )
    schedule = Schedule.objects.get(report=report)
    assert response["Location"] == f"/reports/schedules/{schedule.pk}/"
    assert schedule.cron == "30 7 * * 1" and schedule.created_by == staff
    client.post(f"/reports/schedules/{schedule.pk}/run/")
    run = ReportRun.objects.get(schedule=schedule)
    assert run.trigger == "manual" and run.job is not None
    page = client.get(f"/reports/schedules/{schedule.pk}/").content.decode()
    assert "Waiting for the worker" in page and "Every Monday at 07:30 (Europe/Berlin)" in page


def test_a_schedule_is_changed_only_by_whoever_set_it_up_or_an_administrator(
    staff: User, sqlite_source: ExternalDatabase
) -> None:
    report = report_make(source_make(sqlite_source), shared_roles=["staff", "marketer"])
    schedule = schedule_make(report, actor=staff)
    other = user_make("mia", role=Role.MARKETER, email="mia@acme.example")
    client = logged_in(other)
    assert client.get(f"/reports/schedules/{schedule.pk}/").status_code == 200
    assert client.get(f"/reports/schedules/{schedule.pk}/edit/").status_code == 403
    client.post(f"/reports/schedules/{schedule.pk}/pause/")
    schedule.refresh_from_db()
    assert not schedule.is_paused
    logged_in(staff).post(f"/reports/schedules/{schedule.pk}/pause/")
    schedule.refresh_from_db()
    assert schedule.is_paused and schedule.next_run_at is None
