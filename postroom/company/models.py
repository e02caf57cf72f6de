"""Company master: the SMTP Server Information tab, the ePOD credentials, the sender identity.

There is one company per Postroom install, stored as the row with pk=1. Secrets are kept
only as Fernet tokens (see postroom.core.secrets); the plaintext never reaches a model field.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class TlsMode(models.TextChoices):
    # "auto" follows the seed's Y/N: Y = TLS required (implicit on 465, STARTTLS elsewhere),
    # N = STARTTLS when offered, otherwise plain text.
    AUTO = "auto", "Automatic (from port and Secure Connection Required)"
    STARTTLS = "starttls", "STARTTLS required"
    IMPLICIT = "implicit", "Implicit TLS (SMTPS)"
    NONE = "none", "None (plain text)"


class AuthMethod(models.TextChoices):
    AUTO = "auto", "Automatic (best offered)"
    PLAIN = "PLAIN", "PLAIN"
    LOGIN = "LOGIN", "LOGIN"
    # A token from an OAuth sign-in (postroom.oauth) instead of the password.
    XOAUTH2 = "XOAUTH2", "OAuth 2.0 (XOAUTH2)"


class SendAsPolicy(models.TextChoices):
    """What mail a user sends to a contact says in From, when the relay may refuse it."""

    AUTO = "auto", "Automatic: as the user; via the company once the relay refuses that address"
    AS_USER = "as_user", "As the user (From: the user's address)"
    VIA_COMPANY = (
        "via_company",
        "Via the company (From: “Alice Smith via Acme”, Reply-To: the user)",
    )


class Company(models.Model):
    name = models.CharField(max_length=200, blank=True)
    sender_email = models.CharField("company email address", max_length=254, blank=True)
    sender_name = models.CharField("company sender name", max_length=200, blank=True)

    # The seed page's fields, with its names.
    smtp_host = models.CharField("SMTP Server Address", max_length=253, blank=True)
    smtp_port = models.PositiveIntegerField("SMTP Communication Port", null=True, blank=True)
    smtp_login = models.CharField("SMTP Authentication Login", max_length=254, blank=True)
    smtp_password_encrypted = models.TextField(blank=True, editable=False)
    smtp_secure_required = models.BooleanField("SMTP Secure Connection Required", default=True)
    # Off: the SMTP password is only ever sent over TLS, whatever Y/N and the TLS mode say;
    # a relay on a trusted network that logs in over plain text needs this ticked.
    smtp_allow_plaintext_auth = models.BooleanField(
        "allow the password over an unencrypted connection", default=False
    )
    epod_username = models.CharField("ePOD API Username", max_length=254, blank=True)
    epod_password_encrypted = models.TextField(blank=True, editable=False)

    # Advanced.
    smtp_preset = models.CharField("provider preset", max_length=40, blank=True)
    smtp_tls_mode = models.CharField(
        "TLS mode", max_length=10, choices=TlsMode.choices, default=TlsMode.AUTO
    )
    smtp_ca_certificate = models.TextField("custom CA certificate (PEM)", blank=True)
    smtp_helo_name = models.CharField("HELO name", max_length=253, blank=True)
    smtp_auth_method = models.CharField(
        "authentication method", max_length=10, choices=AuthMethod.choices, default=AuthMethod.AUTO
    )
    # RFC 5321 §4.5.3.2 recommends these minimums for a client.
    smtp_timeout_connect = models.PositiveIntegerField("connect timeout (s)", default=30)
    smtp_timeout_command = models.PositiveIntegerField("command timeout (s)", default=300)
    smtp_timeout_data = models.PositiveIntegerField("end of data timeout (s)", default=600)

    # Connection and rate limits. Providers cap both: Microsoft 365 allows 3 concurrent
    # connections and 30 messages a minute per mailbox, Gmail about 2,000 messages a day.
    smtp_max_connections = models.PositiveSmallIntegerField("maximum connections", default=4)
    smtp_rate_per_second = models.PositiveIntegerField("messages per second", default=0)
    smtp_rate_per_minute = models.PositiveIntegerField("messages per minute", default=0)
    smtp_rate_per_day = models.PositiveIntegerField("messages per day", default=0)

    send_as_policy = models.CharField(
        "send-as policy", max_length=12, choices=SendAsPolicy.choices, default=SendAsPolicy.AUTO
    )

    # Sandbox mode: every message goes to the built-in capture inbox, none leaves the machine.
    sandbox_mode = models.BooleanField("sandbox mode", default=False)

    # Campaign opens (a pixel) and clicks (signed redirects) are counted only when this is
    # on: it tells the company who read what, so it is off until an administrator decides.
    campaign_tracking = models.BooleanField("track campaign opens and clicks", default=False)

    # The bounce mailbox's address. With tag_return_path on, mail through the company relay
    # leaves with it as the envelope sender, tagged with the message's number
    # (postroom.mail.verp), so a bounce names its message; the relay must allow that sender.
    # Off (or blank): the envelope sender is the message's own, as before.
    bounce_address = models.CharField("bounce address", max_length=254, blank=True)
    tag_return_path = models.BooleanField("tag the return path (VERP)", default=False)

    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name_plural = "companies"

    def __str__(self) -> str:
        return self.name or "Company"

    @property
    def has_smtp_password(self) -> bool:
        return bool(self.smtp_password_encrypted)

    @property
    def has_epod_password(self) -> bool:
        return bool(self.epod_password_encrypted)

    @property
    def is_smtp_configured(self) -> bool:
        return bool(self.smtp_host and self.smtp_port)
