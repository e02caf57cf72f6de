"""DKIM keys: one per sending domain and selector, with where it stands.

A key is born waiting for its DNS record; a check that finds the record published and
matching marks it checked; only then may it start signing. Starting a key retires the key of
the same domain and algorithm that signed before it (selector rotation). The private key is
kept only as a Fernet token (postroom.core.secrets); the public key is public: it is what
the administrator publishes in DNS.
"""

from __future__ import annotations

from django.db import models


class Algorithm(models.TextChoices):
    # The a= values of RFC 6376 §3.3 and RFC 8463 §3.
    RSA_SHA256 = "rsa-sha256", "RSA 2048 (rsa-sha256)"
    ED25519_SHA256 = "ed25519-sha256", "Ed25519 (ed25519-sha256)"

    @property
    def key_type(self) -> str:
        """The k= tag of the key's DNS record (RFC 6376 §3.6.1, RFC 8463 §4)."""
        return "ed25519" if self is Algorithm.ED25519_SHA256 else "rsa"


class KeyState(models.TextChoices):
    WAITING = "waiting", "Waiting for DNS"
    CHECKED = "checked", "Published and checked"
    SIGNING = "signing", "Signing"
    RETIRED = "retired", "Retired"


class CheckResult(models.TextChoices):
    NOT_CHECKED = "", "Not checked yet"
    OK = "ok", "Published and matching"
    MISSING = "missing", "No record"
    NOT_DKIM = "not_dkim", "Not a DKIM record"
    SEVERAL = "several", "More than one DKIM record"
    WRONG_TYPE = "wrong_type", "Another key type"
    REVOKED = "revoked", "Revoked (empty p=)"
    MISMATCH = "mismatch", "Another public key"
    FAILED = "failed", "DNS did not answer"


class DkimKey(models.Model):
    domain = models.CharField(max_length=253)
    selector = models.CharField(max_length=63)
    algorithm = models.CharField(
        max_length=16, choices=Algorithm.choices, default=Algorithm.RSA_SHA256
    )
    # RSA: the PKCS#1 PEM dkimpy reads; Ed25519: the base64 32-byte seed (RFC 8463 §3).
    private_key_encrypted = models.TextField()
    # The p= value: base64 of the DER SubjectPublicKeyInfo (RSA) or the raw 32 bytes (Ed25519).
    public_key = models.TextField()
    state = models.CharField(max_length=8, choices=KeyState.choices, default=KeyState.WAITING)
    checked_at = models.DateTimeField(null=True, blank=True)
    check_result = models.CharField(
        max_length=12, choices=CheckResult.choices, default=CheckResult.NOT_CHECKED, blank=True
    )
    check_detail = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    signing_since = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["domain", "-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["domain", "selector"], name="dkim_key_unique_selector")
        ]

    def __str__(self) -> str:
        return f"{self.selector}._domainkey.{self.domain} ({self.algorithm})"

    @property
    def record_name(self) -> str:
        """Where the public key is published (RFC 6376 §3.6.2.1)."""
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def record_value(self) -> str:
        """The TXT record to publish (RFC 6376 §3.6.1)."""
        return f"v=DKIM1; k={Algorithm(self.algorithm).key_type}; p={self.public_key}"
