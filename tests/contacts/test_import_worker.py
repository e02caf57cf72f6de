"""CSV imports in the worker, with real `postroom worker` processes on the test database.

These are the promises of an import run as a job: the web server that asked for it can go
away (nothing of the import lives in it), a worker killed in the middle hands the import on
to the next one once its lease ends (the killed one's writes rolled back with it), and two
workers never run one import twice.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from postroom.audit.models import AuditEntry
from postroom.contacts import import_jobs
from postroom.contacts.models import Contact, ImportJob, ImportStatus
from postroom.queue.models import Job, JobState
from tests.accounts.factories import user_make
from tests.contacts.importer import csv_upload
from tests.outbox.worker_harness import wait_until, worker_process_env

pytestmark = pytest.mark.django_db(transaction=True)

# Generous: a busy CI host may run other suites at the same time.
WAIT_SECONDS = 120


def big_file(rows: int, *, prefix: str = "p") -> str:
    lines = ["email,first name,tags"]
    lines += [f"{prefix}{i}@example.com,P{i},t{i % 5}" for i in range(rows)]
    return "\n".join(lines)


class Workers:
    """`postroom worker` processes, their error output in files a failing test shows."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str) -> subprocess.Popen[bytes]:
        log = (self.directory / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "postroom", "worker", "--name", name],
            env=worker_process_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.started.append(process)
        return process

    def logs(self) -> str:
        return "\n".join(path.read_text() for path in sorted(self.directory.glob("*.log")))


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    started = Workers(tmp_path)
    yield started
    for process in started.started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in started.started:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def import_of(job: ImportJob) -> ImportJob:
    job.refresh_from_db()
    return job


def job_row(job: ImportJob) -> Job:
    assert job.job_id is not None
    return Job.objects.get(pk=job.job_id)


def end_the_lease(job: ImportJob) -> None:
    """The killed worker's lease must end before its import is due again; end it now rather
    than wait its minute."""
    Job.objects.filter(pk=job.job_id).update(lease_until=timezone.now())


def test_a_worker_killed_while_checking_hands_the_check_on_and_it_completes(
    workers: Workers,
) -> None:
    alice = user_make("alice")
    job = import_jobs.import_job_upload(actor=alice, upload=csv_upload(big_file(60_000)))
    import_jobs.import_job_check_start(job=job, mapping=import_jobs.import_job_mapping(job))
    doomed = workers.start("doomed")
    wait_until(
        lambda: job_row(import_of(job)).progress_done > 0,
        timeout=WAIT_SECONDS,
        what="the check to make progress",
    )
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=10)
    killed = job_row(job)
    assert (killed.state, killed.claimed_by) == (JobState.RUNNING, "doomed")
    assert import_of(job).status == ImportStatus.CHECKING, "the check finished before the kill"

    end_the_lease(job)
    workers.start("successor")
    wait_until(
        lambda: import_of(job).status == ImportStatus.CHECKED,
        timeout=WAIT_SECONDS,
        what=f"the check done by the successor; the workers said:\n{workers.logs()}",
    )
    done = job_row(job)
    assert (done.state, done.claimed_by, done.attempts) == (JobState.DONE, "successor", 2)
    assert (job.total_rows, job.created_count, job.rejected_count) == (60_000, 60_000, 0)


