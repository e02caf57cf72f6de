"""The durable outbox: every email of every feature is a row here before it is anything else.

A message is stored as the exact RFC 5322 bytes that will be sent (`raw`), or, for bulk mail,
as an immutable `BulkTemplate` plus this recipient's data, which render those bytes
deterministically. Status lives per recipient; the message status summarises them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Upper


class Lane(models.TextChoices):
    # A person or an API call waiting for their email must never queue behind a campaign.
    TRANSACTIONAL = "transactional", "Transactional"
    BULK = "bulk", "Bulk"


LANE_PRIORITY = {Lane.TRANSACTIONAL: 0, Lane.BULK: 1}


class MessageStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    # Delivered to the sandbox capture (sandbox mode, or no SMTP server yet): never sent out,
    # and never counted as delivered.
    CAPTURED = "captured", "Captured (sandbox)"
    PARTIAL = "partial", "Partly sent"  # finished: some recipients sent, others failed
    DEFERRED = "deferred", "Deferred"
    UNCERTAIN = "uncertain", "Uncertain"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


# Statuses in which a message still has work for a worker. A "sending" row whose lease ran
# out belongs to a worker that died: it is claimable again. "uncertain" is final: the one
# retry an uncertain delivery gets is scheduled as "deferred".
ACTIVE_MESSAGE_STATUSES = (
    MessageStatus.QUEUED,
    MessageStatus.SENDING,
    MessageStatus.DEFERRED,
)


class RecipientStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    CAPTURED = "captured", "Captured (sandbox)"
    DEFERRED = "deferred", "Deferred"
    UNCERTAIN = "uncertain", "Uncertain"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    # Bulk mail not sent because the address is on the suppression list (postroom.outbox.
    # suppression): final, like cancelled, but by the list's rule rather than a person.
    SUPPRESSED = "suppressed", "Suppressed (not sent)"


PENDING_RECIPIENT_STATUSES = (
    RecipientStatus.QUEUED,
    RecipientStatus.SENDING,
    RecipientStatus.DEFERRED,
)


class RecipientKind(models.TextChoices):
    TO = "to", "To"
    CC = "cc", "Cc"
    BCC = "bcc", "Bcc"


class Classification(models.TextChoices):
    SUCCESS = "success", "Success"
    TEMPORARY = "temporary", "Temporary failure"
    PERMANENT = "permanent", "Permanent failure"
    # The connection dropped after the final "." and before the reply: the server may have it.
    UNCERTAIN = "uncertain", "Uncertain"
    # Our side is wrong (bad password, sender refused, TLS impossible): fixing settings helps.
    CONFIG = "config", "Configuration problem"


class Source(models.TextChoices):
    COMPOSE = "compose", "Contact Email"
    API = "api", "HTTP API"
    DJANGO = "django", "send_mail"
    CLI = "cli", "Command line"
    SMTP = "smtp", "SMTP listener"
    CAMPAIGN = "campaign", "Campaign"
    REPORT = "report", "Report"
    TEST = "test", "Test email"


class SendAs(models.TextChoices):
    """Whose address a message from a user went out with (the company's send-as policy)."""

    AS_USER = "as_user", "As the user"
    VIA_COMPANY = "via_company", "Via the company"
    # Through the user's own mailbox (an OAuth sign-in of theirs), not the company relay.
    OWN_MAILBOX = "own_mailbox", "Through the user's own mailbox"


class BulkTemplate(models.Model):
    """An immutable template version: a bulk message stores this plus its recipient's data.

    Never updated after creation (a changed template is a new row, found by content hash),
    so the bytes a queued message renders to cannot change under it.
    """

    content_hash = models.CharField(max_length=64, unique=True)
    from_name = models.CharField(max_length=200, blank=True)
    from_address = models.CharField(max_length=320)
    reply_to = models.JSONField(default=list, blank=True)  # [[name, address], ...]
    subject = models.TextField()
    text = models.TextField(blank=True)
    html = models.TextField(blank=True)
    headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"template {self.content_hash[:12]}"


class BulkHold(models.Model):
    """A bulk template whose messages must not start: its sender (a campaign) paused or
    cancelled it (postroom.outbox.holds). Deleted when the hold ends; a cancel's stays."""

    template = models.OneToOneField(BulkTemplate, on_delete=models.CASCADE, related_name="hold")
    held_at = models.DateTimeField()
    is_cancelled = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"hold of {self.template}"


class Message(models.Model):
    message_id = models.CharField(max_length=250, unique=True)
    idempotency_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    lane = models.CharField(max_length=16, choices=Lane.choices, default=Lane.TRANSACTIONAL)
    priority = models.PositiveSmallIntegerField(default=0)  # LANE_PRIORITY of the lane
    status = models.CharField(
        max_length=12, choices=MessageStatus.choices, default=MessageStatus.QUEUED
    )
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.API)
    # More about the source where there is more to say: the SMTP credential and client.
    source_detail = models.CharField(max_length=200, blank=True)

    envelope_from = models.CharField(max_length=320)
    from_header = models.CharField(max_length=500)
    subject = models.TextField(blank=True)
    sender_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    raw = models.BinaryField(null=True, blank=True)
    bulk_template = models.ForeignKey(
        BulkTemplate, null=True, blank=True, on_delete=models.PROTECT, related_name="messages"
    )
    bulk_data = models.JSONField(null=True, blank=True)
    size = models.PositiveIntegerField(default=0)
    needs_smtputf8 = models.BooleanField(default=False)
    # Mail from a user: how it was sent, and, under the "auto" policy, the same message
    # "via the company" (same Message-ID) to send instead if the relay refuses the user.
    send_as = models.CharField(max_length=12, choices=SendAs.choices, blank=True)
    fallback_raw = models.BinaryField(null=True, blank=True)
    fallback_envelope_from = models.CharField(max_length=320, blank=True)
    fallback_from_header = models.CharField(max_length=500, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    not_before_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    # When a worker may take the message next: not_before_at, a retry time, or, while a
    # worker holds it, the end of its lease (so a dead worker's messages come back). Empty
    # once the message is finished, so the claim's index holds only mail with work to do.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    attempt_count = models.PositiveIntegerField(default=0)
    claimed_by = models.CharField(max_length=120, blank=True)
    claim_token = models.CharField(max_length=36, blank=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # The claim walks this index: transactional first, then the longest waiting.
            # Finished mail has no next attempt and stays out of it. (Not a condition on
            # status: SQLite cannot match one against bound parameters, but it knows that
            # "next_attempt_at <= ?" implies "IS NOT NULL".)
            models.Index(
                fields=["priority", "next_attempt_at"],
                name="outbox_message_due",
                condition=models.Q(next_attempt_at__isnull=False),
            ),
            models.Index(fields=["status", "created_at"], name="outbox_message_status"),
        ]

    # Not stored: True on the Message that message_enqueue returns for an idempotency key that
    # was already used (the message the first request queued), False on a new one.
    is_replay = False

    def __str__(self) -> str:
        return f"{self.message_id} ({self.status})"


class Recipient(models.Model):
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="recipients")
    address = models.CharField(max_length=320)
    kind = models.CharField(max_length=3, choices=RecipientKind.choices, default=RecipientKind.TO)
    status = models.CharField(
        max_length=12, choices=RecipientStatus.choices, default=RecipientStatus.QUEUED
    )
    attempt_count = models.PositiveIntegerField(default=0)
    uncertain_count = models.PositiveSmallIntegerField(default=0)
    last_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_enhanced_code = models.CharField(max_length=16, blank=True)
    last_text = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["address"], name="outbox_recipient_address"),
            # A contact's history looks recipients up by address whatever its case.
            models.Index(Upper("address"), name="outbox_recipient_address_ci"),
        ]

    def __str__(self) -> str:
        return f"{self.address} ({self.status})"


