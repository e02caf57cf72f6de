"""The job runner: claim due jobs, run each in a thread of its own, beat for it until it ends.

It runs in the worker process beside the outbox worker (`postroom run` and `postroom worker`,
postroom.runtime.background). Shape:
- a loop claims due jobs of the kinds it knows while it has a free slot, then sleeps until a
  poke (postroom.queue.jobs.JOBS: a job was asked for), a job ends, or `IDLE_WAKE_SECONDS`;
- each job runs in a thread (jobs are plain Django code, and may hold a transaction for
  minutes: never on the event loop, never on the database thread);
- beside it, a heartbeat on the database thread renews the lease and writes the progress
  twice a second, and hands a cancel request (or the loss of the lease) to the job, which
  stops at its next step.
A crash loses nothing: a job whose runner died is due again when its lease ends, and runs
again from its start, its earlier run's writes rolled back with its process.
On stop (SIGTERM), the jobs stop at their next step and are given back to the queue.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from django.db import connection, transaction

from postroom.core.errors import PostroomError
from postroom.queue import jobs
from postroom.queue.dbthread import DatabaseThread
from postroom.queue.jobs import (
    ClaimedJob,
    Heartbeat,
    JobCancelledError,
    JobKind,
    JobLeaseLostError,
    JobProgress,
    JobReleasedError,
)

logger = logging.getLogger(__name__)

# Jobs run one at a time per runner: they are CPU-bound Python sharing one interpreter with
# the outbox worker, and on SQLite two writers would only wait for each other's lock. More
# runners (hosts, on PostgreSQL) run more jobs at once.
CONCURRENCY = 1
# How often a running job's progress is written and its lease renewed: the import page
# polls its progress bar every 500 ms.
HEARTBEAT_SECONDS = 0.5
# Look for due jobs at least this often: a job asked for in another process without a poke,
# or one whose runner died, is noticed within this.
IDLE_WAKE_SECONDS = 5.0


class JobContext:
    """What a running job sees, from its own thread: where to put its progress, and whether
    it must stop (`step` raises then)."""

    def __init__(self, job: ClaimedJob, *, has_heartbeat: bool = False) -> None:
        self.job = job
        self.progress = JobProgress(phase="Starting", done=0, total=0)
        self.is_finished = False
        self._stop: PostroomError | None = None
        # Progress versions: bumped by each change, and the one the last heartbeat wrote.
        self._has_heartbeat = has_heartbeat
        self._version = 0
        self._written = 0
        self._written_changed = threading.Condition()

    def phase(self, text: str, *, total: int | None = None) -> None:
        """Start a phase of the work: its name (shown to people) and how many steps it has."""
        self.check()
        self._progress_set(
            JobProgress(phase=text, done=0, total=self.progress.total if total is None else total)
        )

    def step(self, done: int) -> None:
        """Report `done` steps of the phase; raise if the job must stop."""
        self.check()
        self._progress_set(JobProgress(self.progress.phase, done, self.progress.total))

    def _progress_set(self, progress: JobProgress) -> None:
        # The progress first, then its version: a heartbeat reads them the other way round,
        # so the version it reports is never newer than the progress it writes.
        self.progress = progress
        self._version += 1

    def check(self) -> None:
        """Raise JobCancelledError, JobReleasedError or JobLeaseLostError if the job must stop."""
        if self._stop is not None:
            raise self._stop

    def flush(self, *, timeout: float = 2.0) -> None:
        """Wait (a moment at most) until the runner has written the progress so far: before
        a transaction that keeps it from writing for long (SQLite's one write lock)."""
        if not self._has_heartbeat:
            return
        wanted = self._version
        with self._written_changed:
            self._written_changed.wait_for(lambda: self._written >= wanted, timeout)

    def finish(self) -> None:
        """Mark the job done, inside the transaction that writes its outcome (raises
        JobLeaseLostError, rolling it back, when the job is no longer ours)."""
        assert connection.in_atomic_block, "finish inside the transaction of the outcome"
        jobs.job_finish(job=self.job, progress=self.progress)
        self.is_finished = True

    def heartbeat_progress(self) -> tuple[int, JobProgress]:
        """Thread-safe: the progress to write now, with its version."""
        version = self._version
        return version, self.progress

    def heartbeat_written(self, version: int) -> None:
        """Thread-safe: the runner wrote the progress of `version` (may end a `flush`)."""
        with self._written_changed:
            self._written = max(self._written, version)
            self._written_changed.notify_all()

    def stop_with(self, error: PostroomError) -> None:
        """Thread-safe: make the job stop at its next step with `error` (the first one wins)."""
        if self._stop is None:
            self._stop = error


def job_run(kind: JobKind, context: JobContext) -> None:
    """Run a claimed job in this thread, and record how it ended."""
    job = context.job
    try:
        if job.attempt > jobs.MAX_ATTEMPTS:
            jobs.job_give_up(job=job, kind=kind)
            return
        kind.run(context)
        if not context.is_finished:
            with transaction.atomic():
                context.finish()
    except JobReleasedError:
        jobs.job_release(job=job)
    except JobLeaseLostError:
        logger.warning("Job %s (%s) is run by another worker now; dropped here", job.id, job.kind)
    except Exception as error:
        if not isinstance(error, PostroomError):
            logger.exception("Job %s (%s) failed", job.id, job.kind)
        jobs.job_stop(job=job, error=error, kind=kind)


def _job_thread(kind: JobKind, context: JobContext) -> None:
    try:
        job_run(kind, context)
    except Exception:  # recording the end failed (the database is away): the lease decides
        logger.exception("Job %s: recording its end failed", context.job.id)
    finally:
        connection.close()  # the thread's own; the next job here opens a fresh one


class JobRunner:
    def __init__(
        self,
        kinds: Mapping[str, JobKind],
        *,
        name: str,
        concurrency: int = CONCURRENCY,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
    ) -> None:
        self.kinds = dict(kinds)
        self.name = name
        self.concurrency = concurrency
        self.heartbeat_seconds = heartbeat_seconds
        self._db = DatabaseThread("postroom-jobs-db")
        self._threads = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="job")
        self._running: dict[asyncio.Task[None], JobContext] = {}
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def poke(self) -> None:
        """Thread-safe: there may be a job to run."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self, *, stop: asyncio.Event) -> None:
        """Run jobs until `stop` is set; then the running ones are given back to the queue."""
        self._loop = asyncio.get_running_loop()
        jobs.JOBS.local.add(self.poke)
        listener = jobs.JOBS.listener(self.poke)
        await listener.start()
        try:
            while not stop.is_set():
                self._wake.clear()
                await self._claim_and_start()
                await self._sleep(stop)
        finally:
            for context in self._running.values():
                context.stop_with(JobReleasedError("The worker is stopping."))
            await asyncio.gather(*self._running, return_exceptions=True)
            jobs.JOBS.local.remove(self.poke)
            await listener.stop()
            await self._db.close()
            self._threads.shutdown(wait=True)

    async def _claim_and_start(self) -> None:
        free = self.concurrency - len(self._running)
        if free <= 0:
            return
        try:
            claimed = await self._db.run(
                jobs.job_claim_batch,
                runner=self.name,
                kinds=list(self.kinds),
                limit=free,
                busy=[context.job.id for context in self._running.values()],
            )
        except Exception:  # the database is away (restarting, locked): try again later
            logger.exception("Claiming jobs failed; trying again in %s s", IDLE_WAKE_SECONDS)
            return
        for job in claimed:
            context = JobContext(job, has_heartbeat=True)
            task = asyncio.create_task(self._execute(context), name=f"job-{job.id}")
            self._running[task] = context
            task.add_done_callback(self._finished)

    async def _sleep(self, stop: asyncio.Event) -> None:
        waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(
                waiters, timeout=IDLE_WAKE_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        self._wake.set()  # a free slot: look for the next job
        if not task.cancelled() and task.exception() is not None:
            logger.error("A job task failed", exc_info=task.exception())

    async def _execute(self, context: JobContext) -> None:
        assert self._loop is not None
        kind = self.kinds[context.job.kind]
        heartbeat = asyncio.create_task(self._heartbeat(context))
        try:
            await self._loop.run_in_executor(self._threads, _job_thread, kind, context)
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)

    async def _heartbeat(self, context: JobContext) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            version, progress = context.heartbeat_progress()
            try:
                answer = await self._db.run(jobs.job_heartbeat, job=context.job, progress=progress)
            except Exception as error:
                # On SQLite the job's own write transaction may hold the lock for minutes;
                # no other runner can claim the job meanwhile (a claim needs that lock), and
                # the next beat goes through once it is released.
                logger.info("Job %s: heartbeat not written (%s)", context.job.id, error)
                continue
            if answer != Heartbeat.LOST:
                context.heartbeat_written(version)
            if answer == Heartbeat.CANCEL_REQUESTED:
                context.stop_with(JobCancelledError("Cancelled."))
            elif answer == Heartbeat.LOST:
                context.stop_with(
                    JobLeaseLostError("Another worker runs this job now; this run is dropped.")
                )


async def run_job_runner(kinds: Mapping[str, JobKind], *, name: str, stop: asyncio.Event) -> None:
    """Run a job runner for `kinds` until `stop` is set."""
    await JobRunner(kinds, name=name).run(stop=stop)
