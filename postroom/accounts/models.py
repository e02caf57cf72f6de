"""User Master: the people who use Postroom and the address their mail comes from."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models.functions import Lower


class Role(models.TextChoices):
    ADMINISTRATOR = "administrator", "Administrator"
    STAFF = "staff", "Staff"
    MARKETER = "marketer", "Marketer"


class User(AbstractUser):
    """A Postroom user. `email` is the address mail to contacts is sent from."""

    display_name = models.CharField(max_length=150, blank=True)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.STAFF)
    # Set when someone else chose the password (generated, or typed by an administrator):
    # that person knows it too, so the user must replace it before using Postroom.
    has_temporary_password = models.BooleanField(default=False)

    class Meta:
        ordering = ["username"]
        constraints = [
            # Mail to contacts comes from a user's address, so two users must not share one.
            # Mailbox local parts are case-sensitive only in theory (RFC 5321 §2.4); in practice
            # Alice@x and alice@x are the same person. Users without an address are allowed.
            models.UniqueConstraint(
                Lower("email"),
                condition=~models.Q(email=""),
                name="accounts_user_email_unique_ci",
                violation_error_message="Another user already has this email address.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return self.display_name or self.get_full_name() or self.username

    @property
    def is_administrator(self) -> bool:
        return self.role == Role.ADMINISTRATOR

    @property
    def has_email(self) -> bool:
        return bool(self.email)


class ApiScope(models.TextChoices):
    """What an API key may do. `admin` includes every other scope."""

    SEND = "send", "Send and cancel messages"
    READ = "read", "Read messages and their status"
    CONTACTS = "contacts", "Manage contacts"
    MARKETING = "marketing", "Marketing: lists, segments, suppression, campaigns"
    REPORTS = "reports", "Reports: list reports, run schedules now, read run history"
    ADMIN = "admin", "Everything, including administration"


class ApiKey(models.Model):
    """A key another system uses to call the HTTP API (postroom.accounts.api_keys).

    The key itself is shown once, when it is created, and never stored: only its public
    `prefix` (to find the row) and the SHA-256 of the whole key (to check it).
    """

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)  # hex SHA-256 of the full key
    scopes = models.JSONField(default=list)  # ApiScope values

    # Sender restriction. Neither set: the key may send as the company or as any user.
    # Either set: only as `sender_user` and/or from one of `allowed_from` (addresses).
    sender_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="api_keys",
    )
    allowed_from = models.JSONField(default=list, blank=True)

    rate_limit_per_minute = models.PositiveIntegerField(default=600)
    # Fixed-window request counter: the minute number (Unix time // 60) and requests in it.
    rate_window = models.BigIntegerField(default=0)
    rate_count = models.PositiveIntegerField(default=0)

    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API key"

    def __str__(self) -> str:
        # Never the key: only its public prefix.
        return f"{self.name} (pr_{self.prefix}_…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def is_sender_restricted(self) -> bool:
        return self.sender_user_id is not None or bool(self.allowed_from)

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes or ApiScope.ADMIN in self.scopes
