"""Where outbox mail goes: the company's SMTP server, or the built-in capture inbox.

With no SMTP server configured, or with sandbox mode on, every message is delivered over
real SMTP to the capture server `postroom run` starts, and shows up on the Inbox page.
"""

from __future__ import annotations

from django.conf import settings

from postroom.company.selectors import company_get
from postroom.company.smtp import company_smtp_config
from postroom.mail.config import SmtpServerConfig, TlsPolicy


def capture_server_config() -> SmtpServerConfig:
    return SmtpServerConfig(
        host=settings.POSTROOM_CAPTURE_HOST,
        port=settings.POSTROOM_CAPTURE_PORT,
        tls=TlsPolicy.NONE,
    )


def is_sandboxed() -> bool:
    company = company_get()
    return company.sandbox_mode or not company.is_smtp_configured


def delivery_server_config() -> SmtpServerConfig:
    company = company_get()
    if company.sandbox_mode or not company.is_smtp_configured:
        return capture_server_config()
    return company_smtp_config(company)
