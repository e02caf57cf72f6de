"""Webhooks: endpoints administrators register, and each event's delivery to each of them.

The outbox writes an `Event` row in the same transaction as every state change. The
dispatcher fans new events out into one `Delivery` per subscribed endpoint, in the same
transaction as it advances its `Cursor`, then posts each delivery until the endpoint
answers 2xx or three days have passed. Every try is a `DeliveryAttempt`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from postroom.outbox.models import Event


class Endpoint(models.Model):
    url = models.CharField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    # True: every event type, including ones Postroom adds later. False: only `event_types`.
    all_events = models.BooleanField(default=True)
    event_types = models.JSONField(default=list, blank=True)  # EventKind values
    # The signing secret (`whsec_…`), Fernet-encrypted: the dispatcher needs the plaintext to
    # sign, so it cannot be hashed. Never shown after the page that created or rotated it.
    secret_encrypted = models.TextField()
    # After a rotation, requests are signed with both secrets until `previous_secret_until`
    # (the Standard Webhooks zero-downtime rotation), so a receiver can switch at leisure.
    previous_secret_encrypted = models.TextField(blank=True)
    previous_secret_until = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    # Ticked by an administrator for a receiver on the company's own network. Without it, a
    # URL whose host is or resolves to a loopback, private or other non-public address is
    # refused when saved and when posted (postroom.webhooks.targets).
    is_internal_allowed = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)
    # Set at the first failed attempt after a success, cleared by the next success: the list
    # warns about an endpoint that keeps failing instead of turning it off behind anyone's back.
    failing_since = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_ok = models.BooleanField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.url

    def subscribes_to(self, event_type: str) -> bool:
        return self.all_events or event_type in self.event_types


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed (gave up)"


PING = "ping"  # the event type of "Send test event"


class Delivery(models.Model):
    """One event for one endpoint. Its `webhook_id` (and body) stay the same across retries,
    so a receiver can drop a duplicate, as the Standard Webhooks convention asks."""

    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    # Null for a test ping, and after the outbox has pruned the event (the body is kept).
    event = models.ForeignKey(
        Event, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    event_type = models.CharField(max_length=30)
    webhook_id = models.CharField(max_length=60)
    # The exact JSON bytes posted and signed, built once at fan-out.
    body = models.TextField()
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    # Failures since the last success or resend: what the backoff grows with.
    consecutive_failures = models.PositiveIntegerField(default=0)
    # When a dispatcher may take it next: now, a retry time, or while a dispatcher holds it,
    # the end of its lease (so a crashed dispatcher's deliveries come back). Null when done.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True, db_index=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_response = models.TextField(blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # Fan-out is exactly once per event and endpoint; this makes a bug loud.
            models.UniqueConstraint(
                fields=["endpoint", "event"],
                condition=models.Q(event__isnull=False),
                name="webhooks_delivery_once_per_event",
            )
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="webhooks_delivery_due",
                condition=models.Q(status="pending"),
            ),
            models.Index(fields=["endpoint", "-id"], name="webhooks_delivery_log"),
            models.Index(fields=["endpoint", "status"], name="webhooks_delivery_health"),
        ]

    def __str__(self) -> str:
        return f"{self.webhook_id} → {self.endpoint_id} ({self.status})"


class DeliveryAttempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    response_excerpt = models.TextField(blank=True)
    error = models.TextField(blank=True)
    is_success = models.BooleanField(default=False)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.status_code or self.error[:40]}"


class Cursor(models.Model):
    """The fan-out checkpoint: one row. Advanced in the transaction that creates deliveries.

    `last_event_id` is the highest Event id fanned out. On PostgreSQL ids are handed out when
    rows are inserted but become visible when their transaction commits, so a lower id can
    appear after a higher one: such holes are kept as `CursorGap` rows and looked at again
    until they fill or `GAP_WAIT` passes (a rolled-back transaction leaves a hole for ever).
    `version` makes two dispatchers' fan-outs exclude each other (conditional UPDATE).
    """

    name = models.CharField(max_length=30, unique=True, default="events")
    last_event_id = models.BigIntegerField(default=0)
    version = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} at {self.last_event_id}"


class CursorGap(models.Model):
    event_id = models.BigIntegerField(unique=True)
    noted_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"gap {self.event_id}"
