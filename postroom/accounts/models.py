"""User Master: the people who use Postroom and the address their mail comes from."""

from __future__ import annotations

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
