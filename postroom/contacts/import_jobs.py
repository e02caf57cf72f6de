"""CSV import jobs: store the upload, check every row, then import in one transaction.

The steps, each a function a view or a test calls:

1. `import_job_upload` keeps the file in DATA_DIR/imports/ (UTF-8 checked, size capped),
   sniffs the separator and guesses the column mapping.
2. `import_job_check_start` saves the mapping and checks every row in a background thread
   (`import_job_check`): rejected rows with their reasons, rows merged by address, and the
   counts and preview of what the import would do. The checked rows go to a JSON Lines file
   next to the upload, so the import does not validate 100,000 addresses a second time.
3. `import_job_run_start` imports them in a background thread (`import_job_run`): one
   transaction, bulk inserts and updates in batches. Anything unexpected rolls everything
   back; the job says what failed and nothing is written.

Progress is written to the ImportJob row while checking. While importing, the transaction
holds SQLite's write lock, so no other connection could write progress: it is kept in this
process's memory (postroom.contacts.import_threads) and shown from there. A job whose thread
died with its process is noticed by `runner` (this process) or by a stale heartbeat (another
process), and failed.
"""

from __future__ import annotations

import codecs
import json
import logging
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import OperationalError, transaction
from django.db.models import F
from django.utils import timezone

from postroom.accounts.models import User
from postroom.audit.services import audit_record
from postroom.contacts import import_plan, import_store, import_threads, importing
from postroom.contacts.import_plan import ExistingContact
from postroom.contacts.import_threads import (
    RUNNER,
    ImportCancelledError,
    LiveProgress,
    ProgressReporter,
)
from postroom.contacts.importing import ParsedRow, Rejection, RowContext
from postroom.contacts.models import ImportJob, ImportStatus
from postroom.core.errors import PostroomError, ValidationError

logger = logging.getLogger(__name__)

# 50 MiB is about 500,000 contacts of a hundred bytes each: the largest list a business
# imports at once, checked in a minute or two, and small enough to hold in memory.
# POSTROOM_IMPORT_MAX_BYTES in the settings overrides it.
IMPORT_MAX_BYTES_DEFAULT = 50 * 1024 * 1024
# An unfinished import's upload is removed after two days: long enough to come back to a
# preview the next morning, short enough not to keep personal data lying around.
UPLOAD_KEPT_FOR = timedelta(days=2)
# A running job whose heartbeat is older than this in another process was interrupted.
# The longest silent step is the write transaction of a 50 MiB file (about two minutes).
INTERRUPTED_AFTER = timedelta(minutes=15)
SAMPLE_ROWS = 3


