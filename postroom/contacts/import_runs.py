"""The two jobs of a CSV import, run by the worker's job runner (postroom.queue.runner).

- Check (`import_check_run`): count and check every row, merge rows by address, compare with
  the existing contacts; keep the checked rows in a file and the counts, preview and
  rejected rows on the import. Nothing is written to the contacts.
- Import (`import_run`): plan again against the contacts as they are now and write the plan
  in one transaction, which also marks the import and its job done: all or nothing.

Each reports its progress through its JobContext, where a cancel request (or the worker
stopping) takes effect: the job raises, its transaction rolls back, and `import_stopped`
says so on the import.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import F
from django.dispatch import Signal
from django.utils import timezone

from postroom.audit.services import audit_record
from postroom.contacts import import_plan, import_store, importing
from postroom.contacts.import_files import (
    checked_path,
    checked_rows_read,
    checked_rows_write,
    files_delete,
    upload_path,
)
from postroom.contacts.import_jobs import IMPORT_CHECK, IMPORT_RUN, import_job_mapping
from postroom.contacts.import_plan import ExistingContact, ImportPlan
from postroom.contacts.importing import ParsedRow, Rejection, RowContext
from postroom.contacts.models import ImportJob, ImportStatus
from postroom.core.errors import PostroomError
from postroom.queue.jobs import ClaimedJob, JobCancelledError, JobKind
from postroom.queue.lease import writers_serialise
from postroom.queue.runner import JobContext

logger = logging.getLogger(__name__)

# Progress is reported every this many rows checked: often enough for a bar polled twice a
# second, rarely enough to cost nothing beside checking an address.
CHECK_STEP_ROWS = 500

# Sent inside an import's transaction once its contacts are written, with `job` (the
# ImportJob) and `keys` (the address keys of every contact its file named: created, updated,
# merged or unchanged). A receiver's writes are part of the import, and a receiver that
# raises rolls the whole import back. Apps above contacts react without contacts knowing
# them: postroom.audiences adds the contacts to the list an import was made for.
import_written = Signal()


def _import_of(context: JobContext, status: ImportStatus) -> ImportJob | None:
    """The import this job works on, if it still waits for it (it may have been cancelled)."""
    job = ImportJob.objects.select_related("created_by").get(pk=context.job.payload["import_id"])
    if job.status != status or job.job_id != context.job.id:
        return None
    return job


def _consent_source(job: ImportJob) -> str:
    who = job.created_by.get_username() if job.created_by else "Postroom"
    return f"CSV import of {job.filename} by {who}"[:200]


# Check.


def import_check_run(context: JobContext) -> None:
    """Check every row of an import in CHECKING; it ends CHECKED (or stopped: see below)."""
    job = _import_of(context, ImportStatus.CHECKING)
    if job is None:
        return
    total, merged, merged_count, rejections = _rows_check(job, context)
    existing = _existing_contacts(list(merged), context)
    plan = import_plan.plan_make(merged, existing, now=timezone.now(), source=_consent_source(job))
    checked_rows_write(job, merged)
    with transaction.atomic():
        checked = ImportJob.objects.filter(pk=job.pk, status=ImportStatus.CHECKING).update(
            status=ImportStatus.CHECKED,
            processed_rows=total,
            total_rows=total,
            created_count=len(plan.creates),
            updated_count=len(plan.updates),
            unchanged_count=plan.unchanged,
            merged_count=merged_count,
            rejected_count=len(rejections),
            preview=plan.preview,
            report=[[rejection.row, rejection.reason, rejection.cells] for rejection in rejections],
        )
        context.finish()
    if not checked:  # cancelled meanwhile, and its files removed: remove ours too
        checked_path(job).unlink(missing_ok=True)


def _rows_check(
    job: ImportJob, context: JobContext
) -> tuple[int, dict[str, ParsedRow], int, list[Rejection]]:
    """Check every row: the number of rows, the valid ones merged by address, how many
    were merged, and the rejected ones."""
    path = upload_path(job)
    context.phase("Counting rows")
    total = importing.rows_count(path, delimiter=job.delimiter)
    context.phase("Checking every row", total=total)
    row_context = RowContext(
        mapping=import_job_mapping(job),
        column_count=len(job.headers),
        tz=timezone.get_default_timezone(),
        now=timezone.now(),
    )
    parsed: list[ParsedRow] = []
    rejections: list[Rejection] = []
    for count, (row, cells) in enumerate(importing.rows_read(path, delimiter=job.delimiter), 1):
        result = importing.row_parse(cells, row=row, context=row_context)
        if isinstance(result, ParsedRow):
            parsed.append(result)
        elif isinstance(result, Rejection):
            rejections.append(result)
        if count % CHECK_STEP_ROWS == 0:
            context.step(count)
    context.step(total)
    merged, merged_count = importing.rows_merge(parsed)
    return total, merged, merged_count, rejections


def _existing_contacts(keys: list[str], context: JobContext) -> dict[str, ExistingContact]:
    context.phase("Comparing with the existing contacts", total=len(keys))
    return import_store.existing_contacts(keys, progress=context.step)


# Import.


def import_run(context: JobContext) -> None:
    """Import an import in IMPORTING, all or nothing; it ends DONE (or stopped: see below)."""
    job = _import_of(context, ImportStatus.IMPORTING)
    if job is None:
        return
    context.phase("Reading the checked rows")
    merged = checked_rows_read(job)
    # On SQLite this transaction holds the database's one write lock until it commits, so
    # the progress inside it cannot be written: say what happens before it starts.
    context.phase(f"Writing {len(merged):,} contacts, all or nothing, in one transaction")
    context.flush()
    with transaction.atomic():
        writers_serialise(
            IMPORT_RUN, on_wait=lambda: context.phase("Waiting for another import to finish")
        )
        existing = _existing_contacts(list(merged), context)
        plan = import_plan.plan_make(
            merged, existing, now=timezone.now(), source=_consent_source(job)
        )
        context.phase("Writing contacts", total=len(plan.creates) + len(plan.updates))
        created = import_store.plan_write(plan, actor=job.created_by, progress=context.step)
        import_written.send(sender=ImportJob, job=job, keys=list(merged))
        context.check()  # a cancel that came during the last batch still rolls it all back
        _import_done(job, plan, created, context)
    files_delete(job)


def _import_done(
    job: ImportJob, plan: ImportPlan, created: tuple[int, int], context: JobContext
) -> None:
    """Mark the import and its job done and audit it, inside the import's transaction."""
    organizations_created, tags_created = created
    # Conditional: an import cancelled meanwhile is not marked done, and raising here
    # rolls its writes back.
    done = ImportJob.objects.filter(pk=job.pk, status=ImportStatus.IMPORTING).update(
        status=ImportStatus.DONE,
        processed_rows=F("total_rows"),
        created_count=len(plan.creates),
        updated_count=len(plan.updates),
        unchanged_count=plan.unchanged,
        finished_at=timezone.now(),
        stored_name="",
    )
    if not done:
        raise JobCancelledError("The import was cancelled; nothing was imported.")
    context.finish()
    audit_record(
        actor=job.created_by,
        action="contacts.imported",
        subject=f"import {job.filename}",
        changes={
            "File": job.filename,
            "Contacts created": len(plan.creates),
            "Contacts updated": len(plan.updates),
            "Unchanged": plan.unchanged,
            "Rows merged by address": job.merged_count,
            "Rows rejected": job.rejected_count,
            "Companies created": organizations_created,
            "Tags created": tags_created,
        },
    )


