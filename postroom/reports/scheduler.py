"""The scheduler: start each due schedule's run, once, in the worker process.

Every few seconds (and at the next due time) the loop claims the due schedules with the
queue's lease claim (postroom.queue.lease: SKIP LOCKED on PostgreSQL, an IMMEDIATE
transaction on SQLite) and, in the same transaction, asks for each one's run (a job of the
job runner, postroom.reports.runs) and moves its `next_run_at` on. The claim, the run and the
next time commit together: two workers on two hosts never start one schedule's time twice,
and a crash in between starts nothing and loses nothing.

A schedule whose times passed while Postroom was not running runs once when it is back, for
the latest of them, and its run says which were missed: mailing a day's report eight times
after a weekend down helps nobody.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging

from django.db import transaction
from django.db.models import Min, Q
from django.utils import timezone

from postroom.core.errors import PostroomError
from postroom.queue.dbthread import DatabaseThread
from postroom.queue.jobs import job_enqueue
from postroom.queue.lease import claim_token_new, lease_claim
from postroom.queue.wake import seconds_until
from postroom.reports.models import ReportRun, RunStatus, RunTrigger, Schedule
from postroom.reports.runs import REPORT_RUN, run_files_expire
from postroom.reports.timing import last_run_until, next_run_after, runs_between, zone_get

logger = logging.getLogger(__name__)

# Look for due schedules at least this often: a schedule saved in another process (the web
# server) is seen within this, and a time is started at most this late.
IDLE_WAKE_SECONDS = 5.0
# Schedules started per transaction: a burst at 08:00 is taken in a few short transactions.
CLAIM_BATCH = 20
# A run started more than this after its time is said to be late (Postroom was not running).
LATE_AFTER = dt.timedelta(minutes=5)
# The shortest wait between two rounds, should a due schedule stay due (another worker holds
# its row a moment longer).
MIN_WAIT_SECONDS = 0.5
# Missed times are counted up to this many (a minutely schedule down for a week has 10,080).
MISSED_COUNTED = 1000


def _due(now: dt.datetime) -> Q:
    return Q(is_paused=False, next_run_at__lte=now)


def schedules_start_due(*, runner: str, now: dt.datetime | None = None) -> dt.datetime | None:
    """Start the run of every due schedule; return when the next one is due."""
    now = now or timezone.now()
    due = Schedule.objects.filter(_due(now))
    while due.exists():
        token = claim_token_new()
        with transaction.atomic():
            claimed = lease_claim(
                due.order_by("next_run_at", "id"),
                limit=CLAIM_BATCH,
                recheck=_due(now),
                claim={"claim_token": token, "claimed_by": runner},
            )
            for schedule in Schedule.objects.filter(claim_token=token).select_related("report"):
                _start(schedule, now=now)
        if claimed < CLAIM_BATCH:
            break
    run_files_expire(now=now)
    return Schedule.objects.filter(is_paused=False).aggregate(at=Min("next_run_at"))["at"]


def _start(schedule: Schedule, *, now: dt.datetime) -> None:
    """Ask for the run of the schedule's latest due time and move it to its next time."""
    first = schedule.next_run_at
    assert first is not None
    cron, zone = schedule.cron, schedule.time_zone
    try:
        later = runs_between(cron, time_zone=zone, after=first, until=now, limit=MISSED_COUNTED)
        is_capped = len(later) == MISSED_COUNTED
        slot = later[-1] if later else first
        if is_capped:  # more were missed than counted: the latest is further on
            slot = last_run_until(cron, time_zone=zone, after=first, until=now) or slot
        following = next_run_after(cron, time_zone=zone, after=now)
    except PostroomError as error:  # a time zone or an expression that no longer works
        _stop_broken(schedule, reason=error.message, now=now)
        return
    missed = len(later)
    is_late = missed > 0 or now - slot > LATE_AFTER
    note = ""
    if is_late:
        note = catch_up_note(
            first=first, slot=slot, missed=missed, is_capped=is_capped, now=now, time_zone=zone
        )
    run = ReportRun.objects.create(
        schedule=schedule,
        report=schedule.report,
        trigger=RunTrigger.CATCH_UP if is_late else RunTrigger.SCHEDULED,
        scheduled_for=slot,
        missed_count=missed,
        note=note,
    )
    run.job = job_enqueue(kind=REPORT_RUN, payload={"run_id": run.pk})
    run.save(update_fields=["job"])
    Schedule.objects.filter(pk=schedule.pk).update(
        next_run_at=following, claim_token="", claimed_by=""
    )


def catch_up_note(
    *,
    first: dt.datetime,
    slot: dt.datetime,
    missed: int,
    is_capped: bool,
    now: dt.datetime,
    time_zone: str,
) -> str:
    """What a late run says in its history and its email."""
    tz = zone_get(time_zone)

    def when(moment: dt.datetime) -> str:
        return f"{moment.astimezone(tz):%Y-%m-%d %H:%M}"

    started = f"It ran at {when(now)}, {_late_words(now - slot)} after its time {when(slot)}"
    if not missed:
        return f"Postroom was not running at its time. {started}."
    count = f"{missed:,} or more" if is_capped else f"{missed:,}"
    return (
        f"Postroom was not running from {when(first)}: {count} earlier time"
        f"{'s' if missed != 1 else ''} of this schedule passed without a run. {started}, "
        "once for all of them."
    )


def _late_words(delay: dt.timedelta) -> str:
    minutes = int(delay.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} minutes"
    hours = minutes // 60
    return f"{hours} hours" if hours < 48 else f"{hours // 24} days"


def _stop_broken(schedule: Schedule, *, reason: str, now: dt.datetime) -> None:
    """Pause a schedule the scheduler cannot compute, with a failed run that says why."""
    Schedule.objects.filter(pk=schedule.pk).update(
        is_paused=True, next_run_at=None, claim_token="", claimed_by=""
    )
    ReportRun.objects.create(
        schedule=schedule,
        report=schedule.report,
        trigger=RunTrigger.SCHEDULED,
        status=RunStatus.FAILED,
        scheduled_for=schedule.next_run_at or now,
        finished_at=now,
        error=f"The schedule was paused: {reason} Correct it and resume the schedule.",
    )


async def run_report_scheduler(*, name: str, stop: asyncio.Event) -> None:
    """Start due schedules' runs until `stop` is set."""
    db = DatabaseThread("postroom-reports")
    try:
        while not stop.is_set():
            try:
                next_at = await db.run(schedules_start_due, runner=name)
            except Exception:  # the database is away (restarting, locked): try again soon
                logger.exception("Starting due report schedules failed; trying again shortly")
                next_at = None
            with contextlib.suppress(TimeoutError):
                wait = max(MIN_WAIT_SECONDS, seconds_until(next_at, cap=IDLE_WAKE_SECONDS))
                await asyncio.wait_for(stop.wait(), wait)
    finally:
        await db.close()
