"""The job runner on its own event loop, against the real database: leases, heartbeats,
cancel, stop, give-up, and two runners racing for the same jobs.

These commit for real (transaction=True): the runner claims on its database thread and runs
each job on a thread of its own, as in the worker process. Each test kind records every run
it makes as an audit entry, in the transaction that finishes the job.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import transaction
from django.utils import timezone

from postroom.audit.models import AuditEntry
from postroom.audit.services import audit_record
from postroom.queue import jobs
from postroom.queue import runner as runner_module
from postroom.queue.jobs import ClaimedJob, JobInterruptedError, JobKind, job_enqueue
from postroom.queue.models import Job, JobState
from postroom.queue.runner import JobContext, JobRunner
from tests.outbox.worker_harness import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

RAN = "test.job.ran"
stopped_with: list[tuple[int, Exception]] = []


def _record_run(context: JobContext) -> None:
    with transaction.atomic():
        audit_record(actor=None, action=RAN, subject=str(context.job.id), changes={})
        context.finish()


def quick(context: JobContext) -> None:
    context.phase("Working", total=2)
    time.sleep(0.05)  # long enough for two runners to share a batch of jobs
    context.step(2)
    _record_run(context)


def steady(context: JobContext) -> None:
    """Steps every 10 ms until its payload's `steps` are done (or it is told to stop)."""
    steps = context.job.payload.get("steps", 1000)
    context.phase("Stepping", total=steps)
    for step in range(1, steps + 1):
        time.sleep(0.01)
        context.step(step)
    _record_run(context)


phases_seen: list[str] = []


def flushing(context: JobContext) -> None:
    """Writes a phase and flushes it, as a job does before a long transaction."""
    context.step(1)
    time.sleep(0.6)  # a heartbeat carrying the old progress may be on its way meanwhile
    context.phase("Before the long transaction")
    context.flush()
    phases_seen.append(Job.objects.get(pk=context.job.id).phase)
    _record_run(context)


def remember_stop(job: ClaimedJob, error: Exception) -> None:
    stopped_with.append((job.id, error))


KINDS = {
    "test.quick": JobKind(run=quick, stopped=remember_stop),
    "test.steady": JobKind(run=steady, stopped=remember_stop),
    "test.flushing": JobKind(run=flushing, stopped=remember_stop),
}


@pytest.fixture(autouse=True)
def _forget_stops() -> Iterator[None]:
    stopped_with.clear()
    yield
    stopped_with.clear()