class Attempt(models.Model):
    """One delivery attempt's outcome for one recipient (or for the whole message)."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attempts")
    recipient = models.ForeignKey(
        Recipient, null=True, blank=True, on_delete=models.CASCADE, related_name="attempts"
    )
    at = models.DateTimeField()
    server = models.CharField(max_length=300)
    worker = models.CharField(max_length=120, blank=True)
    stage = models.CharField(max_length=16)  # connect, tls, auth, mail, rcpt, data, end_of_data
    code = models.PositiveSmallIntegerField(null=True, blank=True)
    enhanced_code = models.CharField(max_length=16, blank=True)
    text = models.TextField(blank=True)
    classification = models.CharField(max_length=12, choices=Classification.choices)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.stage} {self.code} {self.classification}"


class SenderRefusal(models.Model):
    """An address the relay would not let us send as; the "auto" policy remembers it."""

    address = models.CharField(max_length=320, unique=True)
    server = models.CharField(max_length=300)
    refused_at = models.DateTimeField()
    code = models.PositiveSmallIntegerField(null=True, blank=True)
    text = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"{self.address} refused by {self.server}"


class ServerPause(models.Model):
    """A server whose sending stopped because our side is wrong (bad password, refused sender).

    Burning the whole queue against a 535 helps no one: the worker pauses the server and the
    administrator resumes it after fixing the settings.
    """

    server = models.CharField(max_length=300, unique=True)
    paused_at = models.DateTimeField()
    code = models.PositiveSmallIntegerField(null=True, blank=True)
    reason = models.TextField()
    # When the administrators were told that it lasts (POSTROOM_PAUSE_ALERT_MINUTES).
    alerted_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.server} paused"


class SuppressionReason(models.TextChoices):
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
    HARD_BOUNCED = "hard_bounced", "Hard bounce (the address does not exist)"
    COMPLAINED = "complained", "Complained (reported as spam)"
    MANUAL = "manual", "Added by hand"


class Suppression(models.Model):
    """An address bulk mail is never sent to (postroom.outbox.suppression).

    `address_key` is the address in lower case, computed in Python, with a plain unique
    constraint: one entry per address whatever its case, as for contacts' addresses.
    """

    address = models.CharField(max_length=320)
    address_key = models.CharField(max_length=320, unique=True, editable=False)
    reason = models.CharField(max_length=16, choices=SuppressionReason.choices)
    note = models.TextField(blank=True)
    # Where it came from, in words: "bounce of message <…>", "CSV import of x.csv", "API".
    source = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.address} ({self.reason})"

    # Not stored: False on the entry suppression_add returns for an address that was
    # already suppressed (the existing entry, unchanged).
    is_new = True


class EventKind(models.TextChoices):
    MESSAGE_QUEUED = "message.queued", "Message queued"
    MESSAGE_SENT = "message.sent", "Message sent"
    MESSAGE_CAPTURED = "message.captured", "Message captured (sandbox mode, not sent)"
    MESSAGE_DEFERRED = "message.deferred", "Message deferred"
    MESSAGE_FAILED = "message.failed", "Message failed"
    MESSAGE_UNCERTAIN = "message.uncertain", "Message uncertain"
    MESSAGE_SUPPRESSED = "message.suppressed", "Message not sent: the address is suppressed"
    RECIPIENT_SUPPRESSED = "recipient.suppressed", "Address added to the suppression list"
    RECIPIENT_UNSUBSCRIBED = "recipient.unsubscribed", "Recipient unsubscribed"
    # Reports that came back after the relay accepted the message (postroom.bounces).
    RECIPIENT_BOUNCED = "recipient.bounced", "Bounced after it was sent"
    RECIPIENT_COMPLAINED = "recipient.complained", "Recipient reported it as spam"


class Event(models.Model):
    """A delivery event, written in the same transaction as the state change it reports.

    This is an outbox of events: webhooks (and anything else that reacts to delivery) read
    from here, so a crash between the change and its notification loses nothing.
    """

    kind = models.CharField(max_length=30, choices=EventKind.choices)
    # Not indexed: readers follow the id; every index here costs the worker per message.
    created_at = models.DateTimeField()
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    recipient = models.CharField(max_length=320, blank=True)
    data = models.JSONField(default=dict)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.recipient}"