@dataclass(frozen=True)
class ImportProgress:
    status: str
    phase: str
    processed: int
    total: int

    @property
    def percent(self) -> int:
        return min(100, self.processed * 100 // self.total) if self.total else 0


# One import writes at a time: on SQLite a second would wait for the write lock and fail.
_write_lock = threading.Lock()


def import_max_bytes() -> int:
    return int(getattr(settings, "POSTROOM_IMPORT_MAX_BYTES", IMPORT_MAX_BYTES_DEFAULT))


def imports_dir() -> Path:
    directory = Path(settings.DATA_DIR) / "imports"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _upload_path(job: ImportJob) -> Path:
    return imports_dir() / f"{job.stored_name}.csv"


def _checked_path(job: ImportJob) -> Path:
    return imports_dir() / f"{job.stored_name}.checked.jsonl"


def import_job_has_file(job: ImportJob) -> bool:
    return bool(job.stored_name) and _upload_path(job).exists()


def _files_delete(job: ImportJob) -> None:
    if job.stored_name:
        _upload_path(job).unlink(missing_ok=True)
        _checked_path(job).unlink(missing_ok=True)


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
        _files_delete(job)
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


def _store_upload(upload: UploadedFile, path: Path) -> str:
    """Copy the upload to `path`, checking it is UTF-8; return the start of its text."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    sample: list[str] = []
    sample_length = 0
    try:
        with path.open("wb") as stored:
            for chunk in upload.chunks():
                stored.write(chunk)
                text = decoder.decode(chunk)
                if sample_length < importing.SNIFF_CHARS:
                    sample.append(text)
                    sample_length += len(text)
            sample.append(decoder.decode(b"", final=True))
    except UnicodeDecodeError:
        path.unlink(missing_ok=True)
        raise ValidationError(
            'The file is not UTF-8 text. In Excel choose File › Save As › "CSV UTF-8 '
            '(Comma delimited)"; in LibreOffice tick "Edit filter settings" and choose '
            "Unicode (UTF-8).",
            field="file",
        ) from None
    return "".join(sample)[: importing.SNIFF_CHARS]


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
    sample = _store_upload(upload, path)
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
    headers = importing.header_read(_upload_path(job), delimiter=delimiter)
    job.delimiter = delimiter
    job.headers = headers
    job.mapping = {str(i): name for i, name in importing.mapping_guess(headers).items()}
    job.save(update_fields=["delimiter", "headers", "mapping", "heartbeat_at"])
    return job


def import_job_samples(*, job: ImportJob) -> list[list[str]]:
    """The first few data rows, shown next to each column on the mapping page."""
    samples: list[list[str]] = []
    for _, cells in importing.rows_read(_upload_path(job), delimiter=job.delimiter):
        samples.append(cells)
        if len(samples) == SAMPLE_ROWS:
            break
    return samples


def import_job_mapping(job: ImportJob) -> dict[int, str]:
    return {int(index): name for index, name in job.mapping.items() if name}


# 2. Check.

MAPPABLE_STATUSES = (ImportStatus.UPLOADED, ImportStatus.CHECKED, ImportStatus.FAILED)


def import_job_check_start(*, job: ImportJob, mapping: dict[int, str]) -> None:
    """Save the mapping and start checking every row in the background."""
    if job.status not in MAPPABLE_STATUSES or not import_job_has_file(job):
        raise ValidationError("This import can no longer be changed; upload the file again.")
    importing.mapping_check(mapping)
    mapping = {index: name for index, name in mapping.items() if index < len(job.headers)}
    claimed = ImportJob.objects.filter(pk=job.pk, status__in=MAPPABLE_STATUSES).update(
        status=ImportStatus.CHECKING,
        mapping={str(index): name for index, name in mapping.items() if name},
        runner=RUNNER,
        total_rows=0,
        processed_rows=0,
        error="",
        heartbeat_at=timezone.now(),
    )
    if claimed:
        import_threads.thread_start(job.pk, import_job_check)


def _consent_source(job: ImportJob) -> str:
    who = job.created_by.get_username() if job.created_by else "Postroom"
    return f"CSV import of {job.filename} by {who}"[:200]


def _progress_save(job_id: int, live: LiveProgress) -> None:
    try:
        ImportJob.objects.filter(pk=job_id).update(
            total_rows=live.total, processed_rows=live.processed, heartbeat_at=timezone.now()
        )
    except OperationalError:
        # SQLite busy with another import's transaction: progress can wait, the check
        # goes on (the page shows the in-memory figures meanwhile).
        logger.debug("import %s: progress not saved, database busy", job_id)


def _rows_check(
    job: ImportJob, reporter: ProgressReporter
) -> tuple[int, dict[str, ParsedRow], int, list[Rejection]]:
    """Check every row: the number of rows, the valid ones merged by address, how many
    were merged, and the rejected ones."""
    path = _upload_path(job)
    reporter.phase("Counting rows")
    total = importing.rows_count(path, delimiter=job.delimiter)
    reporter.phase("Checking every row", total=total)
    context = RowContext(
        mapping=import_job_mapping(job),
        column_count=len(job.headers),
        tz=timezone.get_default_timezone(),
        now=timezone.now(),
    )
    parsed: list[ParsedRow] = []
    rejections: list[Rejection] = []
    for count, (row, cells) in enumerate(importing.rows_read(path, delimiter=job.delimiter), 1):
        result = importing.row_parse(cells, row=row, context=context)
        if isinstance(result, ParsedRow):
            parsed.append(result)
        elif isinstance(result, Rejection):
            rejections.append(result)
        if count % 500 == 0:
            reporter.step(count)
    reporter.step(total)
    merged, merged_count = importing.rows_merge(parsed)
    return total, merged, merged_count, rejections


def _existing_contacts(keys: list[str], reporter: ProgressReporter) -> dict[str, ExistingContact]:
    reporter.phase("Comparing with the existing contacts", total=len(keys))
    return import_store.existing_contacts(keys, progress=reporter.step)


def _checked_rows_write(job: ImportJob, merged: dict[str, ParsedRow]) -> None:
    def encoded(value: Any) -> Any:
        return {"$datetime": value.isoformat()} if isinstance(value, datetime) else value

    with _checked_path(job).open("w", encoding="utf-8") as stream:
        for parsed in merged.values():
            values = {name: encoded(value) for name, value in parsed.values.items()}
            line = [parsed.row, parsed.email, parsed.key, values, parsed.tags]
            stream.write(json.dumps(line, ensure_ascii=False) + "\n")


def _checked_rows_read(job: ImportJob) -> dict[str, ParsedRow]:
    def decoded(value: Any) -> Any:
        if isinstance(value, dict) and "$datetime" in value:
            return datetime.fromisoformat(value["$datetime"])
        return value

    path = _checked_path(job)
    if not path.exists():
        raise ValidationError("The checked rows are gone. Check the file again, then import.")
    merged: dict[str, ParsedRow] = {}
    with path.open(encoding="utf-8") as stream:
        for line in stream:
            row, email, key, values, tags = json.loads(line)
            values = {name: decoded(value) for name, value in values.items()}
            merged[key] = ParsedRow(row=row, email=email, key=key, values=values, tags=tags)
    return merged


def _report(rejections: list[Rejection]) -> list[list[Any]]:
    return [[rejection.row, rejection.reason, rejection.cells] for rejection in rejections]


def import_job_check(*, job_id: int) -> None:
    """Check every row of a job in CHECKING; it ends CHECKED, FAILED or CANCELLED."""
    job = ImportJob.objects.select_related("created_by").get(pk=job_id)
    reporter = ProgressReporter(job_id, "Starting", save=partial(_progress_save, job_id))
    try:
        total, merged, merged_count, rejections = _rows_check(job, reporter)
        existing = _existing_contacts(list(merged), reporter)
        plan = import_plan.plan_make(
            merged, existing, now=timezone.now(), source=_consent_source(job)
        )
        _checked_rows_write(job, merged)
    except Exception as error:  # noqa: BLE001 — every failure is reported on the job
        _job_fail(job_id, error, was=ImportStatus.CHECKING)
        return
    finally:
        reporter.close()
    checked = ImportJob.objects.filter(pk=job_id, status=ImportStatus.CHECKING).update(
        status=ImportStatus.CHECKED,
        processed_rows=total,
        total_rows=total,
        created_count=len(plan.creates),
        updated_count=len(plan.updates),
        unchanged_count=plan.unchanged,
        merged_count=merged_count,
        rejected_count=len(rejections),
        preview=plan.preview,
        report=_report(rejections),
        heartbeat_at=timezone.now(),
    )
    if not checked:  # cancelled meanwhile, and its files removed: remove ours too
        _checked_path(job).unlink(missing_ok=True)


# 3. Import.


def import_job_run_start(*, job: ImportJob) -> bool:
    """Start importing a CHECKED job; False if it is not (a second click, say)."""
    claimed = ImportJob.objects.filter(pk=job.pk, status=ImportStatus.CHECKED).update(
        status=ImportStatus.IMPORTING, runner=RUNNER, processed_rows=0, heartbeat_at=timezone.now()
    )
    if claimed:
        import_threads.thread_start(job.pk, import_job_run)
    return bool(claimed)


def import_job_run(*, job_id: int) -> None:
    """Import a job in IMPORTING, all or nothing; it ends DONE, FAILED or CANCELLED."""
    job = ImportJob.objects.select_related("created_by").get(pk=job_id)
    reporter = ProgressReporter(job_id, "Reading the checked rows")
    try:
        merged = _checked_rows_read(job)
        if not _write_lock.acquire(blocking=False):
            reporter.phase("Waiting for another import to finish")
            _write_lock.acquire()
        try:
            with transaction.atomic():
                _import_in_transaction(job, merged, reporter)
        finally:
            _write_lock.release()
    except Exception as error:  # noqa: BLE001 — every failure is reported on the job
        _job_fail(job_id, error, was=ImportStatus.IMPORTING)
        return
    finally:
        reporter.close()
    _files_delete(job)


def _import_in_transaction(
    job: ImportJob, merged: dict[str, ParsedRow], reporter: ProgressReporter
) -> None:
    existing = _existing_contacts(list(merged), reporter)
    plan = import_plan.plan_make(merged, existing, now=timezone.now(), source=_consent_source(job))
    reporter.phase("Writing contacts", total=len(plan.creates) + len(plan.updates))
    organizations_created, tags_created = import_store.plan_write(
        plan, actor=job.created_by, progress=reporter.step
    )
    if import_threads.is_cancel_requested(job.pk):
        raise ImportCancelledError("The import was cancelled; nothing was imported.")
    # Conditional: a job cancelled from another process meanwhile is not marked done, and
    # raising here rolls its writes back.
    done = ImportJob.objects.filter(pk=job.pk, status=ImportStatus.IMPORTING).update(
        status=ImportStatus.DONE,
        processed_rows=F("total_rows"),
        created_count=len(plan.creates),
        updated_count=len(plan.updates),
        unchanged_count=plan.unchanged,
        finished_at=timezone.now(),
        heartbeat_at=timezone.now(),
        stored_name="",
    )
    if not done:
        raise ImportCancelledError("The import was cancelled; nothing was imported.")
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


def _job_fail(job_id: int, error: Exception, *, was: ImportStatus) -> None:
    if isinstance(error, ImportCancelledError):
        status, message = ImportStatus.CANCELLED, error.message
    elif isinstance(error, PostroomError):
        status, message = ImportStatus.FAILED, f"Nothing was imported. {error.message}"
    else:
        logger.exception("contacts import %s failed", job_id, exc_info=error)
        status = ImportStatus.FAILED
        # The database's own words (a constraint, a lock) help whoever looks into it.
        detail = f"{type(error).__name__}: {error}"[:500]
        message = (
            "The import stopped on an unexpected error and nothing was imported (all or "
            f"nothing). {detail}. Try again; if it fails again, give this message to your "
            "administrator."
        )
    ImportJob.objects.filter(pk=job_id, status=was).update(
        status=status, error=message, finished_at=timezone.now(), heartbeat_at=timezone.now()
    )
    if status == ImportStatus.CANCELLED:
        job = ImportJob.objects.get(pk=job_id)
        _files_delete(job)


# Cancel, progress, report.


def import_job_cancel(*, job: ImportJob) -> None:
    """Cancel an import. A running one stops at its next step and writes nothing."""
    if job.status in (ImportStatus.DONE, ImportStatus.CANCELLED):
        return
    if job.is_running and import_threads.cancel_request(job.pk):
        return
    updated = ImportJob.objects.filter(pk=job.pk, status=job.status).update(
        status=ImportStatus.CANCELLED,
        error="Cancelled; nothing was imported.",
        finished_at=timezone.now(),
    )
    if updated:
        _files_delete(job)


def _interrupted(job: ImportJob) -> bool:
    if not job.is_running or import_threads.thread_is_running(job.pk):
        return False
    if job.runner == RUNNER:
        return True  # this process ran it and its thread is gone without finishing
    return timezone.now() - job.heartbeat_at > INTERRUPTED_AFTER


def import_job_progress(*, job: ImportJob) -> ImportProgress:
    """Where a job is. A job whose thread died (Postroom stopped) is marked failed here."""
    if _interrupted(job):
        ImportJob.objects.filter(pk=job.pk, status=job.status).update(
            status=ImportStatus.FAILED,
            error="The import was interrupted (Postroom stopped while it ran). Nothing was "
            "imported. Start it again.",
            finished_at=timezone.now(),
        )
        job.refresh_from_db()
    live = import_threads.live_progress(job.pk)
    if job.is_running and live is not None:
        return ImportProgress(job.status, live.phase, live.processed, live.total)
    return ImportProgress(job.status, job.get_status_display(), job.processed_rows, job.total_rows)


def import_report_rows(*, job: ImportJob) -> Iterator[list[str]]:
    """The rejected rows as CSV rows: row number, reason, then the file's own columns,
    so the file can be fixed and imported again (the extra columns are ignored)."""
    yield ["Row", "Reason", *job.headers]
    for row, reason, cells in job.report:
        yield [str(row), reason, *cells]
