"""Campaigns: create, change, delete, Send (now or at a time), pause, resume, cancel, test.

Every change writes an audit entry in its transaction. Send freezes the letter into the
outbox's immutable bulk template and asks the worker for the sending job
(postroom.campaigns.expansion); nothing is expanded in a web request. Pause, resume and
cancel act on the campaign's outbox mail at once through the outbox's holds
(postroom.outbox.holds), which the worker sees within a second.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from postroom.accounts.models import Role, User
from postroom.audiences.selectors import list_get, segment_get
from postroom.audit.services import audit_record
from postroom.campaigns import links
from postroom.campaigns.audience import AudienceCounts, audience_counts
from postroom.campaigns.campaign_templates import contact_row, letter_preview, sample_row
from postroom.campaigns.expansion import CAMPAIGN_SEND
from postroom.campaigns.models import (
    RUNNING_STATUSES,
    Campaign,
    CampaignStatus,
    CampaignTemplate,
    SenderKind,
)
from postroom.campaigns.sending import campaign_letter
from postroom.company.selectors import company_get
from postroom.contacts.fields import contact_email_key
from postroom.contacts.models import Contact
from postroom.core.errors import ValidationError
from postroom.mail.addresses import parse_address
from postroom.mail.custom_headers import check_subject
from postroom.outbox import holds
from postroom.outbox.bulk import bulk_template_store
from postroom.outbox.enqueue import message_enqueue_raw
from postroom.outbox.models import Lane, Message, Source
from postroom.queue.jobs import job_cancel, job_enqueue

NAME_MAX_LENGTH = 200
# A test goes to a few people, not to a list: that is what Send is for.
MAX_TEST_ADDRESSES = 10
# Bounds of the throttle and the auto-pause, so a typo cannot mean "never" or "always".
MAX_THROTTLE = 1_000_000
AUTO_PAUSE_WINDOW_RANGE = (10, 100_000)
TEST_SUBJECT_PREFIX = "[Test] "


@dataclass(frozen=True)
class CampaignFields:
    name: str
    subject: str = ""
    template_id: int | None = None
    sender_kind: str = SenderKind.COMPANY
    sender_user_id: int | None = None
    list_ids: Sequence[int] = field(default_factory=tuple)
    segment_ids: Sequence[int] = field(default_factory=tuple)
    scheduled_at: dt.datetime | None = None
    time_zone: str = ""
    throttle_per_minute: int = 0
    throttle_per_hour: int = 0
    auto_pause_window: int = 100
    auto_pause_percent: int = 10


def _name_clean(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise ValidationError("Give the campaign a name.", field="name")
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationError(
            f"The name is {len(name)} characters long; use at most {NAME_MAX_LENGTH}.",
            field="name",
        )
    return name


def _sender_user(fields: CampaignFields) -> User | None:
    if fields.sender_kind not in SenderKind.values:
        raise ValidationError("Choose who the campaign comes from.", field="sender_kind")
    if fields.sender_kind == SenderKind.COMPANY:
        return None
    user = (
        User.objects.filter(pk=fields.sender_user_id, is_active=True).first()
        if fields.sender_user_id is not None
        else None
    )
    if user is None:
        raise ValidationError("Choose an active user to send as.", field="sender_user")
    if not user.email:
        raise ValidationError(
            f"{user.name} has no email address to send from: add one under Users.",
            field="sender_user",
        )
    return user


def _numbers_check(fields: CampaignFields) -> None:
    for name in ("throttle_per_minute", "throttle_per_hour"):
        if not 0 <= getattr(fields, name) <= MAX_THROTTLE:
            raise ValidationError(f"Use 0 (no limit) to {MAX_THROTTLE:,}.", field=name)
    low, high = AUTO_PAUSE_WINDOW_RANGE
    if not low <= fields.auto_pause_window <= high:
        raise ValidationError(
            f"Watch between {low} and {high:,} messages.", field="auto_pause_window"
        )
    if not 1 <= fields.auto_pause_percent <= 100:
        raise ValidationError("Use a share from 1 to 100 %.", field="auto_pause_percent")


def _schedule_check(fields: CampaignFields) -> None:
    if fields.time_zone:
        try:
            zoneinfo.ZoneInfo(fields.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValidationError(
                f"{fields.time_zone!r} is not a time zone; choose one from the list.",
                field="time_zone",
            ) from None
    if fields.scheduled_at is not None and timezone.is_naive(fields.scheduled_at):
        raise ValidationError("Give the time with its time zone.", field="scheduled_at")


def _audience_check(fields: CampaignFields) -> tuple[list[int], list[int]]:
    lists = [list_get(pk=pk).pk for pk in dict.fromkeys(fields.list_ids)]
    segments = [segment_get(pk=pk).pk for pk in dict.fromkeys(fields.segment_ids)]
    return lists, segments


def _template(fields: CampaignFields) -> CampaignTemplate | None:
    if fields.template_id is None:
        return None
    template = CampaignTemplate.objects.filter(pk=fields.template_id).first()
    if template is None:
        raise ValidationError("Choose one of the campaign templates.", field="template")
    return template


def _apply(campaign: Campaign, fields: CampaignFields) -> None:
    """Check `fields` and set them on `campaign` (not saved)."""
    campaign.name = _name_clean(fields.name)
    subject = fields.subject.strip()
    if subject:
        check_subject(subject)
    campaign.subject = subject
    campaign.template = _template(fields)
    campaign.sender_kind = fields.sender_kind
    campaign.sender_user = _sender_user(fields)
    campaign.list_ids, campaign.segment_ids = _audience_check(fields)
    _schedule_check(fields)
    campaign.scheduled_at = fields.scheduled_at
    campaign.time_zone = fields.time_zone
    _numbers_check(fields)
    campaign.throttle_per_minute = fields.throttle_per_minute
    campaign.throttle_per_hour = fields.throttle_per_hour
    campaign.auto_pause_window = fields.auto_pause_window
    campaign.auto_pause_percent = fields.auto_pause_percent


def campaign_create(*, actor: User | None, fields: CampaignFields) -> Campaign:
    campaign = Campaign(created_by=actor)
    _apply(campaign, fields)
    with transaction.atomic():
        campaign.save()
        audit_record(
            actor=actor,
            action="campaign.created",
            subject=f"campaign {campaign.name}",
            changes={"Name": campaign.name},
        )
    return campaign


def _draft_only(campaign: Campaign, what: str) -> None:
    if campaign.status != CampaignStatus.DRAFT:
        raise ValidationError(
            f"This campaign is {campaign.get_status_display().lower()}: only a draft can be {what}."
        )


def campaign_update(*, actor: User | None, campaign: Campaign, fields: CampaignFields) -> Campaign:
    _draft_only(campaign, "changed")
    _apply(campaign, fields)
    with transaction.atomic():
        if not Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.DRAFT).exists():
            raise ValidationError("This campaign was sent meanwhile: it can no longer change.")
        campaign.save()
        audit_record(
            actor=actor,
            action="campaign.changed",
            subject=f"campaign {campaign.name}",
            changes={"Name": campaign.name, "Subject": campaign.subject},
        )
    return campaign


def campaign_delete(*, actor: User | None, campaign: Campaign) -> None:
    _draft_only(campaign, "deleted (a sent campaign keeps its record)")
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="campaign.deleted",
            subject=f"campaign {campaign.name}",
            changes={"Name": campaign.name},
        )
        campaign.delete()


def _audience_nonempty(campaign: Campaign, *, now: dt.datetime) -> AudienceCounts:
    counts = audience_counts(list_ids=campaign.list_ids, segment_ids=campaign.segment_ids, now=now)
    if counts.eligible == 0:
        raise ValidationError(
            f"Nobody in this audience can receive the campaign: {counts.members} contact(s), "
            f"{counts.no_consent} without marketing consent, {counts.suppressed} suppressed.",
            field="list_ids",
        )
    return counts


# What a Send starts from: a campaign sent again after its pre-flight failed starts over.
_FRESH_PROGRESS: dict[str, object] = {
    "is_preflight_done": False,
    "preflight_checked": 0,
    "preflight_failed": 0,
    "preflight_report": [],
    "expanded_through": 0,
    "is_expanded": False,
    "queued_count": 0,
    "skipped_no_consent": 0,
    "skipped_suppressed": 0,
}


def campaign_send(
    *, actor: User | None, campaign: Campaign, now: dt.datetime | None = None
) -> Campaign:
    """Freeze the letter and ask the worker to send: at once, or at `scheduled_at`.

    The pre-flight and the messages are the worker's job; a campaign whose pre-flight
    fails comes back as a draft with the failing rows.
    """
    _draft_only(campaign, "sent")
    now = now or timezone.now()
    fields = campaign_fields(campaign)
    _apply(campaign, fields)  # the lists, segments and sender may have changed since saved
    if not campaign.list_ids and not campaign.segment_ids:
        raise ValidationError("Choose at least one list or segment.", field="list_ids")
    base_url = links.public_url()  # refuses (outside local mode) without POSTROOM_PUBLIC_URL
    is_tracking = company_get().campaign_tracking
    letter = campaign_letter(campaign, is_tracking=is_tracking)
    counts = _audience_nonempty(campaign, now=now)
    starts_at = (
        campaign.scheduled_at if campaign.scheduled_at and campaign.scheduled_at > now else None
    )
    with transaction.atomic():
        template = bulk_template_store(
            from_=letter.from_,
            reply_to=letter.reply_to,
            subject=letter.subject,
            text=letter.text,
            html=letter.html or None,
            headers=letter.headers,
        )
        job = job_enqueue(kind=CAMPAIGN_SEND, payload={"campaign_id": campaign.pk})
        sent = Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.DRAFT).update(
            status=CampaignStatus.SCHEDULED if starts_at else CampaignStatus.SENDING,
            bulk_template=template,
            audience_at=now,
            is_tracking=is_tracking,
            tracked_links=list(letter.tracked_links),
            job=job,
            send_from=starts_at or now,
            started_by=actor,
            started_at=now,
            **_FRESH_PROGRESS,
        )
        if not sent:
            raise ValidationError("This campaign was sent meanwhile.")
        audit_record(
            actor=actor,
            action="campaign.sent",
            subject=f"campaign {campaign.name}",
            changes={
                "When": starts_at.isoformat(timespec="minutes") if starts_at else "now",
                "Audience": counts.eligible,
                "Links to": base_url,
            },
        )
    campaign.refresh_from_db()
    return campaign


def campaign_fields(campaign: Campaign) -> CampaignFields:
    """The campaign's editable fields as stored."""
    return CampaignFields(
        name=campaign.name,
        subject=campaign.subject,
        template_id=campaign.template_id,
        sender_kind=campaign.sender_kind,
        sender_user_id=campaign.sender_user_id,
        list_ids=tuple(campaign.list_ids),
        segment_ids=tuple(campaign.segment_ids),
        scheduled_at=campaign.scheduled_at,
        time_zone=campaign.time_zone,
        throttle_per_minute=campaign.throttle_per_minute,
        throttle_per_hour=campaign.throttle_per_hour,
        auto_pause_window=campaign.auto_pause_window,
        auto_pause_percent=campaign.auto_pause_percent,
    )


