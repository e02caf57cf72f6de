"""The scheduler starts each due time once: a run and its job, and the schedule moved to its
next time; times missed while Postroom was down run once and say so; two workers racing for
one due schedule start one run; a paused schedule waits, and resumes from its next time."""

from __future__ import annotations

import datetime as dt
import threading
import time
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from postroom.core.errors import ValidationError
from postroom.queue.models import Job
from postroom.reports import schedules
from postroom.reports.models import ReportRun, RunStatus, RunTrigger, Schedule
from postroom.reports.runs import REPORT_RUN
from postroom.reports.scheduler import schedules_start_due
from tests.reports.conftest import report_make, schedule_make, source_make
from tests.reports.databases import ExternalDatabase

BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=BERLIN)


@pytest.fixture
def daily(sqlite_source: ExternalDatabase) -> Schedule:
    """A report mailed every day at 07:00 Berlin time, set up on 1 June at noon."""
    report = report_make(source_make(sqlite_source))
    return schedule_make(report, now=at("2026-06-01T12:00"), time_of_day=dt.time(7, 0))


@pytest.mark.django_db
def test_a_due_schedule_gets_one_run_and_moves_to_its_next_time(daily: Schedule) -> None:
    assert daily.next_run_at == at("2026-06-02T07:00")
    assert schedules_start_due(runner="w1", now=at("2026-06-02T06:59")) == at("2026-06-02T07:00")
    assert not ReportRun.objects.exists()

    next_due = schedules_start_due(runner="w1", now=at("2026-06-02T07:00:02"))
    run = ReportRun.objects.get()
    assert (run.trigger, run.status, run.scheduled_for) == (
        RunTrigger.SCHEDULED,
        RunStatus.QUEUED,
        at("2026-06-02T07:00"),
    )
    assert run.missed_count == 0 and run.note == ""
    assert (
        run.job is not None and run.job.kind == REPORT_RUN and run.job.payload == {"run_id": run.pk}
    )
    daily.refresh_from_db()
    assert daily.next_run_at == next_due == at("2026-06-03T07:00")
    assert daily.claim_token == ""
    schedules_start_due(runner="w1", now=at("2026-06-02T07:00:05"))
    assert ReportRun.objects.count() == 1


@pytest.mark.django_db
def test_times_missed_while_postroom_was_down_run_once_and_say_so(daily: Schedule) -> None:
    # Down from the evening of 1 June to 10:30 on 5 June: 2, 3, 4 and 5 June at 07:00 passed.
    schedules_start_due(runner="w1", now=at("2026-06-05T10:30"))
    run = ReportRun.objects.get()
    assert run.trigger == RunTrigger.CATCH_UP
    assert run.scheduled_for == at("2026-06-05T07:00")  # relative dates resolve at the latest
    assert run.missed_count == 3
    assert run.note == (
        "Postroom was not running from 2026-06-02 07:00: 3 earlier times of this schedule "
        "passed without a run. It ran at 2026-06-05 10:30, 3 hours after its time "
        "2026-06-05 07:00, once for all of them."
    )
    daily.refresh_from_db()
    assert daily.next_run_at == at("2026-06-06T07:00")
    assert Job.objects.filter(kind=REPORT_RUN).count() == 1


@pytest.mark.django_db
def test_a_run_started_late_without_a_missed_time_says_it_was_late(daily: Schedule) -> None:
    schedules_start_due(runner="w1", now=at("2026-06-02T08:00"))
    run = ReportRun.objects.get()
    assert run.trigger == RunTrigger.CATCH_UP and run.missed_count == 0
    assert run.note == (
        "Postroom was not running at its time. It ran at 2026-06-02 08:00, 60 minutes after "
        "its time 2026-06-02 07:00."
    )


@pytest.mark.django_db
def test_a_paused_schedule_waits_and_resumes_from_its_next_time(daily: Schedule) -> None:
    schedules.schedule_pause(actor=None, schedule=daily)
    schedules_start_due(runner="w1", now=at("2026-06-04T09:00"))
    assert not ReportRun.objects.exists()
    schedules.schedule_resume(actor=None, schedule=daily, now=at("2026-06-04T09:00"))
    daily.refresh_from_db()
    assert daily.next_run_at == at("2026-06-05T07:00")  # the paused days do not run


@pytest.mark.django_db
def test_a_schedule_that_cannot_be_computed_is_paused_with_a_failed_run(daily: Schedule) -> None:
    Schedule.objects.filter(pk=daily.pk).update(time_zone="Nowhere/Atlantis")
    schedules_start_due(runner="w1", now=at("2026-06-02T07:01"))
    daily.refresh_from_db()
    assert daily.is_paused and daily.next_run_at is None
    run = ReportRun.objects.get()
    assert run.status == RunStatus.FAILED
    assert run.error.startswith("The schedule was paused: “Nowhere/Atlantis” is not a time zone")


@pytest.mark.django_db(transaction=True)
def test_two_workers_and_one_due_schedule_make_one_run(daily: Schedule) -> None:
    """Two schedulers, each on its own database connection, claim at the same moment."""
    barrier = threading.Barrier(2)
    failures: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            barrier.wait(5)
            schedules_start_due(runner=name, now=at("2026-06-02T07:00:01"))
        except BaseException as error:  # handed to the test's thread
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not failures, failures
    assert ReportRun.objects.count() == 1
    assert Job.objects.filter(kind=REPORT_RUN).count() == 1
    daily.refresh_from_db()
    assert daily.next_run_at == at("2026-06-03T07:00")


@pytest.mark.django_db(transaction=True)
def test_many_workers_racing_over_many_due_schedules_start_each_once(
    sqlite_source: ExternalDatabase,
) -> None:
    report = report_make(source_make(sqlite_source))
    made = [
        schedule_make(report, now=at("2026-06-01T12:00"), time_of_day=dt.time(7, n))
        for n in range(30)
    ]
    barrier = threading.Barrier(3)

    def worker(name: str) -> None:
        try:
            barrier.wait(5)
            schedules_start_due(runner=name, now=at("2026-06-02T08:00"))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(ReportRun.objects.values_list("schedule_id", flat=True)) == sorted(
        schedule.pk for schedule in made
    )


@pytest.mark.django_db
def test_a_minutely_schedule_down_for_a_week_runs_once_for_its_latest_minute(
    sqlite_source: ExternalDatabase,
) -> None:
    report = report_make(source_make(sqlite_source))
    schedule = schedule_make(report, now=at("2026-06-01T12:00"), frequency="cron", cron="* * * * *")
    started = time.monotonic()
    schedules_start_due(runner="w1", now=at("2026-06-08T12:00:30"))
    assert time.monotonic() - started < 2  # inside the claim's transaction: it must be quick
    run = ReportRun.objects.get()
    assert run.scheduled_for == at("2026-06-08T12:00")
    assert run.missed_count == 1000
    assert "1,000 or more earlier times of this schedule passed without a run" in run.note
    schedule.refresh_from_db()
    assert schedule.next_run_at == at("2026-06-08T12:01")


@pytest.mark.django_db
def test_a_cron_expression_naming_no_real_day_is_refused_when_saved(
    sqlite_source: ExternalDatabase,
) -> None:
    report = report_make(source_make(sqlite_source))
    with pytest.raises(ValidationError, match="names no time that exists"):
        schedule_make(report, frequency="cron", cron="0 7 30 2 *")
