"""Run CSV imports in tests through the real job functions (upload, check, import), in the
test's own thread so they see the test's database transaction."""

from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile

from postroom.accounts.models import User
from postroom.contacts import import_jobs
from postroom.contacts.models import ImportJob, ImportStatus


def csv_upload(text: str | bytes, *, name: str = "contacts.csv") -> SimpleUploadedFile:
    content = text.encode("utf-8") if isinstance(text, str) else text
    return SimpleUploadedFile(name, content, content_type="text/csv")


def import_checked(
    actor: User, text: str | bytes, *, mapping: dict[int, str] | None = None
) -> ImportJob:
    """Upload and check a file (the guessed mapping unless one is given)."""
    job = import_jobs.import_job_upload(actor=actor, upload=csv_upload(text))
    chosen = import_jobs.import_job_mapping(job) if mapping is None else mapping
    import_jobs.import_job_check_start(job=job, mapping=chosen)
    import_jobs.import_job_check(job_id=job.pk)
    job.refresh_from_db()
    return job


def import_done(
    actor: User, text: str | bytes, *, mapping: dict[int, str] | None = None
) -> ImportJob:
    """Upload, check and import a file; the job at the end (DONE, or FAILED and why)."""
    job = import_checked(actor, text, mapping=mapping)
    assert job.status == ImportStatus.CHECKED, job.error
    assert import_jobs.import_job_run_start(job=job)
    import_jobs.import_job_run(job_id=job.pk)
    job.refresh_from_db()
    return job
