"""Run CSV imports in tests through the real job functions (upload, check, import): the
import's job is claimed and run in the test's own thread, as the worker's runner runs it in
one of its threads, so it sees the test's database transaction."""

from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile

from postroom.accounts.models import User
from postroom.contacts import import_jobs
from postroom.contacts.import_runs import IMPORT_JOB_KINDS
from postroom.contacts.models import ImportJob, ImportStatus
from postroom.queue.jobs import job_claim_batch
from postroom.queue.runner import JobContext, job_run


def csv_upload(text: str | bytes, *, name: str = "contacts.csv") -> SimpleUploadedFile:
    content = text.encode("utf-8") if isinstance(text, str) else text
    return SimpleUploadedFile(name, content, content_type="text/csv")


def job_run_here(job: ImportJob) -> JobContext:
    """Claim the import's job and run it to its end in this thread; the job's context."""
    job.refresh_from_db()
    claimed = job_claim_batch(runner="test", kinds=list(IMPORT_JOB_KINDS), limit=10)
    [mine] = [item for item in claimed if item.id == job.job_id]
    context = JobContext(mine)
    job_run(IMPORT_JOB_KINDS[mine.kind], context)
    job.refresh_from_db()
    return context


def import_checked(
    actor: User, text: str | bytes, *, mapping: dict[int, str] | None = None
) -> ImportJob:
    """Upload and check a file (the guessed mapping unless one is given)."""
    job = import_jobs.import_job_upload(actor=actor, upload=csv_upload(text))
    chosen = import_jobs.import_job_mapping(job) if mapping is None else mapping
    import_jobs.import_job_check_start(job=job, mapping=chosen)
    job_run_here(job)
    return job


def import_done(
    actor: User, text: str | bytes, *, mapping: dict[int, str] | None = None
) -> ImportJob:
    """Upload, check and import a file; the job at the end (DONE, or FAILED and why)."""
    job = import_checked(actor, text, mapping=mapping)
    assert job.status == ImportStatus.CHECKED, job.error
    assert import_jobs.import_job_run_start(job=job)
    job_run_here(job)
    return job
