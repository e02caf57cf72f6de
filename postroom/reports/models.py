"""Data sources, reports, their schedules and runs.

A report reads one data source: Postroom's own database through a built-in report
(postroom.reports.builtins), or an external database an administrator connected
(`DataSource`), through SQL an administrator wrote. A schedule mails the report's file to its
recipients at the times of a cron expression in a time zone; each time is a `ReportRun`,
done by a job of the worker's job runner, whose email is an outbox message (`message`),
so the run's page shows that message's delivery status.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class SourceKind(models.TextChoices):
    POSTGRESQL = "postgresql", "PostgreSQL"
    MYSQL = "mysql", "MariaDB or MySQL"
    SQLITE = "sqlite", "SQLite file"
    URL = "url", "Other (SQLAlchemy URL)"


class DataSource(models.Model):
    """An external database. The password is write-only: stored encrypted
    (postroom.core.secrets), never shown, logged or audited."""

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=12, choices=SourceKind.choices)
    host = models.CharField(max_length=255, blank=True)
    port = models.PositiveIntegerField(null=True, blank=True)
    # The database's name; for SQLite, the file's path.
    database = models.CharField(max_length=1000, blank=True)
    username = models.CharField(max_length=200, blank=True)
    password_encrypted = models.TextField(blank=True)
    # For kind URL: a SQLAlchemy URL without its password (dialect+driver://user@host/db).
    url = models.CharField(max_length=2000, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def has_password(self) -> bool:
        return bool(self.password_encrypted)


class ReportFormat(models.TextChoices):
    CSV = "csv", "CSV"
    XLSX = "xlsx", "Excel (XLSX)"
    PDF = "pdf", "PDF"


class ChartKind(models.TextChoices):
    NONE = "", "No chart"
    BAR = "bar", "Bars"
    LINE = "line", "Line"


class Report(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # None: Postroom's own database, through the built-in report `builtin`.
    data_source = models.ForeignKey(
        DataSource, null=True, blank=True, on_delete=models.PROTECT, related_name="reports"
    )
    builtin = models.CharField(max_length=50, blank=True)
    sql = models.TextField(blank=True)
    # [{"name": "period", "type": "period", "value": "last month"}, ...]
    # (postroom.reports.parameters).
    parameters = models.JSONField(default=list, blank=True)
    format = models.CharField(max_length=4, choices=ReportFormat.choices, default=ReportFormat.CSV)
    chart = models.CharField(max_length=4, choices=ChartKind.choices, default="", blank=True)
    chart_label_column = models.CharField(max_length=200, blank=True)
    chart_value_columns = models.JSONField(default=list, blank=True)
    # Who else may run and schedule it ("given" it): whole roles, and single users.
    # Administrators may always; the owner is who wrote it.
    shared_roles = models.JSONField(default=list, blank=True)
    shared_users = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="reports_shared"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_builtin(self) -> bool:
        return self.data_source_id is None


class Frequency(models.TextChoices):
    DAILY = "daily", "Every day"
    WEEKDAYS = "weekdays", "Monday to Friday"
    WEEKLY = "weekly", "Every week"
    MONTHLY = "monthly", "Every month"
    CRON = "cron", "Cron expression"


class Schedule(models.Model):
    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="schedules")
    # Presets are kept as chosen (for the form) and as the cron expression they mean
    # (postroom.reports.timing.preset_cron); `cron` is what the scheduler reads.
    frequency = models.CharField(max_length=8, choices=Frequency.choices, default=Frequency.DAILY)
    time_of_day = models.TimeField(null=True, blank=True)
    weekday = models.PositiveSmallIntegerField(null=True, blank=True)  # 0 Monday .. 6 Sunday
    month_day = models.PositiveSmallIntegerField(null=True, blank=True)  # 1-28; 0: last day
    cron = models.CharField(max_length=200)
    time_zone = models.CharField(max_length=64)

    recipient_users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    recipient_contacts = models.ManyToManyField(
        "contacts.Contact", blank=True, related_name="report_schedules"
    )
    recipient_addresses = models.JSONField(default=list, blank=True)
    subject = models.TextField()
    body = models.TextField(blank=True)
    is_skip_if_empty = models.BooleanField(default=False)
    # Above this, the email carries a signed, expiring download link instead of the file.
    attach_max_bytes = models.PositiveIntegerField()

    is_paused = models.BooleanField(default=False)
    # The next time it is due (UTC); None while paused. The scheduler claims due schedules
    # with postroom.queue.lease.lease_claim and moves this on in the same transaction.
    next_run_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True)
    claimed_by = models.CharField(max_length=200, blank=True)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["report__name", "id"]
        indexes = [models.Index(fields=["next_run_at"], name="reports_schedule_due")]

    def __str__(self) -> str:
        return f"schedule {self.pk} of {self.report}"


class RunTrigger(models.TextChoices):
    SCHEDULED = "scheduled", "On schedule"
    CATCH_UP = "catch_up", "Late, after Postroom was not running"
    MANUAL = "manual", "Run now"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Waiting for the worker"
    RUNNING = "running", "Running"
    SENT = "sent", "Mailed"
    SKIPPED = "skipped", "Skipped (no rows)"
    FAILED = "failed", "Failed"


class ReportRun(models.Model):
    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="runs")
    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="runs")
    trigger = models.CharField(max_length=10, choices=RunTrigger.choices)
    status = models.CharField(max_length=8, choices=RunStatus.choices, default=RunStatus.QUEUED)
    # The schedule's time this run is for (relative dates are resolved at it), or when
    # Run now was pressed; `missed_count` slots before it were not run (Postroom was down).
    scheduled_for = models.DateTimeField()
    missed_count = models.PositiveIntegerField(default=0)
    note = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    job = models.ForeignKey(
        "queue.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    parameters = models.JSONField(default=dict, blank=True)  # as resolved: name -> text
    period = models.CharField(max_length=200, blank=True)
    rows = models.PositiveIntegerField(null=True, blank=True)
    is_truncated = models.BooleanField(default=False)
    size = models.PositiveBigIntegerField(null=True, blank=True)  # the file's bytes
    filename = models.CharField(max_length=255, blank=True)
    is_link = models.BooleanField(default=False)  # mailed as a download link
    message = models.ForeignKey(
        "outbox.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.report} ({self.status})"


class RunFile(models.Model):
    """A run's file too large to attach, served by a signed link until `expires_at`. In the
    database rather than the data directory, so every host's web server can serve it."""

    run = models.OneToOneField(ReportRun, on_delete=models.CASCADE, related_name="file")
    content_type = models.CharField(max_length=100)
    data = models.BinaryField()
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"file of {self.run}"