def test_a_worker_killed_while_importing_writes_nothing_and_the_next_imports_once(
    workers: Workers,
) -> None:
    alice = user_make("alice")
    rows = 100_000
    job = import_jobs.import_job_upload(actor=alice, upload=csv_upload(big_file(rows)))
    import_jobs.import_job_check_start(job=job, mapping=import_jobs.import_job_mapping(job))
    first = workers.start("first")
    wait_until(
        lambda: import_of(job).status == ImportStatus.CHECKED,
        timeout=WAIT_SECONDS,
        what=f"the check; the workers said:\n{workers.logs()}",
    )
    assert import_jobs.import_job_run_start(job=job)
    # This phase is written before the import's transaction starts (JobContext.flush).
    wait_until(
        lambda: "all or nothing" in job_row(import_of(job)).phase,
        timeout=WAIT_SECONDS,
        what="the import to start writing",
    )
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert import_of(job).status == ImportStatus.IMPORTING, "the import finished before the kill"
    assert Contact.objects.count() == 0, "a killed import left contacts behind"

    end_the_lease(job)
    workers.start("second")
    wait_until(
        lambda: import_of(job).status == ImportStatus.DONE,
        timeout=WAIT_SECONDS,
        what=f"the import done by the second worker; the workers said:\n{workers.logs()}",
    )
    assert Contact.objects.count() == rows
    assert AuditEntry.objects.filter(action="contacts.imported").count() == 1
    assert (job_row(job).claimed_by, job_row(job).attempts) == ("second", 2)


def test_the_web_server_that_asked_can_die_and_the_worker_still_imports(
    workers: Workers,
) -> None:
    user_make("alice")
    path = Path(settings.DATA_DIR) / "list.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(big_file(2_000))
    # What the import page does, in a process killed the moment it has asked.
    script = (
        "import django; django.setup();"
        "from django.core.files.uploadedfile import SimpleUploadedFile;"
        "from postroom.accounts.models import User;"
        "from postroom.contacts import import_jobs;"
        f"upload = SimpleUploadedFile('list.csv', open({str(path)!r}, 'rb').read());"
        "job = import_jobs.import_job_upload(actor=User.objects.get(username='alice'),"
        " upload=upload);"
        "import_jobs.import_job_check_start(job=job, mapping=import_jobs.import_job_mapping(job));"
        "print(job.pk, flush=True);"
        "import time; time.sleep(60)"
    )
    env = worker_process_env()
    env["DJANGO_SETTINGS_MODULE"] = "postroom.settings"
    env["PYTHONPATH"] = os.getcwd()
    web = subprocess.Popen(
        [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True
    )
    assert web.stdout is not None
    pk = int(web.stdout.readline())
    web.send_signal(signal.SIGKILL)
    web.wait(timeout=10)

    job = ImportJob.objects.get(pk=pk)
    assert job.status == ImportStatus.CHECKING
    workers.start("worker")
    wait_until(
        lambda: import_of(job).status == ImportStatus.CHECKED,
        timeout=WAIT_SECONDS,
        what=f"the check; the worker said:\n{workers.logs()}",
    )
    assert job.created_count == 2_000


def test_two_workers_racing_run_each_import_exactly_once(workers: Workers) -> None:
    alice = user_make("alice")
    imports = []
    for n in range(8):
        job = import_jobs.import_job_upload(
            actor=alice, upload=csv_upload(big_file(3_000, prefix=f"f{n}-"))
        )
        import_jobs.import_job_check_start(job=job, mapping=import_jobs.import_job_mapping(job))
        imports.append(job)
    workers.start("racer-1")
    workers.start("racer-2")
    for job in imports:
        wait_until(
            lambda job=job: import_of(job).status == ImportStatus.CHECKED,  # type: ignore[misc]
            timeout=WAIT_SECONDS,
            what=f"every check; the workers said:\n{workers.logs()}",
        )
        assert import_jobs.import_job_run_start(job=job)
    wait_until(
        lambda: ImportJob.objects.filter(status=ImportStatus.DONE).count() == len(imports),
        timeout=WAIT_SECONDS,
        what=f"every import; the workers said:\n{workers.logs()}",
    )
    audited = collections.Counter(
        AuditEntry.objects.filter(action="contacts.imported").values_list("subject", flat=True)
    )
    assert sum(audited.values()) == len(imports), "an import was written twice"
    assert Contact.objects.count() == 8 * 3_000
    assert set(Job.objects.values_list("attempts", flat=True)) == {1}
    assert set(Job.objects.values_list("claimed_by", flat=True)) == {"racer-1", "racer-2"}
