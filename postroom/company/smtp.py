"""The company's SMTP settings as the mail layer takes them, and the addresses mail comes from.

This is where the stored password is decrypted: at the last moment, into a
`SmtpServerConfig` whose repr never shows it.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from django.contrib.auth import get_user_model

from postroom.company.models import AuthMethod, Company
from postroom.company.services import SmtpSettingsInput, smtp_settings_clean
from postroom.core.errors import ConfigurationError
from postroom.core.secrets import secret_decrypt
from postroom.mail.config import SmtpServerConfig, Timeouts, resolve_tls_policy
from postroom.oauth.models import COMPANY_OWNER, OAuthConnection
from postroom.oauth.tokens import StoredAccessTokens


def company_smtp_config(company: Company) -> SmtpServerConfig:
    """Build the client settings from the SMTP Server Information tab.

    Raises ConfigurationError when the server address or port is missing, and SecretKeyError
    when the stored password cannot be decrypted with this install's key.
    """
    if not company.is_smtp_configured or company.smtp_port is None:
        raise ConfigurationError(
            "No SMTP server is set. Enter the SMTP Server Address and Communication Port on "
            "Company → SMTP Server Information first."
        )
    return _smtp_config(company, password=_stored_password(company))


def smtp_config_from_input(values: SmtpSettingsInput, *, company: Company) -> SmtpServerConfig:
    """The client settings from typed values ("Test these settings"): checked as Save checks
    them, stored nowhere. A blank password means the stored one, as on Save."""
    clean = smtp_settings_clean(values)
    if values.smtp_password_clear:
        password = ""
    else:
        password = values.smtp_password or _stored_password(company)
    return _smtp_config(SimpleNamespace(**clean), password=password)


def _stored_password(company: Company) -> str:
    encrypted = company.smtp_password_encrypted
    return secret_decrypt(encrypted) if encrypted else ""


def _smtp_config(fields: Any, *, password: str) -> SmtpServerConfig:
    """`fields` has the Company's smtp_* attributes (a Company, or checked typed values)."""
    is_oauth = fields.smtp_auth_method == AuthMethod.XOAUTH2
    return SmtpServerConfig(
        host=fields.smtp_host,
        port=fields.smtp_port,
        tls=resolve_tls_policy(
            port=fields.smtp_port,
            secure_required=fields.smtp_secure_required,
            tls_mode=fields.smtp_tls_mode,
        ),
        login=fields.smtp_login,
        password="" if is_oauth else password,
        auth_method=fields.smtp_auth_method,
        access_tokens=(
            StoredAccessTokens(owner=COMPANY_OWNER, mailbox=fields.smtp_login) if is_oauth else None
        ),
        ca_pem=fields.smtp_ca_certificate,
        helo_name=fields.smtp_helo_name,
        allow_plaintext_auth=fields.smtp_allow_plaintext_auth,
        timeouts=Timeouts(
            connect=fields.smtp_timeout_connect,
            command=fields.smtp_timeout_command,
            data=fields.smtp_timeout_data,
        ),
    )


def company_sender_addresses(company_address: str) -> list[str]:
    """The addresses mail leaves from: `company_address` first, then each active user's.

    Distinct, ignoring case (Alice@x and alice@x are one mailbox in practice).
    """
    # Users through the auth user model: the company app sits below the one that defines it.
    candidates = [company_address] + list(
        get_user_model()
        .objects.filter(is_active=True)
        .exclude(email="")
        .order_by("username")
        .values_list("email", flat=True)
    )
    seen: set[str] = set()
    addresses = []
    for address in candidates:
        address = address.strip()
        if address and address.lower() not in seen:
            seen.add(address.lower())
            addresses.append(address)
    return addresses


def oauth_mailboxes_in_use() -> dict[str, str]:
    """The OAuth sign-ins mail depends on now (owner -> the mailbox it logs in as): the
    company relay's when it logs in with OAuth, and the users' own mailboxes."""
    company = Company.objects.filter(pk=1).first()
    in_use = {
        connection.owner: connection.user.email
        for connection in OAuthConnection.objects.filter(user__isnull=False).select_related("user")
        if connection.user is not None and connection.user.email
    }
    if company and company.smtp_auth_method == AuthMethod.XOAUTH2 and company.smtp_login:
        in_use[COMPANY_OWNER] = company.smtp_login
    return in_use
