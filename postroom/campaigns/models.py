"""Campaign templates, campaigns, and each campaign's recipients.

A campaign's mail is outbox bulk mail: at Send its template is frozen into one immutable
`outbox.BulkTemplate` (`bulk_template`, one per campaign: its Feedback-ID header names the
campaign), and the expansion job (postroom.campaigns.expansion) writes one outbox message per
contact, with a `CampaignRecipient` row beside it in the same transaction. The unique key on
(campaign, contact) is what makes "nobody gets a campaign twice" a rule of the database, not
of the code; `expanded_through` is the keyset checkpoint a restarted job resumes from.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class CampaignTemplate(models.Model):
    """A campaign's letter: HTML and plain text with merge fields (postroom.mail.merge).

    `html` is kept as written (with its <style>); CSS is inlined when the campaign is sent
    and in the preview (postroom.campaigns.letters). A blank `text` is generated from the
    HTML.
    """

    name = models.CharField(max_length=200)
    html = models.TextField(blank=True)
    text = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SCHEDULED = "scheduled", "Scheduled"
    SENDING = "sending", "Sending"
    PAUSED = "paused", "Paused"
    FINISHED = "finished", "Finished"
    CANCELLED = "cancelled", "Cancelled"


# States in which the expansion job may write messages and the outbox may send them.
RUNNING_STATUSES = (CampaignStatus.SCHEDULED, CampaignStatus.SENDING)
# States a campaign never leaves.
FINAL_STATUSES = (CampaignStatus.FINISHED, CampaignStatus.CANCELLED)


class SenderKind(models.TextChoices):
    COMPANY = "company", "The company"
    USER = "user", "A user (under the send-as policy)"


class Campaign(models.Model):
    name = models.CharField(max_length=200)
    status = models.CharField(
        max_length=10, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT
    )
    sender_kind = models.CharField(
        max_length=8, choices=SenderKind.choices, default=SenderKind.COMPANY
    )
    sender_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    subject = models.TextField(blank=True)
    template = models.ForeignKey(
        CampaignTemplate, null=True, blank=True, on_delete=models.PROTECT, related_name="campaigns"
    )
    # The audience: ids of postroom.audiences lists and segments (checked when sent).
    list_ids = models.JSONField(default=list, blank=True)
    segment_ids = models.JSONField(default=list, blank=True)
    # Send at this time (None: at once); `time_zone` is the zone it was written in, shown back.
    scheduled_at = models.DateTimeField(null=True, blank=True)
    time_zone = models.CharField(max_length=64, blank=True)
    # On top of the relay's own limits (0: none). Spaces the messages' send times.
    throttle_per_minute = models.PositiveIntegerField(default=0)
    throttle_per_hour = models.PositiveIntegerField(default=0)
    # Auto-pause: when more than `auto_pause_percent` of the last `auto_pause_window`
    # messages failed (permanently), the campaign pauses (postroom.campaigns.monitor).
    auto_pause_window = models.PositiveIntegerField(default=100)
    auto_pause_percent = models.PositiveSmallIntegerField(default=10)

    # Frozen at Send.
    bulk_template = models.ForeignKey(
        "outbox.BulkTemplate", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    audience_at = models.DateTimeField(null=True, blank=True)  # segments' "now"
    is_tracking = models.BooleanField(default=False)  # the company setting at Send
    tracked_links = models.JSONField(default=list, blank=True)  # click URLs by index
    job = models.ForeignKey(
        "queue.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    # Pre-flight: every recipient rendered before the first message.
    is_preflight_done = models.BooleanField(default=False)
    preflight_checked = models.PositiveIntegerField(default=0)
    preflight_failed = models.PositiveIntegerField(default=0)
    preflight_report = models.JSONField(default=list, blank=True)  # [[contact id, address, why]]

    # Expansion: the keyset checkpoint (the last contact id written) and what it wrote.
    expanded_through = models.BigIntegerField(default=0)
    is_expanded = models.BooleanField(default=False)
    queued_count = models.PositiveIntegerField(default=0)
    skipped_suppressed = models.PositiveIntegerField(default=0)
    skipped_no_consent = models.PositiveIntegerField(default=0)
    # When the first message is due: the throttle spaces the others from it.
    send_from = models.DateTimeField(null=True, blank=True)

    paused_at = models.DateTimeField(null=True, blank=True)
    paused_reason = models.TextField(blank=True)
    # The last outcomes, oldest first: "1" a permanent failure, "0" anything else.
    recent_outcomes = models.TextField(blank=True)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)  # when Send was pressed
    finished_at = models.DateTimeField(null=True, blank=True)  # finished or cancelled

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"

    @property
    def is_draft(self) -> bool:
        return self.status == CampaignStatus.DRAFT

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


class CampaignRecipient(models.Model):
    """A contact a campaign wrote a message to; written with the message, never twice.

    The message is the campaign's outbox message to `address` (bulk_template and address
    find it: postroom.campaigns.selectors). Unsubscribes, opens and clicks are counted here.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="recipients")
    contact = models.ForeignKey(
        "contacts.Contact", on_delete=models.CASCADE, related_name="campaign_recipients"
    )
    address = models.CharField(max_length=320)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    open_count = models.PositiveIntegerField(default=0)
    clicked_at = models.DateTimeField(null=True, blank=True)
    click_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "contact"], name="campaigns_recipient_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.address} in campaign {self.campaign_id}"
