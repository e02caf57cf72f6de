"""CSV imports, as the pages drive them: store the upload, check every row, then import.

The steps, each a function a view or a test calls:

1. `import_job_upload` keeps the file in DATA_DIR/imports/ (UTF-8 checked, size capped),
   sniffs the separator and guesses the column mapping (postroom.contacts.import_files).
2. `import_job_check_start` saves the mapping and asks the worker to check every row: a job
   (postroom.queue) that finds rejected rows with their reasons, rows merged by address, and
   the counts and preview of what the import would do (postroom.contacts.import_runs).
3. `import_job_run_start` asks the worker to import them: one transaction, bulk inserts and
   updates in batches. Anything unexpected rolls everything back; the import says what
   failed and nothing is written.

Both run in the worker under a lease, with their progress in the database: a restart of the
web server loses nothing, a worker that dies hands the job on to the next one (which starts
it again: the dead one's writes were rolled back), and two workers never run one at once.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import OperationalError, transaction
from django.utils import timezone

from postroom.accounts.models import User
from postroom.contacts import importing
from postroom.contacts.import_files import (
    files_delete,
    import_job_has_file,
    imports_dir,
    upload_path,
    upload_store,
)
from postroom.contacts.models import ImportJob, ImportStatus
from postroom.core.errors import PostroomError, ValidationError
from postroom.queue.jobs import job_cancel, job_enqueue
from postroom.queue.models import Job, JobState

# 50 MiB is about 500,000 contacts of a hundred bytes each: the largest list a business
# imports at once, checked in a minute or two, and small enough to hold in memory.
# POSTROOM_IMPORT_MAX_BYTES in the settings overrides it.
IMPORT_MAX_BYTES_DEFAULT = 50 * 1024 * 1024
# An unfinished import's upload is removed after two days: long enough to come back to a
# preview the next morning, short enough not to keep personal data lying around.
UPLOAD_KEPT_FOR = timedelta(days=2)
SAMPLE_ROWS = 3
# The job kinds (postroom.contacts.import_runs runs them).
IMPORT_CHECK = "contacts.import_check"
IMPORT_RUN = "contacts.import_run"


@dataclass(frozen=True)
class ImportProgress:
    status: str
    phase: str
    processed: int
    total: int

    @property
    def percent(self) -> int:
        return min(100, self.processed * 100 // self.total) if self.total else 0


def import_max_bytes() -> int:
    return int(getattr(settings, "POSTROOM_IMPORT_MAX_BYTES", IMPORT_MAX_BYTES_DEFAULT))


def import_size_text(size: int) -> str:
    """50 MB, 2.5 MB (in MiB, as file managers count)."""
    return f"{size / (1024 * 1024):.1f}".removesuffix(".0") + " MB"


# 1. Upload.


def import_jobs_expire() -> int:
    """Remove the uploads of imports left unfinished for UPLOAD_KEPT_FOR."""
    cutoff = timezone.now() - UPLOAD_KEPT_FOR
    stale = (
        ImportJob.objects.filter(created_at__lt=cutoff)
        .exclude(stored_name="")
        .exclude(status__in=[ImportStatus.CHECKING, ImportStatus.IMPORTING])
    )
    count = 0
    for job in stale:
        files_delete(job)
        unfinished = job.status in (
            ImportStatus.UPLOADED,
            ImportStatus.CHECKED,
            ImportStatus.FAILED,
        )
        ImportJob.objects.filter(pk=job.pk).update(
            stored_name="",
            status=ImportStatus.CANCELLED if unfinished else job.status,
            error=job.error or "Not imported within two days; the file was removed.",
        )
        count += 1
    return count


def import_job_upload(*, actor: User, upload: UploadedFile) -> ImportJob:
    """Keep an uploaded CSV file and prepare its mapping. Raise ValidationError for a file
    that is too large, empty, not UTF-8 or not CSV."""
    size = upload.size or 0
    if size > import_max_bytes():
        raise ValidationError(
            f"The file is {import_size_text(size)}; the limit is "
            f"{import_size_text(import_max_bytes())}. Split it into smaller files and import "
            "them one after the other: contacts in several files are merged by address.",
            field="file",
        )
    import_jobs_expire()
    stored_name = secrets.token_hex(16)
    path = imports_dir() / f"{stored_name}.csv"
    sample = upload_store(upload, path)
    if not sample.strip():
        path.unlink(missing_ok=True)
        raise ValidationError("The file is empty.", field="file")
    delimiter = importing.delimiter_sniff(sample)
    try:
        headers = importing.header_read(path, delimiter=delimiter)
    except PostroomError:
        path.unlink(missing_ok=True)
        raise
    return ImportJob.objects.create(
        created_by=actor,
        filename=Path(upload.name or "contacts.csv").name[:255],
        stored_name=stored_name,
        size_bytes=size,
        delimiter=delimiter,
        headers=headers,
        mapping={str(index): name for index, name in importing.mapping_guess(headers).items()},
    )


def import_job_delimiter_set(*, job: ImportJob, delimiter: str) -> ImportJob:
    """Read the file again with another separator, guessing the mapping anew."""
    if delimiter not in importing.CANDIDATE_DELIMITERS:
        raise ValidationError("Choose comma, semicolon or tab.", field="delimiter")
    headers = importing.header_read(upload_path(job), delimiter=delimiter)
    job.delimiter = delimiter
    job.headers = headers
    job.mapping = {str(i): name for i, name in importing.mapping_guess(headers).items()}
    job.save(update_fields=["delimiter", "headers", "mapping"])
    return job


def import_job_samples(*, job: ImportJob) -> list[list[str]]:
    """The first few data rows, shown next to each column on the mapping page."""
    samples: list[list[str]] = []
    for _, cells in importing.rows_read(upload_path(job), delimiter=job.delimiter):
        samples.append(cells)
        if len(samples) == SAMPLE_ROWS:
            break
    return samples


def import_job_mapping(job: ImportJob) -> dict[int, str]:
    return {int(index): name for index, name in job.mapping.items() if name}


# 2. Check, 3. import: jobs the worker runs.

MAPPABLE_STATUSES = (ImportStatus.UPLOADED, ImportStatus.CHECKED, ImportStatus.FAILED)


def import_job_check_start(*, job: ImportJob, mapping: dict[int, str]) -> None:
    """Save the mapping and ask the worker to check every row."""
    if job.status not in MAPPABLE_STATUSES or not import_job_has_file(job):
        raise ValidationError("This import can no longer be changed; upload the file again.")
    importing.mapping_check(mapping)
    mapping = {index: name for index, name in mapping.items() if index < len(job.headers)}
    with transaction.atomic():
        claimed = ImportJob.objects.filter(pk=job.pk, status__in=MAPPABLE_STATUSES).update(
            status=ImportStatus.CHECKING,
            mapping={str(index): name for index, name in mapping.items() if name},
            total_rows=0,
            processed_rows=0,
            error="",
        )
        if claimed:
            _job_ask(job, kind=IMPORT_CHECK)


def import_job_run_start(*, job: ImportJob) -> bool:
    """Ask the worker to import a CHECKED job; False if it is not (a second click, say)."""
    with transaction.atomic():
        claimed = ImportJob.objects.filter(pk=job.pk, status=ImportStatus.CHECKED).update(
            status=ImportStatus.IMPORTING, processed_rows=0
        )
        if claimed:
            _job_ask(job, kind=IMPORT_RUN)
    return bool(claimed)


def _job_ask(job: ImportJob, *, kind: str) -> None:
    # The upload is in this host's data directory: a worker on this host runs the job.
    queued = job_enqueue(kind=kind, payload={"import_id": job.pk}, is_local=True)
    ImportJob.objects.filter(pk=job.pk).update(job=queued)
    job.refresh_from_db()


# Cancel, progress, report.


class CancelOutcome(enum.Enum):
    CANCELLED = "cancelled"  # nothing of it runs any more, and nothing was imported
    STOPPING = "stopping"  # the worker stops it at its next step and writes nothing
    FINISHED = "finished"  # too late: it had finished


def import_job_cancel(*, job: ImportJob) -> CancelOutcome:
    """Cancel an import. A running one stops at its next step and writes nothing."""
    if job.status in (ImportStatus.DONE, ImportStatus.CANCELLED):
        return CancelOutcome.FINISHED
    try:
        with transaction.atomic():
            if job.is_running and job.job_id is not None and not job_cancel(job_id=job.job_id):
                return CancelOutcome.STOPPING
            updated = ImportJob.objects.filter(pk=job.pk, status=job.status).update(
                status=ImportStatus.CANCELLED,
                error="Cancelled; nothing was imported.",
                finished_at=timezone.now(),
            )
    except OperationalError:
        # SQLite: the import's one transaction holds the database's write lock until it
        # commits, so nothing can reach it any more.
        raise ValidationError(
            "The import is writing the contacts right now and can no longer be cancelled; "
            "it ends in a moment."
        ) from None
    if not updated:
        return CancelOutcome.FINISHED
    files_delete(job)
    return CancelOutcome.CANCELLED


def import_job_progress(*, job: ImportJob) -> ImportProgress:
    """Where an import is: a running one's progress is its job's, which the worker writes."""
    state = None
    if job.is_running and job.job_id is not None:
        state = Job.objects.filter(pk=job.job_id).first()
    if state is None:
        return ImportProgress(
            job.status, job.get_status_display(), job.processed_rows, job.total_rows
        )
    if state.state == JobState.QUEUED:
        return ImportProgress(
            job.status,
            "Waiting for the worker (`postroom run` runs one; or start `postroom worker`)",
            0,
            0,
        )
    return ImportProgress(
        job.status,
        state.phase or job.get_status_display(),
        state.progress_done,
        state.progress_total,
    )


def import_report_rows(*, job: ImportJob) -> Iterator[list[str]]:
    """The rejected rows as CSV rows: row number, reason, then the file's own columns,
    so the file can be fixed and imported again (the extra columns are ignored)."""
    yield ["Row", "Reason", *job.headers]
    for row, reason, cells in job.report:
        yield [str(row), reason, *cells]
