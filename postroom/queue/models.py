"""Jobs: long-running work (a CSV import's check and its import now; campaign expansion and
report runs next) that a worker's job runner does under a lease, with its progress here.

A job lives in the database from the moment it is asked for, so a restart of the web server
loses nothing, and a runner holds it by a lease (postroom.queue.lease), so two runners on two
hosts never run it at once. What a job works on is its kind's business: `payload` holds ids
to find it, never the data itself.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class JobState(models.TextChoices):
    QUEUED = "queued", "Waiting for a worker"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


UNFINISHED_JOB_STATES = (JobState.QUEUED, JobState.RUNNING)


class Job(models.Model):
    kind = models.CharField(max_length=100)  # what to run: a key of the runner's kinds
    payload = models.JSONField(default=dict)
    # The host whose runners may run it, when its work is in files of that host's data
    # directory (a CSV upload); blank for any host.
    host = models.CharField(max_length=200, blank=True)
    state = models.CharField(max_length=10, choices=JobState.choices, default=JobState.QUEUED)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)  # first claimed
    finished_at = models.DateTimeField(null=True, blank=True)

    # The lease: who holds a running job, the token of its claim, and until when it holds it
    # unless it renews. A running job whose lease ended lost its runner (a crash, kill -9)
    # and is due again.
    claimed_by = models.CharField(max_length=200, blank=True)
    claim_token = models.CharField(max_length=32, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)  # claims that started it
    is_cancel_requested = models.BooleanField(default=False)

    # Progress, written by the runner's heartbeat: what it does now, and how far it is.
    phase = models.CharField(max_length=200, blank=True)
    progress_done = models.PositiveBigIntegerField(default=0)
    progress_total = models.PositiveBigIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["state", "lease_until"], name="queue_job_due")]

    def __str__(self) -> str:
        return f"job {self.pk} {self.kind} ({self.state})"

    @property
    def is_unfinished(self) -> bool:
        return self.state in UNFINISHED_JOB_STATES

    @property
    def percent(self) -> int:
        if not self.progress_total:
            return 0
        return min(100, self.progress_done * 100 // self.progress_total)
