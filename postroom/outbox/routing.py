"""Where outbox mail goes: the company's SMTP server, a user's own mailbox, or the built-in
capture inbox.

With no SMTP server configured, or with sandbox mode on, every message is delivered over
real SMTP to the capture server `postroom run` starts, and shows up on the Sandbox capture
page. Mail a user sends through their own mailbox (send-as OWN_MAILBOX) logs in to their
provider with their OAuth sign-in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

from postroom.company.models import Company, TlsMode
from postroom.company.selectors import company_get
from postroom.company.smtp import company_smtp_config
from postroom.core.secrets import secret_keys_derive
from postroom.mail.auth import XOAUTH2
from postroom.mail.config import SmtpServerConfig, Timeouts, TlsPolicy, resolve_tls_policy
from postroom.mail.pool import RateLimits
from postroom.mail.verp import return_path_tagged
from postroom.oauth.models import OAuthConnection
from postroom.oauth.providers import provider_info
from postroom.oauth.tokens import StoredAccessTokens

# The capture inbox is on this machine: as many sessions as the worker has senders.
CAPTURE_CONNECTIONS = 8


# A user's own mailbox: providers allow few sessions per mailbox (Microsoft 365: 3).
OWN_MAILBOX_CONNECTIONS = 2


@dataclass(frozen=True)
class DeliveryRoute:
    config: SmtpServerConfig
    connections: int
    limits: RateLimits
    is_sandbox: bool
    mailbox: str = ""  # a user's own mailbox: its address (pauses are kept per mailbox)
    # The tagged return path (Company.tag_return_path): the bounce address, and the key of
    # its tags. Empty: each message leaves with its own envelope sender.
    bounce_address: str = ""
    return_path_key: bytes = field(default=b"", repr=False)

    def envelope_sender(self, *, message_pk: int, envelope_from: str) -> str:
        """The MAIL FROM of a message: its own, or the bounce address tagged with it."""
        if not self.bounce_address:
            return envelope_from
        return return_path_tagged(
            self.bounce_address, message_pk=message_pk, key=self.return_path_key
        )

    @property
    def server(self) -> str:
        """The name pauses and attempts are recorded under."""
        address = f"{self.config.host}:{self.config.port}"
        return f"{self.mailbox} at {address}" if self.mailbox else address


def return_path_keys() -> list[bytes]:
    """The keys of return path tags: from SECRET_KEY (tags are made with the first), then
    its fallbacks, so bounces of mail sent before a key rotation still match."""
    return secret_keys_derive(b"postroom return path tags v1")


def _return_path(company: Company | None) -> tuple[str, bytes]:
    """The route's bounce address and tag key: empty unless the company tags return paths."""
    if company is None or not (company.tag_return_path and company.bounce_address):
        return "", b""
    return company.bounce_address, return_path_keys()[0]


def capture_route(company: Company | None = None) -> DeliveryRoute:
    """The sandbox capture; with `company`, its tagged return path applies (so what the
    capture shows is what the relay would get)."""
    config = SmtpServerConfig(
        host=settings.POSTROOM_CAPTURE_HOST,
        port=settings.POSTROOM_CAPTURE_PORT,
        tls=TlsPolicy.NONE,
    )
    bounce_address, key = _return_path(company)
    return DeliveryRoute(
        config,
        CAPTURE_CONNECTIONS,
        RateLimits(),
        is_sandbox=True,
        bounce_address=bounce_address,
        return_path_key=key,
    )


def _captures(company: Company) -> bool:
    return company.sandbox_mode or not company.is_smtp_configured


def delivery_route() -> DeliveryRoute:
    company = company_get()
    if _captures(company):
        return capture_route(company)
    bounce_address, key = _return_path(company)
    return DeliveryRoute(
        config=company_smtp_config(company),
        connections=company.smtp_max_connections,
        limits=RateLimits(
            per_second=company.smtp_rate_per_second,
            per_minute=company.smtp_rate_per_minute,
            per_day=company.smtp_rate_per_day,
        ),
        is_sandbox=False,
        bounce_address=bounce_address,
        return_path_key=key,
    )


def is_sandboxed() -> bool:
    """True when mail goes to the capture inbox rather than a real server."""
    return _captures(company_get())


def own_mailbox_route(owner: str) -> DeliveryRoute | None:
    """The route through a user's own mailbox (`owner` as in postroom.oauth), the capture in
    sandbox mode, or None once the sign-in is gone (the company relay then takes the mail).

    The company's trust (custom CA), HELO name and timeouts apply; TLS is always required.
    """
    company = company_get()
    if _captures(company):
        return capture_route()
    connection = OAuthConnection.objects.select_related("user").filter(owner=owner).first()
    if connection is None or connection.user is None or not connection.user.email:
        return None
    # The provider's submission server; for a generic provider, the company relay's (the
    # users' mailboxes are at the same provider).
    info = provider_info(connection.provider)
    host = info.smtp_host or company.smtp_host
    port = info.smtp_port if info.smtp_host else company.smtp_port
    if not host or not port:
        return None
    mailbox = connection.user.email
    config = SmtpServerConfig(
        host=host,
        port=port,
        tls=resolve_tls_policy(port=port, secure_required=True, tls_mode=TlsMode.AUTO),
        login=mailbox,
        auth_method=XOAUTH2,
        access_tokens=StoredAccessTokens(owner=owner, mailbox=mailbox),
        ca_pem=company.smtp_ca_certificate,
        helo_name=company.smtp_helo_name,
        timeouts=Timeouts(
            connect=company.smtp_timeout_connect,
            command=company.smtp_timeout_command,
            data=company.smtp_timeout_data,
        ),
    )
    return DeliveryRoute(
        config, OWN_MAILBOX_CONNECTIONS, RateLimits(), is_sandbox=False, mailbox=mailbox
    )
