"""The bounce mailbox Postroom reads, and what it found there (docs/deliverability.md).

Bounces (RFC 3464 delivery status notifications, and the non-standard ones) and spam
complaints (ARF, RFC 5965) arrive after the relay said 250, in a mailbox of their own. The
worker polls it (postroom.bounces.polling), reads each new mail once (postroom.bounces.
processing) and records here what it was and what Postroom did about it.
"""

from __future__ import annotations

from django.db import models


class Protocol(models.TextChoices):
    IMAP = "imap", "IMAP"
    POP3 = "pop3", "POP3"


class Security(models.TextChoices):
    IMPLICIT_TLS = "tls", "TLS from the first byte (IMAPS 993, POP3S 995)"
    STARTTLS = "starttls", "STARTTLS (IMAP 143, POP3 110)"
    NONE = "none", "None (plain text: only on a trusted network)"


class MailboxAuth(models.TextChoices):
    PASSWORD = "password", "Password"
    # The company's OAuth sign-in (postroom.oauth, owner "company"): the bounce mailbox is
    # the company's mailbox at the same provider.
    OAUTH_COMPANY = "oauth_company", "The company's OAuth sign-in (XOAUTH2)"


class BounceMailbox(models.Model):
    """The one bounce mailbox (pk 1), edited on Company → Bounce mailbox."""

    is_enabled = models.BooleanField("read this mailbox", default=False)
    protocol = models.CharField(max_length=8, choices=Protocol.choices, default=Protocol.IMAP)
    host = models.CharField(max_length=253, blank=True)
    port = models.PositiveIntegerField(null=True, blank=True)
    security = models.CharField(
        max_length=10, choices=Security.choices, default=Security.IMPLICIT_TLS
    )
    # PEM of a CA to trust besides the system's (a company CA, or the tests' own).
    ca_certificate = models.TextField(blank=True)
    username = models.CharField(max_length=320, blank=True)
    auth_method = models.CharField(
        max_length=16, choices=MailboxAuth.choices, default=MailboxAuth.PASSWORD
    )
    password_encrypted = models.TextField(blank=True, editable=False)
    # IMAP: where new mail is read, and where processed mail is moved (never deleted).
    folder = models.CharField(max_length=200, default="INBOX")
    processed_folder = models.CharField(max_length=200, default="Postroom/Processed")
    poll_minutes = models.PositiveSmallIntegerField(default=5)
    # Soft bounces (a full mailbox, a greylisting that never ended) suppress an address once
    # this many arrived within soft_bounce_days.
    soft_bounce_limit = models.PositiveSmallIntegerField(default=3)
    soft_bounce_days = models.PositiveSmallIntegerField(default=30)

    last_poll_at = models.DateTimeField(null=True, blank=True)
    last_poll_ok = models.BooleanField(default=True)
    last_poll_message = models.TextField(blank=True)
    # The poll's lease (postroom.bounces.polling): one process polls at a time, however many
    # workers run; a poller that died frees the mailbox when poll_lease_until passes.
    poll_claimed_by = models.CharField(max_length=200, blank=True)
    poll_claim_token = models.CharField(max_length=32, blank=True)
    poll_lease_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"bounce mailbox {self.username}@{self.host}"


class ReportKind(models.TextChoices):
    HARD_BOUNCE = "hard", "Hard bounce"
    SOFT_BOUNCE = "soft", "Soft bounce"
    COMPLAINT = "complaint", "Spam complaint"
    DELAY = "delay", "Delay notice (still trying)"
    NOT_A_BOUNCE = "other", "Not a bounce"


class BounceReport(models.Model):
    """One mail read from the bounce mailbox, and what Postroom did about it."""

    received_at = models.DateTimeField()
    kind = models.CharField(max_length=10, choices=ReportKind.choices)
    # The bounce's own Message-ID and where it was in the mailbox (IMAP UID or POP3 UIDL).
    report_message_id = models.CharField(max_length=250, blank=True)
    mailbox_ref = models.CharField(max_length=200, blank=True)
    subject = models.CharField(max_length=500, blank=True)
    # The message and recipient it was matched to (empty: not matched to Postroom's mail).
    message = models.ForeignKey(
        "outbox.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    recipient = models.CharField(max_length=320, blank=True)
    status = models.CharField(max_length=16, blank=True)  # the DSN's Status: 5.1.1
    diagnostic = models.TextField(blank=True)
    matched_by = models.CharField(max_length=40, blank=True)  # "tagged return path", "Message-ID"
    action = models.TextField(blank=True)  # what Postroom did, in words

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["recipient", "kind"], name="bounces_report_recipient")]

    def __str__(self) -> str:
        return f"{self.kind} {self.recipient}"


class SeenMail(models.Model):
    """A mail already read: POP3 cannot move or flag, and Postroom never deletes unasked, so
    it remembers what it read (by its UIDL, "pop3 <uidl>"). An IMAP mail is moved once read;
    it is remembered ("imap <uidvalidity>:<uid> <folder>") so that a move that failed is
    retried without reading the mail twice.

    A mail whose processing failed is remembered with the `error`, left where it is, and not
    read again: the page shows it, and the administrator decides."""

    uidl = models.CharField(max_length=200, unique=True)
    seen_at = models.DateTimeField()
    error = models.TextField(blank=True)

    def __str__(self) -> str:
        return self.uidl
