"""The company's SMTP settings as the mail layer takes them, and the addresses mail comes from.

This is where the stored password is decrypted: at the last moment, into a
`SmtpServerConfig` whose repr never shows it.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model

from postroom.company.models import Company
from postroom.core.errors import ConfigurationError
from postroom.core.secrets import secret_decrypt
from postroom.mail.config import SmtpServerConfig, Timeouts, resolve_tls_policy


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
    password = (
        secret_decrypt(company.smtp_password_encrypted) if company.smtp_password_encrypted else ""
    )
    return SmtpServerConfig(
        host=company.smtp_host,
        port=company.smtp_port,
        tls=resolve_tls_policy(
            port=company.smtp_port,
            secure_required=company.smtp_secure_required,
            tls_mode=company.smtp_tls_mode,
        ),
        login=company.smtp_login,
        password=password,
        auth_method=company.smtp_auth_method,
        ca_pem=company.smtp_ca_certificate,
        helo_name=company.smtp_helo_name,
        allow_plaintext_auth=company.smtp_allow_plaintext_auth,
        timeouts=Timeouts(
            connect=company.smtp_timeout_connect,
            command=company.smtp_timeout_command,
            data=company.smtp_timeout_data,
        ),
    )


def company_sender_addresses(company: Company) -> list[str]:
    """The addresses mail leaves from: the company address first, then each active user's.

    Distinct, ignoring case (Alice@x and alice@x are one mailbox in practice).
    """
    # Users through the auth user model: the company app sits below the one that defines it.
    candidates = [company.sender_email] + list(
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
