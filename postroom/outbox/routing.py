"""Where outbox mail goes: the company's SMTP server, or the built-in capture inbox.

With no SMTP server configured, or with sandbox mode on, every message is delivered over
real SMTP to the capture server `postroom run` starts, and shows up on the Inbox page.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from postroom.company.models import Company
from postroom.company.selectors import company_get
from postroom.company.smtp import company_smtp_config
from postroom.mail.config import SmtpServerConfig, TlsPolicy
from postroom.mail.pool import RateLimits

# The capture inbox is on this machine: as many sessions as the worker has senders.
CAPTURE_CONNECTIONS = 8


@dataclass(frozen=True)
class DeliveryRoute:
    config: SmtpServerConfig
    connections: int
    limits: RateLimits
    is_sandbox: bool

    @property
    def server(self) -> str:
        return f"{self.config.host}:{self.config.port}"


def capture_route() -> DeliveryRoute:
    config = SmtpServerConfig(
        host=settings.POSTROOM_CAPTURE_HOST,
        port=settings.POSTROOM_CAPTURE_PORT,
        tls=TlsPolicy.NONE,
    )
    return DeliveryRoute(config, CAPTURE_CONNECTIONS, RateLimits(), is_sandbox=True)


def _captures(company: Company) -> bool:
    return company.sandbox_mode or not company.is_smtp_configured


def delivery_route() -> DeliveryRoute:
    company = company_get()
    if _captures(company):
        return capture_route()
    return DeliveryRoute(
        config=company_smtp_config(company),
        connections=company.smtp_max_connections,
        limits=RateLimits(
            per_second=company.smtp_rate_per_second,
            per_minute=company.smtp_rate_per_minute,
            per_day=company.smtp_rate_per_day,
        ),
        is_sandbox=False,
    )


def is_sandboxed() -> bool:
    """True when mail goes to the capture inbox rather than a real server."""
    return _captures(company_get())
