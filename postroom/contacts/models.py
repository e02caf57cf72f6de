"""Contacts, the companies they work for, their tags, and CSV import jobs.

Case-insensitive uniqueness (of a contact's address, a company's name) is kept in a `*_key`
column computed in Python (`str.lower()`), with a plain unique constraint on it. A
`Lower(...)` index would make the database the judge, and databases fold case differently:
SQLite's LOWER() folds only ASCII, so "Ä@x" and "ä@x" are two addresses to it and one to
Python. With the key column, the import's lookups and the constraint always agree.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Organization(models.Model):
    """A company a contact works for. Not the Company master (postroom.company), which is
    the install's own company."""

    name = models.CharField(max_length=200)
    name_key = models.CharField(max_length=200, unique=True, editable=False)
    website = models.CharField(max_length=500, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "company"
        verbose_name_plural = "companies"
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    """A label on contacts ("customer", "trade fair 2024"). Names are stored in lower case,
    so "VIP" and "vip" are one tag."""

    name = models.CharField(max_length=50, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Contact(models.Model):
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    # Normalised by email-validator (postroom.mail.addresses); `email_key` is its lower case.
    email = models.CharField(max_length=320)
    email_key = models.CharField(max_length=320, unique=True, editable=False)
    phone = models.CharField(max_length=50, blank=True)
    organization = models.ForeignKey(
        Organization,
        verbose_name="company",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="contacts",
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="contacts")
    notes = models.TextField(blank=True)

    # The last consent decision (given or withdrawn): when, and where it came from, so
    # that consent can be shown when someone asks (GDPR Art. 7(1)).
    marketing_consent = models.BooleanField("consent to marketing", default=False)
    marketing_consent_at = models.DateTimeField("consent date", null=True, blank=True)
    marketing_consent_source = models.CharField("consent source", max_length=200, blank=True)

    is_active = models.BooleanField("active", default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["last_name", "first_name", "email_key"]
        indexes = [
            models.Index(fields=["last_name", "first_name"], name="contacts_contact_name"),
        ]

    def __str__(self) -> str:
        return self.name or self.email

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class ImportStatus(models.TextChoices):
    UPLOADED = "uploaded", "Uploaded: map the columns"
    CHECKING = "checking", "Checking every row"
    CHECKED = "checked", "Checked: ready to import"
    IMPORTING = "importing", "Importing"
    DONE = "done", "Imported"
    FAILED = "failed", "Failed: nothing was imported"
    CANCELLED = "cancelled", "Cancelled"


RUNNING_IMPORT_STATUSES = (ImportStatus.CHECKING, ImportStatus.IMPORTING)


class ImportJob(models.Model):
    """One CSV import: the stored upload, the column mapping, and the outcome.

    The upload lives in DATA_DIR/imports/ until the import is done or cancelled.
    `report` holds every rejected row as [row number, reason, [cells]] so the rejected rows
    can be downloaded, fixed and imported again. Checking and importing run in the worker
    as jobs (postroom.queue); `job` is the latest, with its progress.
    """

    status = models.CharField(
        max_length=10, choices=ImportStatus.choices, default=ImportStatus.UPLOADED
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    job = models.ForeignKey(
        "queue.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    filename = models.CharField(max_length=255)
    stored_name = models.CharField(max_length=100, blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    delimiter = models.CharField(max_length=1, default=",")
    headers = models.JSONField(default=list)
    # CSV column index (as a string, JSON keys are strings) -> contact field name.
    mapping = models.JSONField(default=dict)

    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    unchanged_count = models.PositiveIntegerField(default=0)
    merged_count = models.PositiveIntegerField(default=0)
    rejected_count = models.PositiveIntegerField(default=0)
    preview = models.JSONField(default=list)
    report = models.JSONField(default=list)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"import {self.pk} of {self.filename} ({self.status})"

    @property
    def is_running(self) -> bool:
        return self.status in RUNNING_IMPORT_STATUSES
