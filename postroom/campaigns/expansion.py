"""Sending a campaign: a job of the worker's job runner (postroom.queue.runner), under a lease.

1. Pre-flight: render the message of every recipient, exactly as the worker will, before the
   first message exists. Rows that fail are reported on the campaign (up to
   `REPORT_ROWS`), which goes back to draft: no campaign is half sent because of one bad row.
2. Expansion: walk the audience in keyset batches by contact id (never the whole audience in
   memory) and write, per batch and in one transaction, one outbox bulk message per
   recipient (postroom.outbox.bulk.bulk_enqueue), its `CampaignRecipient` row (unique per
   campaign and contact) and the checkpoint: the last contact id written. The checkpoint
   moves only from the value this run read, and only while the campaign is running and
   this job is its job, so a paused or cancelled campaign, or a second runner, writes
   nothing. A crash at any moment loses at most the batch in flight, which the next run
   (the runner's lease ends, another takes the job) writes again from the checkpoint.

The throttle spaces the messages' send times (`not_before_at`): message n of the campaign is
due `n / rate` seconds after the first, so the outbox sends them no faster, on top of the
relay's own limits. The outbox does the sending, the retries and the suppression check at
send time; this job only writes.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import math
from collections.abc import Iterator
from typing import Any

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from postroom.campaigns import links
from postroom.campaigns.audience import AudienceBatch, audience_batch, audience_members
from postroom.campaigns.models import (
    RUNNING_STATUSES,
    Campaign,
    CampaignRecipient,
    CampaignStatus,
)
from postroom.campaigns.sending import recipient_values
from postroom.company.selectors import company_get
from postroom.contacts.models import Contact
from postroom.core.errors import PostroomError
from postroom.mail.addresses import Address
from postroom.mail.bulk import CompiledTemplate
from postroom.mail.custom_headers import check_subject
from postroom.mail.header_text import check_header_text
from postroom.outbox import holds
from postroom.outbox.bulk import bulk_enqueue, bulk_template_compiled, rows_insert
from postroom.outbox.models import BulkTemplate, Source
from postroom.queue.jobs import ClaimedJob, JobCancelledError, JobKind
from postroom.queue.runner import JobContext

logger = logging.getLogger(__name__)

CAMPAIGN_SEND = "campaigns.send"
# Contacts per batch: one transaction each. Small enough that on SQLite the write lock is
# held for tens of milliseconds (the worker records outcomes and people queue mail in
# between), large enough to amortise the audience query.
BATCH = 500
# Pre-flight reports this many failing rows (their count is always whole).
REPORT_ROWS = 200


class _Stopped(Exception):  # noqa: N818 - a signal, not an error
    """The campaign stopped running (paused, cancelled) or another job took it over."""


def campaign_send_run(context: JobContext) -> None:
    """Pre-flight, then expansion, from wherever an earlier run stopped."""
    campaign = _running_campaign(context)
    if campaign is None:
        return
    job = _Job(campaign, context)
    if not campaign.is_preflight_done and not job.preflight():
        return
    job.expand()


def _running_campaign(context: JobContext) -> Campaign | None:
    campaign = (
        Campaign.objects.select_related("bulk_template")
        .filter(pk=context.job.payload["campaign_id"])
        .first()
    )
    if campaign is None or campaign.job_id != context.job.id:
        return None  # deleted, or a later job (after a resume) has it
    if campaign.status not in RUNNING_STATUSES:
        return None  # paused or cancelled before this job started
    return campaign


class _Job:
    def __init__(self, campaign: Campaign, context: JobContext) -> None:
        assert campaign.bulk_template_id is not None and campaign.audience_at is not None
        self.campaign = campaign
        self.context = context
        self.company_name = company_get().name
        self.links = links.LinkMaker(base=links.public_url(), campaign_id=campaign.pk)
        template: BulkTemplate = campaign.bulk_template  # type: ignore[assignment]
        self.template = template
        self.mailto = template.from_address
        self.members: QuerySet[Contact] = audience_members(
            list_ids=campaign.list_ids, segment_ids=campaign.segment_ids, now=campaign.audience_at
        )

    def _ours(self) -> QuerySet[Campaign]:
        """The campaign's row while it runs and this job is its job."""
        return Campaign.objects.filter(
            pk=self.campaign.pk, status__in=RUNNING_STATUSES, job_id=self.context.job.id
        )

    def _batches(self, after: int) -> Iterator[AudienceBatch]:
        while (batch := audience_batch(self.members, after=after, size=BATCH)) is not None:
            yield batch
            after = batch.last_id

    def _values(self, row: Any) -> dict[str, Any]:
        return recipient_values(
            row=row,
            company_name=self.company_name,
            links_for=self.links,
            mailto_address=self.mailto,
            is_tracking=self.campaign.is_tracking,
        )

    # Pre-flight.

    def preflight(self) -> bool:
        """Render every recipient's message; True when all rendered."""
        compiled = bulk_template_compiled(self.template.pk)
        total = self.members.count()
        self.context.phase("Pre-flight: rendering every recipient's message", total=total)
        checked = failed = 0
        report: list[list[Any]] = []
        for batch in self._batches(after=0):
            if not self._ours().exists():
                return False  # paused or cancelled meanwhile: a resume starts it again
            for row in batch.rows:
                problem = self._render_problem(compiled, row)
                if problem:
                    failed += 1
                    if len(report) < REPORT_ROWS:
                        report.append([row.contact_id, row.email, problem])
            checked += len(batch.rows)
            self.context.step(checked + batch.no_consent + batch.suppressed)
        with transaction.atomic():
            fields: dict[str, Any] = {"preflight_checked": checked, "preflight_failed": failed}
            if failed:
                fields.update(status=CampaignStatus.DRAFT, preflight_report=report)
            else:
                fields.update(is_preflight_done=True, preflight_report=[])
            if not self._ours().update(**fields):
                return False
            if failed:
                self.context.finish()
        return not failed

    def _render_problem(self, compiled: CompiledTemplate, row: Any) -> str:
        """What stops this recipient's message, in words ("" for nothing).

        Every merged field is filled and checked as the worker's renderer checks it (a line
        break a value puts in the subject or a header, a value with no text form); the MIME
        encoding that follows cannot fail on checked text, so it is left to the worker: a
        tenth of the cost of rendering whole messages twice.
        """
        try:
            email = compiled.merged_email(to=Address(row.name, row.email), values=self._values(row))
            check_subject(email.subject)
            for name, value in email.headers.items():
                check_header_text(value, label=f"Header {name}", what="the value", field="headers")
            for part in (email.text, email.html):
                (part or "").encode("utf-8")
        except PostroomError as error:
            return error.message
        except UnicodeEncodeError:
            return "A merged value contains an invalid character (a lone surrogate)."
        return ""

    # Expansion.

    def expand(self) -> None:
        campaign = self.campaign
        self.context.phase("Writing the messages", total=self.members.count())
        checkpoint, written = campaign.expanded_through, 0
        position = campaign.queued_count  # the next message's place in the throttle
        for batch in self._batches(after=checkpoint):
            self.context.check()
            try:
                self._write(batch, checkpoint=checkpoint, position=position)
            except _Stopped:
                self._stopped()
                return
            checkpoint, position = batch.last_id, position + len(batch.rows)
            written += len(batch.rows) + batch.no_consent + batch.suppressed
            self.context.step(written)
        with transaction.atomic():
            if self._ours().filter(expanded_through=checkpoint).update(is_expanded=True):
                self.context.finish()

    def _write(self, batch: AudienceBatch, *, checkpoint: int, position: int) -> None:
        """Write one batch and move the checkpoint, all or nothing."""
        recipients = [(Address(row.name, row.email), self._values(row)) for row in batch.rows]
        with transaction.atomic():
            moved = (
                self._ours()
                .filter(expanded_through=checkpoint)
                .update(
                    expanded_through=batch.last_id,
                    queued_count=F("queued_count") + len(recipients),
                    skipped_no_consent=F("skipped_no_consent") + batch.no_consent,
                    skipped_suppressed=F("skipped_suppressed") + batch.suppressed,
                )
            )
            if not moved:
                raise _Stopped
            for due, group in _throttled(recipients, campaign=self.campaign, position=position):
                bulk_enqueue(
                    template=self.template,
                    recipients=group,
                    source=Source.CAMPAIGN,
                    not_before_at=due,
                )
            rows_insert(
                CampaignRecipient(campaign_id=self.campaign.pk, contact_id=0, address=""),
                ("contact_id", "address"),
                [(row.contact_id, row.email) for row in batch.rows],
            )

    def _stopped(self) -> None:
        """The campaign was paused or cancelled meanwhile (or is another job's): end here;
        Resume asks for a new job, which goes on from the checkpoint."""
        with transaction.atomic():
            self.context.finish()