def campaign_pause(*, actor: User | None, campaign: Campaign, reason: str = "") -> Campaign:
    """Stop the campaign's mail from starting: the outbox holds what waits (the worker
    sees the hold within a second), and the job stops writing at its next batch."""
    now = timezone.now()
    who = actor.name if actor is not None else "Postroom"
    with transaction.atomic():
        paused = Campaign.objects.filter(pk=campaign.pk, status__in=RUNNING_STATUSES).update(
            status=CampaignStatus.PAUSED,
            paused_at=now,
            paused_reason=reason or f"Paused by {who}.",
        )
        if not paused:
            campaign.refresh_from_db()
            raise ValidationError(
                f"This campaign is {campaign.get_status_display().lower()}: only a scheduled "
                "or sending campaign can be paused."
            )
        if campaign.bulk_template_id is not None:
            holds.bulk_hold(template_id=campaign.bulk_template_id)
        audit_record(
            actor=actor,
            action="campaign.paused",
            subject=f"campaign {campaign.name}",
            changes={"Reason": reason or f"Paused by {who}."},
        )
    campaign.refresh_from_db()
    return campaign


def campaign_resume(*, actor: User | None, campaign: Campaign) -> Campaign:
    """Send again where it stopped: the held mail keeps its spacing, moved on by the length
    of the pause, and a job writes the messages not written yet."""
    now = timezone.now()
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().filter(pk=campaign.pk).first()
        if locked is None or locked.status != CampaignStatus.PAUSED:
            raise ValidationError("Only a paused campaign can be resumed.")
        paused_for = now - (locked.paused_at or now)
        send_from = (locked.send_from or now) + paused_for
        fields: dict[str, object] = {
            "status": CampaignStatus.SCHEDULED if send_from > now else CampaignStatus.SENDING,
            "paused_at": None,
            "paused_reason": "",
            "recent_outcomes": "",
            "send_from": send_from,
        }
        if not (locked.is_preflight_done and locked.is_expanded):
            fields["job"] = job_enqueue(kind=CAMPAIGN_SEND, payload={"campaign_id": locked.pk})
        Campaign.objects.filter(pk=locked.pk).update(**fields)
        if locked.bulk_template_id is not None:
            holds.bulk_resume(template_id=locked.bulk_template_id)
        audit_record(
            actor=actor,
            action="campaign.resumed",
            subject=f"campaign {locked.name}",
            changes={"Paused for": str(paused_for).split(".")[0]},
        )
    campaign.refresh_from_db()
    return campaign


