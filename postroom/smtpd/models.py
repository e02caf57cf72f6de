"""SMTP credentials: how a system that only speaks SMTP (an old ERP module, a scanner, a
monitoring tool) logs in to Postroom's listener (postroom.smtpd.server).

Managed like API keys: the password is made by Postroom, shown once, and only its SHA-256 is
stored (a 256-bit random secret cannot be guessed from its hash; see accounts.api_keys).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class SmtpCredential(models.Model):
    name = models.CharField(max_length=100)  # for people: "ERP invoices"
    username = models.CharField(max_length=64, unique=True)
    password_hash = models.CharField(max_length=64)  # hex SHA-256 of the password
    # Envelope senders and From addresses it may use: addresses, or "@domain" for a whole
    # domain. Empty: none (a credential must say what it sends as).
    allowed_senders = models.JSONField(default=list)
    rate_limit_per_minute = models.PositiveIntegerField(default=600)
    max_recipients = models.PositiveIntegerField(default=100)
    # Clients from these networks (CIDR) may send as this credential without AUTH, for a
    # device that cannot log in. Empty (the default): AUTH always.
    networks_without_auth = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(default=True)

    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.username})"
