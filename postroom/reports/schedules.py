"""Schedules of a report: set up, change, pause, resume, Run now, each audited.

Whoever was given a report (postroom.reports.selectors) may schedule it, and changes their own
schedules; administrators change every schedule. A schedule's next time is computed here when
it is saved or resumed, and by the scheduler after each run (postroom.reports.scheduler).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from postroom.accounts.models import User
from postroom.audit.services import audit_record
from postroom.contacts.models import Contact
from postroom.core.errors import PermissionDeniedError, ValidationError
from postroom.mail.addresses import parse_address
from postroom.queue.jobs import job_enqueue
from postroom.reports import selectors
from postroom.reports.mailing import letter_check
from postroom.reports.models import Frequency, Report, ReportRun, RunTrigger, Schedule
from postroom.reports.runs import REPORT_RUN
from postroom.reports.timing import cron_clean, next_run_after, preset_cron, zone_get

# One email to more people than this is a mailing list, which campaigns are for
# (postroom.api.schemas.MAX_RECIPIENTS_PER_FIELD is the same bound).
MAX_RECIPIENTS = 1000
# A subject is one header line, folded: far below RFC 5322's 998 characters a line, and longer
# than any subject a person reads.
SUBJECT_MAX = 500


@dataclass(frozen=True)
class ScheduleInput:
    frequency: str
    time_zone: str
    subject: str
    time_of_day: dt.time | None = None
    weekday: int | None = None
    month_day: int | None = None
    cron: str = ""
    body: str = ""
    recipient_user_ids: list[int] = field(default_factory=list)
    recipient_contact_ids: list[int] = field(default_factory=list)
    recipient_addresses: list[str] = field(default_factory=list)
    is_skip_if_empty: bool = False
    attach_max_bytes: int | None = None


def schedule_clean(values: ScheduleInput) -> dict[str, Any]:
    zone_get(values.time_zone)
    if values.frequency == Frequency.CRON:
        cron = cron_clean(values.cron)
    else:
        cron = preset_cron(
            frequency=values.frequency,
            time_of_day=values.time_of_day,
            weekday=values.weekday,
            month_day=values.month_day,
        )
    subject = values.subject.strip()
    if not subject:
        raise ValidationError("Write the email's subject.", field="subject")
    if len(subject) > SUBJECT_MAX:
        raise ValidationError(f"A subject has at most {SUBJECT_MAX} characters.", field="subject")
    letter_check(subject=subject, body=values.body)
    addresses = [
        parse_address(text, label="Recipient", field="recipient_addresses").formatted
        for text in values.recipient_addresses
        if text.strip()
    ]
    limit = values.attach_max_bytes
    if limit is None:
        limit = settings.POSTROOM_REPORT_ATTACH_MAX_BYTES
    if not 0 <= limit <= settings.POSTROOM_MAX_MESSAGE_BYTES:
        raise ValidationError(
            "The size limit is at most the largest message Postroom sends "
            f"({settings.POSTROOM_MAX_MESSAGE_BYTES:,} bytes).",
            field="attach_max_bytes",
        )
    is_preset = values.frequency != Frequency.CRON
    return {
        "frequency": values.frequency,
        "time_of_day": values.time_of_day if is_preset else None,
        "weekday": values.weekday if values.frequency == Frequency.WEEKLY else None,
        "month_day": values.month_day if values.frequency == Frequency.MONTHLY else None,
        "cron": cron,
        "time_zone": values.time_zone,
        "subject": subject,
        "body": values.body,
        "recipient_addresses": list(dict.fromkeys(addresses)),
        "is_skip_if_empty": values.is_skip_if_empty,
        "attach_max_bytes": limit,
    }


_FIELDS = (
    ("cron", "When (cron)"),
    ("time_zone", "Time zone"),
    ("subject", "Subject"),
    ("body", "Body"),
    ("recipient_addresses", "Recipient addresses"),
    ("is_skip_if_empty", "Skip if empty"),
    ("attach_max_bytes", "Attach up to (bytes)"),
)


def schedule_save(
    *,
    actor: User | None,
    report: Report,
    values: ScheduleInput,
    schedule: Schedule | None = None,
    now: dt.datetime | None = None,
) -> Schedule:
    """Set up (schedule None) or change a schedule of `report`, which `actor` must see."""
    if actor is not None:
        selectors.report_get(user=actor, pk=report.pk)  # NotFoundError when not given it
    if schedule is not None and actor is not None:
        _change_check(actor, schedule)
    clean = schedule_clean(values)
    users = list(User.objects.filter(pk__in=values.recipient_user_ids, is_active=True))
    contacts = list(Contact.objects.filter(pk__in=values.recipient_contact_ids))
    if len(users) + len(contacts) + len(clean["recipient_addresses"]) > MAX_RECIPIENTS:
        raise ValidationError(
            f"A schedule mails at most {MAX_RECIPIENTS} people.", field="recipients"
        )
    if not (users or contacts or clean["recipient_addresses"]):
        raise ValidationError("Add at least one recipient.", field="recipient_addresses")
    now = now or timezone.now()
    with transaction.atomic():
        is_new = schedule is None
        schedule = schedule or Schedule(report=report, created_by=actor)
        changes: dict[str, Any] = {}
        for name, label in _FIELDS:
            old = None if is_new else getattr(schedule, name)
            if old != clean[name]:
                changes[label] = {"from": old, "to": clean[name]}
        for name, value in clean.items():
            setattr(schedule, name, value)
        if not schedule.is_paused:
            schedule.next_run_at = next_run_after(
                schedule.cron, time_zone=schedule.time_zone, after=now
            )
        schedule.save()
        changes.update(_people_set(schedule, users, contacts, is_new=is_new))
        if changes:
            audit_record(
                actor=actor,
                action="report_schedule.created" if is_new else "report_schedule.updated",
                subject=f"schedule {schedule.pk} of report {report.name}",
                changes=changes,
            )
    return schedule


def _people_set(
    schedule: Schedule, users: list[User], contacts: list[Contact], *, is_new: bool
) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    old_users = (
        set() if is_new else set(schedule.recipient_users.values_list("username", flat=True))
    )
    if old_users != {user.username for user in users}:
        schedule.recipient_users.set(users)
        changes["Recipient users"] = {
            "from": sorted(old_users),
            "to": sorted(u.username for u in users),
        }
    old_contacts = (
        set() if is_new else set(schedule.recipient_contacts.values_list("email", flat=True))
    )
    if old_contacts != {contact.email for contact in contacts}:
        schedule.recipient_contacts.set(contacts)
        changes["Recipient contacts"] = {
            "from": sorted(old_contacts),
            "to": sorted(c.email for c in contacts),
        }
    return changes


def _change_check(actor: User, schedule: Schedule) -> None:
    if not selectors.schedule_can_change(user=actor, schedule=schedule):
        raise PermissionDeniedError(
            "Only whoever set up this schedule, or an administrator, may change it."
        )


def _audit(actor: User | None, action: str, schedule: Schedule, changes: dict[str, Any]) -> None:
    audit_record(
        actor=actor,
        action=action,
        subject=f"schedule {schedule.pk} of report {schedule.report.name}",
        changes=changes,
    )


def schedule_pause(*, actor: User | None, schedule: Schedule) -> None:
    if actor is not None:
        _change_check(actor, schedule)
    with transaction.atomic():
        if Schedule.objects.filter(pk=schedule.pk, is_paused=False).update(
            is_paused=True, next_run_at=None
        ):
            _audit(
                actor, "report_schedule.paused", schedule, {"Paused": {"from": False, "to": True}}
            )
    schedule.refresh_from_db()


def schedule_resume(
    *, actor: User | None, schedule: Schedule, now: dt.datetime | None = None
) -> None:
    """Resume from the next time after now: the times passed while paused do not run."""
    if actor is not None:
        _change_check(actor, schedule)
    following = next_run_after(
        schedule.cron, time_zone=schedule.time_zone, after=now or timezone.now()
    )
    with transaction.atomic():
        if Schedule.objects.filter(pk=schedule.pk, is_paused=True).update(
            is_paused=False, next_run_at=following
        ):
            _audit(
                actor, "report_schedule.resumed", schedule, {"Paused": {"from": True, "to": False}}
            )
    schedule.refresh_from_db()


def schedule_delete(*, actor: User | None, schedule: Schedule) -> None:
    if actor is not None:
        _change_check(actor, schedule)
    with transaction.atomic():
        _audit(actor, "report_schedule.deleted", schedule, {"Runs": schedule.runs.count()})
        schedule.delete()


def schedule_run_now(*, actor: User | None, schedule: Schedule) -> ReportRun:
    """Run the schedule's report now and mail it to its recipients (paused or not): anyone
    who sees the report may."""
    if actor is not None:
        selectors.schedule_get(user=actor, pk=schedule.pk)
    with transaction.atomic():
        run = ReportRun.objects.create(
            schedule=schedule,
            report=schedule.report,
            trigger=RunTrigger.MANUAL,
            scheduled_for=timezone.now(),
            requested_by=actor if actor is not None and actor.is_authenticated else None,
        )
        run.job = job_enqueue(kind=REPORT_RUN, payload={"run_id": run.pk})
        run.save(update_fields=["job"])
        _audit(actor, "report_schedule.run_now", schedule, {"Run": run.pk})
    return run
