"""Change the bounce mailbox's settings, and try them ("Test connection").

The password arrives here as plaintext only to be encrypted at once (secret_encrypt); it is
never logged, never put in an exception or the audit log, and never shown back.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import transaction

from postroom.audit.services import audit_record
from postroom.bounces.mailbox import DEFAULT_PORTS, MailboxSettings, default_port, mailbox_open
from postroom.bounces.models import BounceMailbox, MailboxAuth, Protocol, Security, SeenMail
from postroom.bounces.selectors import bounce_mailbox_get
from postroom.company import validation
from postroom.core.errors import ValidationError
from postroom.core.secrets import secret_decrypt, secret_encrypt
from postroom.oauth.models import OAuthConnection
from postroom.oauth.tokens import access_token_get

logger = logging.getLogger(__name__)

UPDATED = "bounces.mailbox.updated"
AUDIT_SUBJECT = "Bounce mailbox"
COMPANY_OWNER = "company"
# Bounds of the form's numbers: a poll more often than every minute only loads the server; a
# day is the longest a bounce should wait. The soft-bounce window is a year at most.
POLL_MINUTES = (1, 1440)
SOFT_LIMIT = (1, 100)
SOFT_DAYS = (1, 365)

_PLAIN_FIELDS: tuple[tuple[str, str], ...] = (
    ("is_enabled", "Read this mailbox"),
    ("protocol", "Protocol"),
    ("host", "Server address"),
    ("port", "Port"),
    ("security", "Security"),
    ("ca_certificate", "CA certificate"),
    ("username", "User name"),
    ("auth_method", "Log in with"),
    ("folder", "Folder"),
    ("processed_folder", "Processed folder"),
    ("poll_minutes", "Check every (minutes)"),
    ("soft_bounce_limit", "Soft bounces before suppression"),
    ("soft_bounce_days", "Soft bounces counted over (days)"),
)


@dataclass(frozen=True)
class BounceMailboxInput:
    """What an administrator typed on Company → Bounce mailbox. A blank password keeps the
    stored one; `password_clear` removes it."""

    is_enabled: bool = False
    protocol: str = Protocol.IMAP
    host: str = ""
    port: int | None = None
    security: str = Security.IMPLICIT_TLS
    ca_certificate: str = ""
    username: str = ""
    auth_method: str = MailboxAuth.PASSWORD
    password: str = ""
    password_clear: bool = False
    folder: str = "INBOX"
    processed_folder: str = "Postroom/Processed"
    poll_minutes: int | None = 5
    soft_bounce_limit: int | None = 3
    soft_bounce_days: int | None = 30


def _host_clean(value: str) -> str:
    host = value.strip()
    if not host:
        raise ValidationError(
            "Enter the mail server's address, for example outlook.office365.com.", field="host"
        )
    if any(char in host for char in "@/: \t"):
        raise ValidationError(
            "Enter only the server's name or IP address (no “imap://”, no port, no email "
            "address), for example imap.gmail.com.",
            field="host",
        )
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return validation.hostname_normalize(host, field="host")


def _number_clean(value: int | None, *, field: str, label: str, bounds: tuple[int, int]) -> int:
    low, high = bounds
    if value is None or not low <= value <= high:
        raise ValidationError(f"{label} must be a whole number from {low} to {high}.", field=field)
    return value


def _folder_clean(value: str, *, field: str, label: str) -> str:
    folder = value.strip().strip("/")
    if not folder:
        raise ValidationError(f"Enter the {label}, for example INBOX.", field=field)
    if any(char in folder for char in '\r\n*%"\\'):
        raise ValidationError(
            f"The {label} cannot contain line breaks, quotes, backslashes, * or %.", field=field
        )
    return folder[:200]


def bounce_mailbox_clean(values: BounceMailboxInput) -> dict[str, Any]:
    """The plain fields as stored; ValidationError (with the field) for the first bad one.
    A mailbox that is not enabled may be incomplete."""
    v = values
    if v.protocol not in Protocol.values:
        raise ValidationError("Choose IMAP or POP3.", field="protocol")
    if v.security not in Security.values:
        raise ValidationError("Choose how the connection is secured.", field="security")
    if v.auth_method not in MailboxAuth.values:
        raise ValidationError("Choose how Postroom logs in.", field="auth_method")
    host = v.host.strip()
    if host or v.is_enabled:
        host = _host_clean(host)
    if v.is_enabled and not v.username.strip():
        raise ValidationError(
            "Enter the mailbox's user name (usually its address).", field="username"
        )
    port = v.port or default_port(protocol=v.protocol, security=v.security)
    if port in DEFAULT_PORTS.values():  # a standard port of another protocol or security
        port = default_port(protocol=v.protocol, security=v.security)
    if not 1 <= port <= 65535:
        raise ValidationError("The port must be a number from 1 to 65535.", field="port")
    try:
        ca_pem = validation.ca_certificate_clean(v.ca_certificate)
    except ValidationError as error:
        raise ValidationError(error.message, field="ca_certificate") from None
    folder = _folder_clean(v.folder, field="folder", label="folder")
    processed = _folder_clean(
        v.processed_folder, field="processed_folder", label="processed folder"
    )
    if v.protocol == Protocol.IMAP and folder.lower() == processed.lower():
        raise ValidationError(
            "The processed folder must differ from the folder bounces arrive in: Postroom "
            "moves each mail it read there.",
            field="processed_folder",
        )
    return {
        "is_enabled": v.is_enabled,
        "protocol": v.protocol,
        "host": host,
        "port": port,
        "security": v.security,
        "ca_certificate": ca_pem,
        "username": validation.login_clean(v.username, field="username"),
        "auth_method": v.auth_method,
        "folder": folder,
        "processed_folder": processed,
        "poll_minutes": _number_clean(
            v.poll_minutes, field="poll_minutes", label="Check every", bounds=POLL_MINUTES
        ),
        "soft_bounce_limit": _number_clean(
            v.soft_bounce_limit,
            field="soft_bounce_limit",
            label="Soft bounces before suppression",
            bounds=SOFT_LIMIT,
        ),
        "soft_bounce_days": _number_clean(
            v.soft_bounce_days, field="soft_bounce_days", label="The window", bounds=SOFT_DAYS
        ),
    }


def _password_change(mailbox: BounceMailbox, values: BounceMailboxInput) -> str | None:
    """Set, keep or clear the stored password; return what happened, for the audit log."""
    stored = mailbox.password_encrypted
    if values.password and values.password_clear:
        raise ValidationError(
            "Either enter a new password or tick “Clear the stored password”, not both.",
            field="password_clear",
        )
    if values.password:
        mailbox.password_encrypted = secret_encrypt(values.password)
        return "replaced" if stored else "set"
    if values.password_clear and stored:
        mailbox.password_encrypted = ""
        return "cleared"
    return None


def bounce_mailbox_update(
    *, actor: AbstractBaseUser | AnonymousUser | None, values: BounceMailboxInput
) -> BounceMailbox:
    """Save the bounce mailbox's settings and record in the audit log which fields changed.

    Raises ValidationError (with the field's name) for the first invalid value."""
    clean = bounce_mailbox_clean(values)
    with transaction.atomic():
        bounce_mailbox_get()
        mailbox = BounceMailbox.objects.select_for_update().get(pk=1)
        changes: dict[str, Any] = {}
        for field, label in _PLAIN_FIELDS:
            old, new = getattr(mailbox, field), clean[field]
            if old != new:
                changes[label] = {"from": _audit_value(field, old), "to": _audit_value(field, new)}
                setattr(mailbox, field, new)
        what = _password_change(mailbox, values)
        if what is not None:
            changes["Password"] = {"changed": True, "secret": what}
        is_password = mailbox.auth_method == MailboxAuth.PASSWORD
        if mailbox.is_enabled and is_password and not mailbox.password_encrypted:
            raise ValidationError("Enter the mailbox's password.", field="password")
        if not changes:
            return mailbox
        mailbox.save()
        audit_record(actor=actor, action=UPDATED, subject=AUDIT_SUBJECT, changes=changes)
    logger.info("Bounce mailbox settings changed: %s", ", ".join(changes))
    return mailbox


def _audit_value(field: str, value: Any) -> Any:
    if field == "ca_certificate":
        return validation.ca_certificate_describe(value)
    if field == "is_enabled":
        return "on" if value else "off"
    return value


def mailbox_settings(mailbox: BounceMailbox, *, password: str = "") -> MailboxSettings:
    """How to reach `mailbox` (saved or only typed); `password` overrides the stored one."""
    is_oauth = mailbox.auth_method == MailboxAuth.OAUTH_COMPANY

    def secret(renew: bool) -> str:
        if is_oauth:
            return _company_access_token(mailbox.username, renew=renew)
        if password:
            return password
        if not mailbox.password_encrypted:
            raise ValidationError("Enter the mailbox's password.", field="password")
        return secret_decrypt(mailbox.password_encrypted)

    return MailboxSettings(
        protocol=mailbox.protocol,
        host=mailbox.host,
        port=mailbox.port or default_port(protocol=mailbox.protocol, security=mailbox.security),
        security=mailbox.security,
        username=mailbox.username,
        secret=secret,
        is_oauth=is_oauth,
        ca_pem=mailbox.ca_certificate,
        folder=mailbox.folder,
        processed_folder=mailbox.processed_folder,
    )


def _company_access_token(username: str, *, renew: bool) -> str:
    # The company's sign-in (Company → OAuth sign-in); OAuthTokenError says what to do.
    connection = OAuthConnection.objects.filter(owner=COMPANY_OWNER).first()
    if connection is None:
        raise ValidationError(
            "“The company's OAuth sign-in” is chosen, but none is set up: set it up under "
            "Company → OAuth sign-in, or log in with a password.",
            field="auth_method",
        )
    return access_token_get(connection, mailbox=username, renew=renew)


def bounce_mailbox_test(values: BounceMailboxInput) -> str:
    """Log in with the typed settings (the stored password when none is typed) and say, in
    plain words, how many mails wait. Raises MailboxError or ValidationError."""
    clean = bounce_mailbox_clean(BounceMailboxInput(**{**values.__dict__, "is_enabled": True}))
    stored = bounce_mailbox_get()
    mailbox = BounceMailbox(**clean, password_encrypted=stored.password_encrypted)
    settings = mailbox_settings(mailbox, password=values.password)
    with mailbox_open(settings) as session:
        keys = {mail.key for mail in session.waiting()}
    remembered = SeenMail.objects.filter(uidl__startswith=f"{mailbox.protocol} ")
    already = sum(1 for key in remembered.values_list("uidl", flat=True) if key in keys)
    waiting = len(keys) - already
    where = f"the folder {mailbox.folder}" if mailbox.protocol == Protocol.IMAP else "the mailbox"
    said = (
        f"Logged in to {settings.where} as {mailbox.username}. "
        + (
            f"{waiting} mail{'s wait' if waiting != 1 else ' waits'} in {where}"
            if waiting
            else f"No mail waits in {where}"
        )
        + (f" ({already} already read and left there)" if already else "")
        + "."
    )
    return said