def campaign_cancel(*, actor: User | None, campaign: Campaign) -> Campaign:
    """Stop for good: mail not yet sent is cancelled (a message in the middle of its SMTP
    transaction finishes), and the job writes no more."""
    with transaction.atomic():
        cancelled = Campaign.objects.filter(
            pk=campaign.pk, status__in=[*RUNNING_STATUSES, CampaignStatus.PAUSED]
        ).update(status=CampaignStatus.CANCELLED, finished_at=timezone.now())
        if not cancelled:
            campaign.refresh_from_db()
            raise ValidationError(
                f"This campaign is {campaign.get_status_display().lower()}: there is nothing "
                "to cancel."
            )
        if campaign.bulk_template_id is not None:
            holds.bulk_cancel(template_id=campaign.bulk_template_id)
        if campaign.job_id is not None:
            job_cancel(job_id=campaign.job_id)
        audit_record(
            actor=actor,
            action="campaign.cancelled",
            subject=f"campaign {campaign.name}",
            changes={"Messages written": campaign.queued_count},
        )
    campaign.refresh_from_db()
    return campaign


def campaign_test_send(
    *, actor: User | None, campaign: Campaign, addresses: Sequence[str]
) -> list[Message]:
    """Send the campaign's message to a few addresses now (transactional lane), each filled
    in as the contact with that address (or a sample person), subject marked [Test]."""
    parsed = [parse_address(text, label="Test address", field="addresses") for text in addresses]
    if not parsed:
        raise ValidationError("Enter at least one address to send the test to.", field="addresses")
    if len(parsed) > MAX_TEST_ADDRESSES:
        raise ValidationError(
            f"Send a test to at most {MAX_TEST_ADDRESSES} addresses.", field="addresses"
        )
    letter = campaign_letter(campaign, is_tracking=company_get().campaign_tracking)
    letter = dataclasses.replace(letter, subject=TEST_SUBJECT_PREFIX + letter.subject)
    queued = []
    with transaction.atomic():
        for address in parsed:
            contact = Contact.objects.filter(email_key=contact_email_key(address.addr_spec)).first()
            row = contact_row(contact) if contact else sample_row(address.addr_spec)
            preview = letter_preview(
                letter, row=row, campaign_id=campaign.pk, text_written="", html_written=""
            )
            queued.append(
                message_enqueue_raw(
                    envelope_from=letter.from_.addr_spec,
                    recipients=[address.addr_spec],
                    raw=preview.raw,
                    source=Source.TEST,
                    lane=Lane.TRANSACTIONAL,
                    sender_user=actor,
                )
            )
        audit_record(
            actor=actor,
            action="campaign.tested",
            subject=f"campaign {campaign.name}",
            changes={"To": ", ".join(address.addr_spec for address in parsed)},
        )
    return queued


def campaign_tracking_set(*, actor: User, is_on: bool) -> None:
    """Turn open and click tracking on or off for campaigns sent from now on (administrators:
    it is the company's privacy decision)."""
    if actor.role != Role.ADMINISTRATOR:
        raise ValidationError("Only an administrator can change tracking.")
    company = company_get()
    with transaction.atomic():
        company.campaign_tracking = is_on
        company.save(update_fields=["campaign_tracking"])
        audit_record(
            actor=actor,
            action="company.campaign_tracking",
            subject="campaign tracking",
            changes={"Tracking": "on" if is_on else "off"},
        )