@contextmanager
def running_runner(name: str = "runner-1", **options: object) -> Iterator[JobRunner]:
    """A runner on its own event loop in a thread, stopped (gracefully) at the end."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    runner = JobRunner(KINDS, name=name, **options)  # type: ignore[arg-type]
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(runner.run(stop=stop))
        except BaseException as error:  # surfaced in the test below
            failure.append(error)
        finally:
            loop.close()

    thread = threading.Thread(target=run, name=f"test-{name}", daemon=True)
    thread.start()
    try:
        yield runner
    finally:
        with contextlib.suppress(RuntimeError):  # its loop ended early: raised below
            loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
        assert not thread.is_alive(), "the runner did not stop within 30 s"
        if failure:
            raise failure[0]


def job(pk: int) -> Job:
    return Job.objects.get(pk=pk)


def runs_of(pk: int) -> int:
    return AuditEntry.objects.filter(action=RAN, subject=str(pk)).count()


def test_a_job_asked_for_runs_at_once_and_its_progress_is_in_the_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runner_module, "IDLE_WAKE_SECONDS", 60.0)  # only the poke is quick
    with running_runner():
        time.sleep(0.2)  # idle first: the enqueue's poke must wake it
        started = time.monotonic()
        pk = job_enqueue(kind="test.steady", payload={"steps": 150}).pk
        wait_until(lambda: job(pk).progress_done > 0, what="progress written")
        assert time.monotonic() - started < 20, "poked, not waiting for the idle wake"
        running = job(pk)
        assert running.state == JobState.RUNNING and running.claimed_by == "runner-1"
        assert (running.phase, running.progress_total) == ("Stepping", 150)
        assert running.lease_until is not None and running.lease_until > timezone.now()
        wait_until(lambda: job(pk).state == JobState.DONE, what="done")
    done = job(pk)
    assert (done.progress_done, done.attempts, done.claim_token) == (150, 1, "")
    assert runs_of(pk) == 1


def test_two_runners_run_each_job_exactly_once() -> None:
    pks = [job_enqueue(kind="test.quick", payload={}).pk for _ in range(30)]
    with running_runner("runner-1"), running_runner("runner-2"):
        wait_until(
            lambda: Job.objects.filter(state=JobState.DONE).count() == len(pks),
            timeout=60,
            what="every job done",
        )
    runs = collections.Counter(
        AuditEntry.objects.filter(action=RAN).values_list("subject", flat=True)
    )
    assert runs == {str(pk): 1 for pk in pks}, "a job ran twice, or not at all"
    assert set(Job.objects.values_list("attempts", flat=True)) == {1}
    assert set(Job.objects.values_list("claimed_by", flat=True)) == {"runner-1", "runner-2"}


def test_a_job_whose_runner_died_runs_again_once_its_lease_ends() -> None:
    pk = job_enqueue(kind="test.quick", payload={}).pk
    [claimed] = jobs.job_claim_batch(runner="dead", kinds=["test.quick"], limit=1)
    with running_runner("successor"):
        time.sleep(1)
        assert job(pk).claimed_by == "dead", "a live lease must not be taken over"
        Job.objects.filter(pk=pk).update(lease_until=timezone.now())  # the lease ran out
        wait_until(lambda: job(pk).state == JobState.DONE, what="done by the successor")
    done = job(pk)
    assert (done.claimed_by, done.attempts) == ("successor", 2)
    assert runs_of(pk) == 1
    # The dead runner, had it come back, could not record anything any more.
    with pytest.raises(jobs.JobLeaseLostError), transaction.atomic():
        jobs.job_finish(job=claimed)


def test_a_job_taken_over_while_it_ran_records_nothing() -> None:
    pk = job_enqueue(kind="test.steady", payload={"steps": 300}).pk
    with running_runner("slow"):
        wait_until(lambda: job(pk).progress_done > 0, what="running")
        # Another runner takes the job as if the lease had ended (its heartbeats lost).
        Job.objects.filter(pk=pk).update(lease_until=timezone.now())
        [taken] = jobs.job_claim_batch(runner="other", kinds=["test.steady"], limit=1)
        time.sleep(1.5)  # the slow runner's next heartbeat finds the job gone
    assert runs_of(pk) == 0, "the runner that lost its lease recorded its outcome"
    assert (job(pk).claimed_by, job(pk).claim_token) == ("other", taken.claim_token)
    assert job(pk).state == JobState.RUNNING and stopped_with == []


def test_a_cancelled_job_stops_at_its_next_step_and_a_queued_one_at_once() -> None:
    queued = job_enqueue(kind="test.steady", payload={}).pk
    assert jobs.job_cancel(job_id=queued) is True
    assert job(queued).state == JobState.CANCELLED
    pk = job_enqueue(kind="test.steady", payload={}).pk
    with running_runner():
        wait_until(lambda: job(pk).progress_done > 0, what="running")
        assert jobs.job_cancel(job_id=pk) is False  # asked to stop
        wait_until(lambda: job(pk).state == JobState.CANCELLED, what="cancelled")
    assert runs_of(pk) == 0 and runs_of(queued) == 0
    [(stopped, error)] = stopped_with
    assert stopped == pk and isinstance(error, jobs.JobCancelledError)


def test_a_stopping_runner_gives_its_job_back_and_the_next_one_runs_it() -> None:
    pk = job_enqueue(kind="test.steady", payload={"steps": 200}).pk
    with running_runner("stopping"):
        wait_until(lambda: job(pk).progress_done > 0, what="running")
    released = job(pk)
    assert (released.state, released.attempts, released.claim_token) == (JobState.QUEUED, 0, "")
    with running_runner("next"):
        wait_until(lambda: job(pk).state == JobState.DONE, timeout=30, what="done")
    assert (job(pk).claimed_by, job(pk).attempts, runs_of(pk)) == ("next", 1, 1)


def test_a_job_whose_runners_died_three_times_is_given_up() -> None:
    pk = job_enqueue(kind="test.quick", payload={}).pk
    Job.objects.filter(pk=pk).update(
        state=JobState.RUNNING, attempts=jobs.MAX_ATTEMPTS, lease_until=timezone.now()
    )
    with running_runner():
        wait_until(lambda: job(pk).state == JobState.FAILED, what="given up")
    assert "stopped unexpectedly 3 times" in job(pk).error
    assert runs_of(pk) == 0
    [(stopped, error)] = stopped_with
    assert stopped == pk and isinstance(error, JobInterruptedError)


def test_a_job_tied_to_another_host_is_left_to_that_host() -> None:
    elsewhere = job_enqueue(kind="test.quick", payload={}).pk
    Job.objects.filter(pk=elsewhere).update(host="another-host")
    here = job_enqueue(kind="test.quick", payload={}, is_local=True).pk
    with running_runner():
        wait_until(lambda: job(here).state == JobState.DONE, what="the local job done")
        time.sleep(0.3)
    assert job(elsewhere).state == JobState.QUEUED


def test_a_flushed_phase_is_in_the_database_before_the_job_goes_on() -> None:
    phases_seen.clear()
    pk = job_enqueue(kind="test.flushing", payload={}).pk
    with running_runner():
        wait_until(lambda: job(pk).state == JobState.DONE, what="done")
    assert phases_seen == ["Before the long transaction"]
