"""/api/v1/reports, /report-schedules and /report-runs (scope `reports`): the reports a key
sees with their schedules, Run now (202), a schedule's history newest first, one run."""

from __future__ import annotations

import pytest

from postroom.accounts.models import ApiScope, Role
from postroom.reports.models import ReportRun, RunStatus
from tests.accounts.factories import user_make
from tests.api.conftest import ApiClient, KeyMaker
from tests.reports.conftest import report_make, schedule_make, source_make
from tests.reports.databases import ExternalDatabase, sqlite_source  # noqa: F401 - a fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def reports_api(key_make: KeyMaker) -> ApiClient:
    _, key = key_make([ApiScope.REPORTS])
    return ApiClient(key)


def test_a_key_without_the_reports_scope_is_refused(key_make: KeyMaker) -> None:
    _, key = key_make([ApiScope.SEND, ApiScope.READ])
    response = ApiClient(key).get("/api/v1/reports")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "missing_scope"


def test_reports_are_listed_with_their_schedules_a_page_at_a_time(
    reports_api: ApiClient,
    sqlite_source: ExternalDatabase,  # noqa: F811
) -> None:
    source = source_make(sqlite_source)
    first = report_make(source, name="Sales")
    schedule = schedule_make(first, frequency="weekdays")
    report_make(None, name="Deliveries", builtin="deliveries")
    page = reports_api.get("/api/v1/reports", {"limit": 1}).json()
    [item] = page["items"]
    assert item["name"] == "Sales" and item["source"] == "ERP (sqlite)"
    assert item["schedules"][0]["id"] == schedule.pk
    assert item["schedules"][0]["when"] == "Monday to Friday at 07:00 (Europe/Berlin)"
    second = reports_api.get("/api/v1/reports", {"cursor": page["next_cursor"]}).json()
    assert [r["name"] for r in second["items"]] == ["Deliveries"]
    assert second["items"][0]["source"] == "postroom" and second["next_cursor"] is None


def test_run_now_answers_202_and_the_run_appears_in_the_history(
    reports_api: ApiClient,
    sqlite_source: ExternalDatabase,  # noqa: F811
) -> None:
    schedule = schedule_make(report_make(source_make(sqlite_source)))
    response = reports_api.post(f"/api/v1/report-schedules/{schedule.pk}/run")
    assert response.status_code == 202
    run = response.json()
    assert (run["status"], run["trigger"], run["schedule_id"]) == ("queued", "manual", schedule.pk)
    assert ReportRun.objects.get(pk=run["id"]).job is not None
    history = reports_api.get(f"/api/v1/report-schedules/{schedule.pk}/runs").json()
    assert [item["id"] for item in history["items"]] == [run["id"]]
    ReportRun.objects.filter(pk=run["id"]).update(status=RunStatus.FAILED, error="The query …")
    one = reports_api.get(f"/api/v1/report-runs/{run['id']}").json()
    assert (one["status"], one["error"], one["message_id"]) == ("failed", "The query …", None)


def test_a_key_of_a_user_sees_only_what_the_user_was_given(
    key_make: KeyMaker,
    sqlite_source: ExternalDatabase,  # noqa: F811
) -> None:
    sam = user_make("sam", role=Role.STAFF, email="sam@acme.example")
    source = source_make(sqlite_source)
    given = report_make(source, name="Sales", shared_roles=["staff"])
    hidden = schedule_make(report_make(source, name="Payroll"))
    _, key = key_make([ApiScope.REPORTS], sender_user=sam)
    api = ApiClient(key)
    assert [r["id"] for r in api.get("/api/v1/reports").json()["items"]] == [given.pk]
    assert api.get(f"/api/v1/reports/{hidden.report_id}").status_code == 404
    assert api.post(f"/api/v1/report-schedules/{hidden.pk}/run").status_code == 404
    assert not ReportRun.objects.exists()


def test_unknown_ids_and_query_parameters_answer_in_json(reports_api: ApiClient) -> None:
    assert reports_api.get("/api/v1/report-runs/999").json()["error"]["code"] == "not_found"
    response = reports_api.get("/api/v1/reports", {"limt": 5})
    assert response.status_code == 400 and response.json()["error"]["field"] == "limt"