# Stopped: failed, cancelled, or given up.


def import_stopped(claimed: ClaimedJob, error: Exception) -> None:
    """Say on the import why its job stopped (in the transaction that records that)."""
    if isinstance(error, JobCancelledError):
        status, message = ImportStatus.CANCELLED, "The import was cancelled; nothing was imported."
    elif isinstance(error, PostroomError):
        status, message = ImportStatus.FAILED, f"Nothing was imported. {error.message}"
    else:
        status = ImportStatus.FAILED
        # The database's own words (a constraint, a lock) help whoever looks into it.
        detail = f"{type(error).__name__}: {error}"[:500]
        message = (
            "The import stopped on an unexpected error and nothing was imported (all or "
            f"nothing). {detail}. Try again; if it fails again, give this message to your "
            "administrator."
        )
    import_id = claimed.payload["import_id"]
    stopped = ImportJob.objects.filter(
        pk=import_id,
        job_id=claimed.id,
        status__in=[ImportStatus.CHECKING, ImportStatus.IMPORTING],
    ).update(status=status, error=message, finished_at=timezone.now())
    if stopped and status == ImportStatus.CANCELLED:
        job = ImportJob.objects.get(pk=import_id)
        transaction.on_commit(lambda: files_delete(job))


IMPORT_JOB_KINDS = {
    IMPORT_CHECK: JobKind(run=import_check_run, stopped=import_stopped),
    IMPORT_RUN: JobKind(run=import_run, stopped=import_stopped),
}
