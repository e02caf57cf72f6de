"""Imports in their background thread, as the pages run them: each thread has its own
database connection, so these tests commit (transaction=True) for the thread to see."""

from __future__ import annotations

import pytest

from postroom.contacts import import_jobs, import_threads
from postroom.contacts.models import Contact, ImportJob, ImportStatus
from tests.accounts.factories import user_make
from tests.contacts.importer import csv_upload

pytestmark = pytest.mark.django_db(transaction=True)

# Generous: a busy CI host may run other suites at the same time.
WAIT_SECONDS = 120


def big_file(rows: int) -> str:
    lines = ["email,first name,tags"]
    lines += [f"p{i}@example.com,P{i},t{i % 5}" for i in range(rows)]
    return "\n".join(lines)


def test_checking_and_importing_run_in_the_background_with_progress() -> None:
    alice = user_make("alice")
    job = import_jobs.import_job_upload(actor=alice, upload=csv_upload(big_file(20_000)))
    import_jobs.import_job_check_start(job=job, mapping=import_jobs.import_job_mapping(job))

    seen: list[tuple[str, int, int]] = []
    while not import_threads.import_job_wait(job.pk, timeout=0.05):
        job.refresh_from_db()
        progress = import_jobs.import_job_progress(job=job)
        seen.append((progress.status, progress.processed, progress.total))
    job.refresh_from_db()
    assert job.status == ImportStatus.CHECKED, job.error
    assert (job.total_rows, job.processed_rows, job.created_count) == (20_000, 20_000, 20_000)
    assert any(status == ImportStatus.CHECKING for status, _, _ in seen)
    assert all(processed <= total or total == 0 for _, processed, total in seen)

    assert import_jobs.import_job_run_start(job=job)
    assert import_threads.import_job_wait(job.pk, timeout=WAIT_SECONDS)
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE, job.error
    assert Contact.objects.count() == 20_000
    progress = import_jobs.import_job_progress(job=job)
    assert progress.percent == 100


def test_cancelling_a_running_import_rolls_everything_back() -> None:
    alice = user_make("alice")
    job = import_jobs.import_job_upload(actor=alice, upload=csv_upload(big_file(20_000)))
    import_jobs.import_job_check_start(job=job, mapping=import_jobs.import_job_mapping(job))
    assert import_threads.import_job_wait(job.pk, timeout=WAIT_SECONDS)
    job.refresh_from_db()

    assert import_jobs.import_job_run_start(job=job)
    import_jobs.import_job_cancel(job=ImportJob.objects.get(pk=job.pk))
    assert import_threads.import_job_wait(job.pk, timeout=WAIT_SECONDS)
    job.refresh_from_db()
    assert job.status == ImportStatus.CANCELLED
    assert "nothing was imported" in job.error
    assert not Contact.objects.exists()
    assert not import_jobs.import_job_has_file(job)
