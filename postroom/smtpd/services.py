"""SMTP credentials: create, change, remove (audited), and what the listener needs of them.

The listener never touches the ORM from its event loop: it works from `credentials_snapshot`,
plain frozen data read again every few seconds (server.CREDENTIALS_REFRESH_SECONDS), so a
removed or changed credential takes effect within that time.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from postroom.audit.services import audit_record
from postroom.core.errors import ValidationError
from postroom.mail.addresses import normalize_address
from postroom.smtpd.models import SmtpCredential

if TYPE_CHECKING:  # annotations only: accounts sits above
    from postroom.accounts.models import User

CREATED = "smtp_credential.created"
UPDATED = "smtp_credential.updated"
DELETED = "smtp_credential.deleted"

_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{2,63}")
# 32 letters and digits (190 bits): typeable into any ERP's password field, and never starting
# with "-", which command-line clients (swaks) read as an option.
PASSWORD_ALPHABET = string.ascii_letters + string.digits
PASSWORD_LENGTH = 32
MAX_RATE_LIMIT_PER_MINUTE = 100_000
MAX_RECIPIENTS = 1_000

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class CredentialSettings:
    name: str
    allowed_senders: tuple[str, ...]
    rate_limit_per_minute: int = 600
    max_recipients: int = 100
    networks_without_auth: tuple[str, ...] = ()
    is_active: bool = True


@dataclass(frozen=True)
class Credential:
    """What the listener knows of a credential."""

    id: int
    name: str
    username: str
    password_hash: str = field(repr=False)
    allowed_senders: tuple[str, ...]
    rate_limit_per_minute: int
    max_recipients: int
    networks: tuple[Network, ...]

    def password_matches(self, password: str) -> bool:
        return hmac.compare_digest(_hash(password), self.password_hash)

    def may_send_as(self, address: str) -> bool:
        """An allowed address, or an address of an allowed "@domain" (case aside)."""
        address = address.lower()
        domain = "@" + address.rpartition("@")[2]
        return any(allowed in {address, domain} for allowed in self.allowed_senders)

    def admits(self, client_ip: str) -> bool:
        """Whether a client at `client_ip` may send as this credential without AUTH."""
        try:
            ip = ipaddress.ip_address(client_ip)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)


def _hash(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def _clean(values: CredentialSettings) -> dict[str, Any]:
    name = values.name.strip()
    if not name:
        raise ValidationError("Give the credential a name, such as “ERP invoices”.", field="name")
    senders = [_sender_clean(s) for s in values.allowed_senders if s.strip()]
    if not senders:
        raise ValidationError(
            "Enter at least one address (invoices@acme.example) or domain (@acme.example) "
            "this system may send as.",
            field="allowed_senders",
        )
    if not 1 <= values.rate_limit_per_minute <= MAX_RATE_LIMIT_PER_MINUTE:
        raise ValidationError(
            f"Messages per minute: 1 to {MAX_RATE_LIMIT_PER_MINUTE:,}.",
            field="rate_limit_per_minute",
        )
    if not 1 <= values.max_recipients <= MAX_RECIPIENTS:
        raise ValidationError(
            f"Recipients per message: 1 to {MAX_RECIPIENTS:,}.", field="max_recipients"
        )
    return {
        "name": name[:100],
        "allowed_senders": sorted(set(senders)),
        "rate_limit_per_minute": values.rate_limit_per_minute,
        "max_recipients": values.max_recipients,
        "networks_without_auth": [
            _network_clean(n) for n in values.networks_without_auth if n.strip()
        ],
        "is_active": values.is_active,
    }


def _sender_clean(value: str) -> str:
    value = value.strip().lower()
    probe = "postmaster" + value if value.startswith("@") else value
    try:
        normalized = normalize_address(probe, label="Allowed sender", field="allowed_senders")
    except ValidationError as error:
        raise ValidationError(
            f"“{value}” is neither an address nor @domain: {error.message}",
            field="allowed_senders",
        ) from None
    if value.startswith("@"):
        return "@" + normalized.ascii_domain.lower()
    return normalized.addr_spec.lower()


def _network_clean(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        raise ValidationError(
            f"“{value.strip()}” is not a network: write it like 192.168.10.0/24 or 10.0.0.5.",
            field="networks_without_auth",
        ) from None


def credential_create(
    *, actor: User | AnonymousUser | None, username: str, values: CredentialSettings
) -> tuple[SmtpCredential, str]:
    """Create a credential; returns it with its password, which is never shown again."""
    username = username.strip().lower()
    if not _USERNAME.fullmatch(username):
        raise ValidationError(
            "A user name has 3 to 64 of a–z, 0–9, dot, dash and underscore, starting with a "
            "letter or digit.",
            field="username",
        )
    clean = _clean(values)
    password = "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))
    try:
        with transaction.atomic():
            credential = SmtpCredential.objects.create(
                username=username,
                password_hash=_hash(password),
                created_by_id=getattr(actor, "pk", None),
                **clean,
            )
    except IntegrityError:
        raise ValidationError(f"The user name {username} is taken.", field="username") from None
    audit_record(
        actor=actor, action=CREATED, subject=str(credential), changes=_audit_changes(clean)
    )
    return credential, password


def credential_update(
    *, actor: User | AnonymousUser | None, credential: SmtpCredential, values: CredentialSettings
) -> SmtpCredential:
    clean = _clean(values)
    changes = {k: v for k, v in clean.items() if getattr(credential, k) != v}
    if changes:
        for name, value in changes.items():
            setattr(credential, name, value)
        credential.save()
        audit_record(
            actor=actor, action=UPDATED, subject=str(credential), changes=_audit_changes(changes)
        )
    return credential


def credential_delete(*, actor: User | AnonymousUser | None, credential: SmtpCredential) -> None:
    subject = str(credential)
    credential.delete()
    audit_record(actor=actor, action=DELETED, subject=subject, changes={})


def _audit_changes(values: dict[str, Any]) -> dict[str, Any]:
    labels = {
        "name": "Name",
        "allowed_senders": "Allowed senders",
        "rate_limit_per_minute": "Messages per minute",
        "max_recipients": "Recipients per message",
        "networks_without_auth": "Networks without AUTH",
        "is_active": "Active",
    }
    return {labels[name]: value for name, value in values.items() if name in labels}


def credentials_snapshot() -> dict[str, Credential]:
    """The active credentials by user name, for the listener."""
    return {
        row.username: Credential(
            id=row.id,
            name=row.name,
            username=row.username,
            password_hash=row.password_hash,
            allowed_senders=tuple(row.allowed_senders),
            rate_limit_per_minute=row.rate_limit_per_minute,
            max_recipients=row.max_recipients,
            networks=tuple(ipaddress.ip_network(n) for n in row.networks_without_auth),
        )
        for row in SmtpCredential.objects.filter(is_active=True)
    }


def credentials_used(ids: Iterable[int]) -> None:
    """Note when credentials were last used (once per refresh, not per message)."""
    SmtpCredential.objects.filter(id__in=list(ids)).update(last_used_at=timezone.now())
