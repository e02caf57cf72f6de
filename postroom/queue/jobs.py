"""Jobs' database side: ask for a job, claim due ones, beat, finish, stop, release, cancel.

A kind of job is a `JobKind`: `run` does the work in a thread of the worker (plain Django, the
ORM allowed), reporting through its `JobContext` (postroom.queue.runner), and ends by calling
`context.finish()` inside the transaction that writes its outcome, so the outcome and the
job's end commit together, and only while the job is still this runner's. `stopped` records,
in the owner's terms (an import's status, a campaign's), that the job ended without
finishing: it failed, it was cancelled, or it was abandoned after `MAX_ATTEMPTS` claims.
Campaign expansion and report runs are new kinds, run by the same runner.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from postroom.core.errors import PostroomError
from postroom.queue.lease import claim_token_new, lease_claim
from postroom.queue.models import Job, JobState
from postroom.queue.wake import WakeChannel

if TYPE_CHECKING:
    from postroom.queue.runner import JobContext

logger = logging.getLogger(__name__)

JOBS = WakeChannel(channel="postroom_jobs", socket_name="jobs.wake")
# A runner renews its jobs' leases with every heartbeat (twice a second); this is how long a
# job stays its own when the heartbeats stop getting through. A minute covers a database
# restart; a runner that died hands its job on a minute later.
JOB_LEASE = dt.timedelta(seconds=60)
# A job whose runner died this many times (each claim counts) is given up rather than
# claimed again: work that kills its process would otherwise kill every worker in turn.
MAX_ATTEMPTS = 3
ERROR_MAX_CHARS = 2000


class JobCancelledError(PostroomError):
    """The job was cancelled on request; its work so far is rolled back."""

    code = "job_cancelled"


class JobLeaseLostError(PostroomError):
    """Another runner holds the job now (this one's lease ended): this one stops and records
    nothing."""

    code = "job_lease_lost"


class JobReleasedError(PostroomError):
    """The runner is stopping: the job goes back to the queue, to be run from the start."""

    code = "job_released"


class JobInterruptedError(PostroomError):
    """The job's runner died `MAX_ATTEMPTS` times while running it; it is given up."""

    code = "job_interrupted"


@dataclass(frozen=True)
class ClaimedJob:
    """A job a runner holds: plain data, handed to the job's thread."""

    id: int
    kind: str
    payload: dict[str, Any]
    claim_token: str
    attempt: int  # 1 for the first claim


@dataclass(frozen=True)
class JobKind:
    run: Callable[[JobContext], None]
    # Called with the job and the error, in the transaction that records the job's end.
    stopped: Callable[[ClaimedJob, Exception], None]


@dataclass(frozen=True)
class JobProgress:
    phase: str
    done: int
    total: int


class Heartbeat:
    """What a heartbeat learnt: the job is still ours, asked to stop, or someone else's."""

    OURS = "ours"
    CANCEL_REQUESTED = "cancel_requested"
    LOST = "lost"


def this_host() -> str:
    return socket.gethostname()


def job_enqueue(*, kind: str, payload: Mapping[str, Any], is_local: bool = False) -> Job:
    """Ask for a job; a runner takes it once the caller's transaction commits. A job that
    `is_local` works on files of this host's data directory and runs on this host only."""
    job = Job.objects.create(kind=kind, payload=dict(payload), host=this_host() if is_local else "")
    transaction.on_commit(JOBS.notify)
    return job


def _due(now: dt.datetime) -> Q:
    # Queued, or running under a lease that ended: its runner is gone.
    return Q(state=JobState.QUEUED) | Q(state=JobState.RUNNING, lease_until__lte=now)


def job_claim_batch(
    *,
    runner: str,
    kinds: Collection[str],
    limit: int,
    busy: Collection[int] = (),
    now: dt.datetime | None = None,
) -> list[ClaimedJob]:
    """Take up to `limit` due jobs of `kinds` for this host, oldest first
    (postroom.queue.lease).

    `busy` are the jobs this runner runs already: after a lapse of its heartbeats it must not
    claim one of them a second time.
    """
    now = now or timezone.now()
    due = Job.objects.filter(
        _due(now), Q(host="") | Q(host=this_host()), kind__in=list(kinds)
    ).exclude(pk__in=list(busy))
    if not due.exists():  # most rounds find nothing: no write lock for them on SQLite
        return []
    token = claim_token_new()
    with transaction.atomic():
        claimed = lease_claim(
            due.order_by("id"),
            limit=limit,
            recheck=_due(now),
            claim={
                "state": JobState.RUNNING,
                "claimed_by": runner,
                "claim_token": token,
                "lease_until": now + JOB_LEASE,
                "attempts": F("attempts") + 1,
                "is_cancel_requested": False,
                "started_at": now,
            },
        )
        if not claimed:
            return []
        rows = Job.objects.filter(claim_token=token).order_by("id")
        return [
            ClaimedJob(
                id=job.pk,
                kind=job.kind,
                payload=job.payload,
                claim_token=token,
                attempt=job.attempts,
            )
            for job in rows
        ]


def _held(job: ClaimedJob) -> Any:
    """The job's row while `job`'s claim still holds it."""
    return Job.objects.filter(pk=job.id, claim_token=job.claim_token, state=JobState.RUNNING)


def job_heartbeat(*, job: ClaimedJob, progress: JobProgress, now: dt.datetime | None = None) -> str:
    """Renew the lease and write the progress, if the job is still ours (a `Heartbeat`)."""
    now = now or timezone.now()
    renewed = _held(job).update(lease_until=now + JOB_LEASE, **_progress_fields(progress))
    if not renewed:
        return Heartbeat.LOST
    if _held(job).filter(is_cancel_requested=True).exists():
        return Heartbeat.CANCEL_REQUESTED
    return Heartbeat.OURS


def _progress_fields(progress: JobProgress) -> dict[str, Any]:
    return {
        "phase": progress.phase[:200],  # Job.phase
        "progress_done": progress.done,
        "progress_total": progress.total,
    }


def job_finish(*, job: ClaimedJob, progress: JobProgress | None = None) -> None:
    """Mark the job done, inside the transaction that writes its outcome: if the job is no
    longer ours, raise JobLeaseLostError, which rolls that outcome back."""
    fields: dict[str, Any] = {}
    if progress is not None:
        fields = _progress_fields(progress)
    done = _held(job).update(
        state=JobState.DONE,
        claim_token="",
        lease_until=None,
        finished_at=timezone.now(),
        **fields,
    )
    if not done:
        raise JobLeaseLostError("Another worker runs this job now; this run is dropped.")


def job_stop(*, job: ClaimedJob, error: Exception, kind: JobKind) -> bool:
    """Record that the job ended without finishing, and tell its kind; False if it was not
    ours any more (then whoever holds it decides)."""
    cancelled = isinstance(error, JobCancelledError)
    with transaction.atomic():
        stopped = _held(job).update(
            state=JobState.CANCELLED if cancelled else JobState.FAILED,
            claim_token="",
            lease_until=None,
            finished_at=timezone.now(),
            error=_error_text(error)[:ERROR_MAX_CHARS],
        )
        if stopped:
            kind.stopped(job, error)
    return bool(stopped)


def _error_text(error: Exception) -> str:
    if isinstance(error, PostroomError):
        return error.message
    return f"{type(error).__name__}: {error}"


def job_release(*, job: ClaimedJob) -> None:
    """Give the job back (its runner is stopping): due again at once, this claim uncounted."""
    released = _held(job).update(
        state=JobState.QUEUED,
        claim_token="",
        claimed_by="",
        lease_until=None,
        attempts=F("attempts") - 1,
    )
    if released:
        transaction.on_commit(JOBS.notify)


def job_give_up(*, job: ClaimedJob, kind: JobKind) -> None:
    """Stop a job whose runner died `MAX_ATTEMPTS` times instead of running it again."""
    error = JobInterruptedError(
        f"Stopped: the worker running it stopped unexpectedly {job.attempt - 1} times "
        "(see its log)."
    )
    job_stop(job=job, error=error, kind=kind)


def job_cancel(*, job_id: int) -> bool:
    """Cancel a job: a queued one at once (True); a running one is asked to stop, which it
    does at its next step (False). A finished one is left as it is (False)."""
    with transaction.atomic():
        cancelled = Job.objects.filter(pk=job_id, state=JobState.QUEUED).update(
            state=JobState.CANCELLED, finished_at=timezone.now(), error="Cancelled."
        )
        if not cancelled:
            Job.objects.filter(pk=job_id, state=JobState.RUNNING).update(is_cancel_requested=True)
    return bool(cancelled)
