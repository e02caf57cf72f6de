"""OAuth 2.0 sign-ins that SMTP logs in with (XOAUTH2): the company relay's, and a user's own
mailbox's.

Client secrets, service-account keys and tokens are kept only as Fernet tokens
(postroom.core.secrets), like the SMTP password: never in a page, a log, an API answer or the
audit log.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

COMPANY_OWNER = "company"


def user_owner(user_id: int) -> str:
    """The owner of a user's own mailbox sign-in."""
    return f"user:{user_id}"


class Provider(models.TextChoices):
    MICROSOFT365 = "microsoft365", "Microsoft 365 (Exchange Online)"
    GOOGLE = "google", "Google Workspace / Gmail"
    GENERIC = "generic", "Another provider (enter its endpoints)"


class Flow(models.TextChoices):
    # Someone signs in once in the browser; Postroom keeps the refresh token (PKCE, RFC 7636).
    DELEGATED = "delegated", "Sign in as the mailbox (authorization code with PKCE)"
    # Microsoft 365 app-only: a registered service principal with its client secret.
    APP_ONLY = "app_only", "App-only (client credentials)"
    # Google Workspace: a service account with domain-wide delegation (JWT bearer, RFC 7523).
    SERVICE_ACCOUNT = "service_account", "Service account with domain-wide delegation"


class OAuthConnection(models.Model):
    """One route's OAuth settings and tokens: `owner` is "company" or "user:<id>".

    A user's own mailbox signs in with the company's app (the same provider, client and
    endpoints, copied from the company's row and kept in step by services.connection_save),
    so an administrator registers Postroom once and each user only signs in.
    """

    owner = models.CharField(max_length=40, unique=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="mailbox_oauth",
    )
    provider = models.CharField(max_length=20, choices=Provider.choices)
    flow = models.CharField(max_length=20, choices=Flow.choices, default=Flow.DELEGATED)
    tenant = models.CharField("directory (tenant) ID", max_length=100, blank=True)
    client_id = models.CharField("client ID", max_length=300)
    client_secret_encrypted = models.TextField(blank=True, editable=False)
    service_account_key_encrypted = models.TextField(blank=True, editable=False)
    authorization_endpoint = models.URLField(max_length=500, blank=True)
    token_endpoint = models.URLField(max_length=500)
    scope = models.CharField(max_length=500)

    access_token_encrypted = models.TextField(blank=True, editable=False)
    access_expires_at = models.DateTimeField(null=True, blank=True)
    refresh_token_encrypted = models.TextField(blank=True, editable=False)
    # Only where the provider says (Microsoft's refresh_token_expires_in): the date by which
    # someone must sign in again.
    refresh_expires_at = models.DateTimeField(null=True, blank=True)
    signed_in_at = models.DateTimeField(null=True, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    # The last failure to get a token, in plain words; cleared by the next success.
    failure = models.TextField(blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    # When the people concerned were told the sign-in is about to run out.
    expiry_alerted_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"OAuth for {self.owner} ({self.get_provider_display()})"

    @property
    def provider_name(self) -> str:
        """The provider as people call it, for buttons; "" for a generic one."""
        return {Provider.MICROSOFT365: "Microsoft 365", Provider.GOOGLE: "Google"}.get(
            Provider(self.provider), ""
        )

    @property
    def has_client_secret(self) -> bool:
        return bool(self.client_secret_encrypted)

    @property
    def has_service_account_key(self) -> bool:
        return bool(self.service_account_key_encrypted)

    @property
    def is_signed_in(self) -> bool:
        """Whether a token can be had without a person: a refresh token, or app credentials."""
        if self.flow == Flow.APP_ONLY:
            return self.has_client_secret
        if self.flow == Flow.SERVICE_ACCOUNT:
            return self.has_service_account_key
        return bool(self.refresh_token_encrypted)