def throttle_rate(campaign: Campaign) -> float | None:
    """Messages per second the throttle allows, or None for no throttle."""
    rates = [
        limit / seconds
        for limit, seconds in (
            (campaign.throttle_per_minute, 60),
            (campaign.throttle_per_hour, 3600),
        )
        if limit
    ]
    return min(rates) if rates else None


def _throttled(
    recipients: list[Any], *, campaign: Campaign, position: int
) -> Iterator[tuple[dt.datetime | None, list[Any]]]:
    """The recipients in groups that fall due together: one group (due at the campaign's
    start) without a throttle; with one, message n falls due `n / rate` seconds (whole
    seconds) after the start."""
    start = campaign.send_from
    rate = throttle_rate(campaign)
    if rate is None:
        yield (start if start and start > timezone.now() else None), recipients
        return
    assert start is not None
    numbered = zip(itertools.count(position), recipients, strict=False)
    for second, group in itertools.groupby(numbered, key=lambda item: math.floor(item[0] / rate)):
        yield start + dt.timedelta(seconds=second), [recipient for _, recipient in group]


def campaign_send_stopped(claimed: ClaimedJob, error: Exception) -> None:
    """The job failed, was cancelled or given up: a running campaign is paused with the
    reason, so that nobody wonders why it stopped (Resume asks for a new job)."""
    if isinstance(error, JobCancelledError):
        return  # the campaign's own cancel or pause asked for it
    reason = error.message if isinstance(error, PostroomError) else f"{type(error).__name__}"
    mine = Campaign.objects.filter(
        pk=claimed.payload["campaign_id"], job_id=claimed.id, status__in=RUNNING_STATUSES
    )
    template_id = mine.values_list("bulk_template_id", flat=True).first()
    paused = mine.update(
        status=CampaignStatus.PAUSED,
        paused_at=timezone.now(),
        paused_reason=f"Writing the messages stopped on an error: {reason}. Resume to go on.",
    )
    if paused and template_id is not None:
        holds.bulk_hold(template_id=template_id)  # what was written waits with the rest


CAMPAIGN_JOB_KINDS = {
    CAMPAIGN_SEND: JobKind(run=campaign_send_run, stopped=campaign_send_stopped),
}
