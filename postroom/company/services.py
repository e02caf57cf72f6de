"""Change the company master: SMTP Server Information, ePOD credentials, sender identity.

Passwords arrive here as plaintext only to be encrypted at once; they are never logged,
never put in an exception or the audit log, and never returned.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import transaction

from postroom.audit.services import audit_record
from postroom.company import validation
from postroom.company.models import AuthMethod, Company, SendAsPolicy, TlsMode
from postroom.company.presets import preset_get
from postroom.company.selectors import company_get
from postroom.core.errors import SecretKeyError, ValidationError
from postroom.core.secrets import secret_decrypt, secret_encrypt

logger = logging.getLogger(__name__)

SMTP_UPDATED = "company.smtp.updated"
AUDIT_SUBJECT = "SMTP Server Information"

# (model field, label in the audit log); the labels are the seed page's names.
_PLAIN_FIELDS: tuple[tuple[str, str], ...] = (
    ("smtp_host", "SMTP Server Address"),
    ("smtp_port", "SMTP Communication Port"),
    ("smtp_login", "SMTP Authentication Login"),
    ("smtp_secure_required", "SMTP Secure Connection Required"),
    ("smtp_allow_plaintext_auth", "Allow the password over an unencrypted connection"),
    ("epod_username", "ePOD API Username"),
    ("sender_email", "Company email address"),
    ("sender_name", "Company sender name"),
    ("smtp_preset", "Provider preset"),
    ("smtp_tls_mode", "TLS mode"),
    ("smtp_ca_certificate", "Custom CA certificate"),
    ("smtp_helo_name", "HELO name"),
    ("smtp_auth_method", "Authentication method"),
    ("smtp_timeout_connect", "Connect timeout (s)"),
    ("smtp_timeout_command", "Command timeout (s)"),
    ("smtp_timeout_data", "End of data timeout (s)"),
    ("smtp_max_connections", "Maximum connections"),
    ("smtp_rate_per_second", "Messages per second"),
    ("smtp_rate_per_minute", "Messages per minute"),
    ("smtp_rate_per_day", "Messages per day"),
    ("sandbox_mode", "Sandbox mode"),
    ("send_as_policy", "Send-as policy"),
)
# (model field, label): the stored Fernet tokens.
SECRET_FIELDS: tuple[tuple[str, str], ...] = (
    ("smtp_password_encrypted", "SMTP Authentication Password"),
    ("epod_password_encrypted", "ePOD API Password"),
)


def _audit_value(field: str, value: Any) -> Any:
    if field == "smtp_secure_required":
        return "Y" if value else "N"
    if field == "smtp_allow_plaintext_auth":
        return "allowed" if value else "never"
    if field == "sandbox_mode":
        return "on" if value else "off"
    if field == "send_as_policy" and value in SendAsPolicy.values:
        return SendAsPolicy(value).label
    if field == "smtp_tls_mode" and value in TlsMode.values:
        return TlsMode(value).label
    if field == "smtp_auth_method" and value in AuthMethod.values:
        return AuthMethod(value).label
    if field == "smtp_preset":
        preset = preset_get(value)
        return preset.name if preset is not None else value
    if field == "smtp_ca_certificate":
        # The PEM is public, but a page of base64 helps nobody: record what it is instead.
        return validation.ca_certificate_describe(value)
    return value


def _secret_change(
    *, stored: str, new_plaintext: str, clear: bool, field: str
) -> tuple[str, str | None]:
    """Return the token to store and what happened ("set", "replaced", "cleared" or None)."""
    if new_plaintext and clear:
        raise ValidationError(
            "Either enter a new password or tick “Clear the stored password”, not both.",
            field=field,
        )
    if new_plaintext:
        return secret_encrypt(new_plaintext), ("replaced" if stored else "set")
    if clear and stored:
        return "", "cleared"
    return stored, None


@dataclass(frozen=True)
class SmtpSettingsInput:
    """What an administrator typed on SMTP Server Information: the edit form's fields.

    Blank passwords keep the stored ones; `*_clear` removes them. Nothing here is checked yet
    (`smtp_settings_clean` does that), so "Test these settings" can use typed values too.
    """

    smtp_host: str
    smtp_port: int | None
    smtp_login: str = ""
    smtp_password: str = ""
    smtp_password_clear: bool = False
    smtp_secure_required: bool = True
    smtp_allow_plaintext_auth: bool = False
    epod_username: str = ""
    epod_password: str = ""
    epod_password_clear: bool = False
    sender_email: str = ""
    sender_name: str = ""
    smtp_preset: str = ""
    smtp_tls_mode: str = TlsMode.AUTO
    smtp_ca_certificate: str = ""
    smtp_helo_name: str = ""
    smtp_auth_method: str = AuthMethod.AUTO
    smtp_timeout_connect: int | None = None
    smtp_timeout_command: int | None = None
    smtp_timeout_data: int | None = None
    smtp_max_connections: int | None = None
    smtp_rate_per_second: int | None = None
    smtp_rate_per_minute: int | None = None
    smtp_rate_per_day: int | None = None
    sandbox_mode: bool = False
    send_as_policy: str = SendAsPolicy.AUTO


def smtp_settings_clean(values: SmtpSettingsInput) -> dict[str, Any]:
    """The plain fields as stored; ValidationError (with the field) for the first bad one."""
    v = values
    validation.tls_mode_check(tls_mode=v.smtp_tls_mode, secure_required=v.smtp_secure_required)
    validation.auth_method_check(v.smtp_auth_method)
    if v.smtp_auth_method == AuthMethod.XOAUTH2 and not v.smtp_login.strip():
        raise ValidationError(
            "OAuth 2.0 logs in as a mailbox: enter its address as the SMTP Authentication "
            "Login (the mailbox that signs in, or that a service account acts as).",
            field="smtp_login",
        )
    if v.smtp_password:
        validation.smtp_password_check(v.smtp_password)
    return {
        "smtp_host": validation.smtp_host_clean(v.smtp_host),
        "smtp_port": validation.smtp_port_clean(v.smtp_port),
        "smtp_login": validation.login_clean(v.smtp_login, field="smtp_login"),
        "smtp_secure_required": v.smtp_secure_required,
        "smtp_allow_plaintext_auth": v.smtp_allow_plaintext_auth,
        "epod_username": validation.login_clean(v.epod_username, field="epod_username"),
        "sender_email": validation.sender_email_clean(v.sender_email),
        "sender_name": validation.sender_name_clean(v.sender_name),
        "smtp_preset": v.smtp_preset,
        "smtp_tls_mode": v.smtp_tls_mode,
        "smtp_ca_certificate": validation.ca_certificate_clean(v.smtp_ca_certificate),
        "smtp_helo_name": validation.helo_name_clean(v.smtp_helo_name),
        "smtp_auth_method": v.smtp_auth_method,
        "smtp_timeout_connect": validation.timeout_clean(v.smtp_timeout_connect, which="connect"),
        "smtp_timeout_command": validation.timeout_clean(v.smtp_timeout_command, which="command"),
        "smtp_timeout_data": validation.timeout_clean(v.smtp_timeout_data, which="data"),
        "smtp_max_connections": validation.max_connections_clean(v.smtp_max_connections),
        "smtp_rate_per_second": validation.rate_clean(v.smtp_rate_per_second, per="second"),
        "smtp_rate_per_minute": validation.rate_clean(v.smtp_rate_per_minute, per="minute"),
        "smtp_rate_per_day": validation.rate_clean(v.smtp_rate_per_day, per="day"),
        "sandbox_mode": v.sandbox_mode,
        "send_as_policy": validation.send_as_policy_clean(v.send_as_policy),
    }


def company_smtp_update(
    *, actor: AbstractBaseUser | AnonymousUser | None, values: SmtpSettingsInput
) -> Company:
    """Save SMTP Server Information and record in the audit log which fields changed.

    Raises ValidationError (with the field's name) for the first invalid value.
    """
    clean = smtp_settings_clean(values)
    with transaction.atomic():
        company = company_get()
        company = Company.objects.select_for_update().get(pk=company.pk)
        if clean["sender_email"].lower() != company.sender_email.lower():
            _sender_email_owner_check(clean["sender_email"])
        changes = _plain_changes(company, clean) | _secret_changes(company, values)
        if not changes:
            return company
        if actor is not None and actor.is_authenticated:
            company.updated_by_id = actor.pk
        company.save()
        audit_record(actor=actor, action=SMTP_UPDATED, subject=AUDIT_SUBJECT, changes=changes)
    logger.info("SMTP Server Information changed: %s", ", ".join(changes))
    return company


def _plain_changes(company: Company, clean: dict[str, Any]) -> dict[str, Any]:
    """Set the changed plain fields on `company`; return them in the audit log's form."""
    changes: dict[str, Any] = {}
    for field, label in _PLAIN_FIELDS:
        old, new = getattr(company, field), clean[field]
        if old != new:
            changes[label] = {"from": _audit_value(field, old), "to": _audit_value(field, new)}
            setattr(company, field, new)
    return changes


def _secret_changes(company: Company, values: SmtpSettingsInput) -> dict[str, Any]:
    """Encrypt, keep or clear each password on `company`; the log says only what happened."""
    inputs = {
        "smtp_password_encrypted": (values.smtp_password, values.smtp_password_clear, "smtp"),
        "epod_password_encrypted": (values.epod_password, values.epod_password_clear, "epod"),
    }
    changes: dict[str, Any] = {}
    for field, label in SECRET_FIELDS:
        plaintext, clear, prefix = inputs[field]
        token, what = _secret_change(
            stored=getattr(company, field),
            new_plaintext=plaintext,
            clear=clear,
            field=f"{prefix}_password_clear",
        )
        if what is not None:
            changes[label] = {"changed": True, "secret": what}
            setattr(company, field, token)
    return changes


def _sender_email_owner_check(address: str) -> None:
    # Mail an API client sends "from" this address must be the company's, not a user's (whose
    # Outbox and .eml downloads would then hold it).
    # Users through the auth user model: the company app sits below the one that defines it.
    users = get_user_model().objects.filter(email__iexact=address)
    owner = users.first() if address else None
    if owner is not None:
        raise ValidationError(
            f"{address} is the address of the user {owner}. The company needs an address "
            "of its own (such as office@ or info@), so that mail from the company is never "
            "filed as that user's.",
            field="sender_email",
        )


def company_verify_secrets() -> None:
    """Decrypt every stored secret once, so a wrong or missing key stops the start at once
    instead of failing the first delivery hours later. Raises SecretKeyError."""
    for company in Company.objects.all():
        for field, label in SECRET_FIELDS:
            token = getattr(company, field)
            if not token:
                continue
            try:
                secret_decrypt(token)
            except SecretKeyError:
                key_file = settings.DATA_DIR / "secret.key"
                raise SecretKeyError(
                    f"The stored {label} cannot be decrypted with this secret key "
                    f"(POSTROOM_SECRET_KEY, or {key_file}). Start Postroom with the key that "
                    "encrypted it, or keep that key in POSTROOM_SECRET_KEY_FALLBACKS while "
                    "moving to a new one. If the old key is lost, clear the stored passwords "
                    "with `postroom forget-secrets` and enter them again."
                ) from None


def company_forget_secrets() -> list[str]:
    """Clear every stored secret without decrypting it; return the labels cleared."""
    cleared: list[str] = []
    with transaction.atomic():
        company = Company.objects.select_for_update().get(pk=company_get().pk)
        for field, label in SECRET_FIELDS:
            if getattr(company, field):
                setattr(company, field, "")
                cleared.append(label)
        if cleared:
            company.save()
            audit_record(
                actor=None,
                action="company.secrets.forgotten",
                subject=AUDIT_SUBJECT,
                changes={label: {"changed": True, "secret": "cleared"} for label in cleared},
            )
    return cleared
