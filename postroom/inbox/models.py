"""The capture inbox: every message the built-in SMTP server received, exactly as received.

In sandbox mode (or before a relay is configured) the outbox delivers here over real SMTP
instead of to the company relay, so a new user can send mail and look at it at once.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import models


class UnicodeJSONEncoder(json.JSONEncoder):
    """Store non-ASCII addresses as themselves, not as \\u escapes, so that searching the
    envelope recipients for "jörg@" finds them (the search compares the stored JSON text)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["ensure_ascii"] = False
        super().__init__(**kwargs)


class CapturedMessage(models.Model):
    """One SMTP transaction the capture server accepted: envelope, exact bytes, a summary."""

    received_at = models.DateTimeField(db_index=True)
    # The envelope (RFC 5321 MAIL FROM / RCPT TO), which may differ from the headers: Bcc
    # recipients appear only here. The null sender `<>` is stored as "".
    mail_from = models.TextField(blank=True)
    rcpt_tos = models.JSONField(default=list, encoder=UnicodeJSONEncoder)
    peer = models.CharField(max_length=100, blank=True)  # "127.0.0.1:54321"
    # The DATA as received, dot-unstuffed (RFC 5321 §4.5.2) and otherwise untouched.
    raw = models.BinaryField()
    # The outbox message this is a delivery of, found at capture by its Message-ID and
    # envelope sender. It decides who may read the capture (the Outbox's rule); mail that
    # came from outside the outbox has none, and only administrators read it.
    outbox_message = models.ForeignKey(
        "outbox.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    # Parsed once at capture so the list never loads or parses `raw`. Decoded header text.
    from_header = models.TextField(blank=True)
    to_header = models.TextField(blank=True)
    subject = models.TextField(blank=True)
    message_id = models.TextField(blank=True)
    size = models.PositiveIntegerField()
    has_attachments = models.BooleanField(default=False)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.subject or '(no subject)'}"
