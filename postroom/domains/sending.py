"""What Postroom sends with, as the domain check needs it: the relay, the provider behind it,
the DKIM keys, the envelope sender's domain and the HELO name. Read once from the database
before any lookup, so the lookups can run in threads without touching it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from postroom.company.presets import preset_for_settings
from postroom.company.selectors import company_get
from postroom.dkim.models import Algorithm, KeyState
from postroom.dkim.selectors import dkim_keys_by_domain
from postroom.mail.session import local_host_name


@dataclass(frozen=True)
class Provider:
    """What a provider's mail needs in DNS. `spf_include` from each provider's help page on
    SPF; `dkim_selectors` where the provider publishes (or has you publish) its keys."""

    name: str
    spf_include: str
    dkim_selectors: tuple[str, ...] = ()
    dkim_how: str = ""


_MICROSOFT = Provider(
    "Microsoft 365",
    "spf.protection.outlook.com",
    ("selector1", "selector2"),
    "turn on DKIM for the domain in the Microsoft Defender portal (Email & collaboration → "
    "Policies → Email authentication settings → DKIM), which shows the two CNAME records",
)
_GOOGLE = Provider(
    "Google Workspace",
    "_spf.google.com",
    ("google",),
    "generate the key in the Google Admin console (Apps → Google Workspace → Gmail → "
    "Authenticate email), publish the TXT record it shows, then click Start authentication",
)
# Keyed by the relay host; providers that sign with selectors of their own choosing (SES,
# Postmark, Mailgun) list none: Postroom's own key, or "default", is what is looked up.
PROVIDERS: dict[str, Provider] = {
    "smtp.office365.com": _MICROSOFT,
    "smtp.gmail.com": _GOOGLE,
    "smtp-relay.gmail.com": _GOOGLE,
    "smtp.sendgrid.net": Provider("SendGrid", "sendgrid.net", ("s1", "s2")),
    "smtp.mailgun.org": Provider("Mailgun", "mailgun.org"),
    "smtp.eu.mailgun.org": Provider("Mailgun", "mailgun.org"),
    "smtp.postmarkapp.com": Provider("Postmark", "spf.mtasv.net"),
}
_SES_INCLUDE = "amazonses.com"
DEFAULT_SELECTOR = "default"


@dataclass(frozen=True)
class PostroomKey:
    """A DKIM key Postroom holds for a domain (postroom.dkim), not retired."""

    selector: str
    algorithm: Algorithm
    public_key: str
    record_name: str
    record_value: str
    is_signing: bool


@dataclass(frozen=True)
class SendingSetup:
    relay_host: str  # "" when the company relay is not configured
    provider: Provider | None
    helo_name: str
    is_helo_configured: bool  # False: the machine's name, as Postroom's SMTP client uses it
    bounce_domain: str  # the tagged return path's domain, "" when mail keeps its own sender
    keys: dict[str, tuple[PostroomKey, ...]]

    def envelope_domain(self, from_domain: str) -> str:
        """The domain SPF is checked at: Postroom's envelope sender is the From address
        (postroom.mail.message), or the tagged bounce address when that is turned on."""
        return self.bounce_domain or from_domain


_PRIVATE = [
    ipaddress.ip_network(text)
    for text in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
]


def is_internal_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Loopback, link-local, RFC 1918 and RFC 4193 addresses: receivers never see mail come
    from one, so SPF cannot be judged by it. (Not `is_private`: it also covers the
    documentation ranges, which stand for public addresses in examples and tests.)"""
    if address.is_loopback or address.is_link_local:
        return True
    return any(address in network for network in _PRIVATE if network.version == address.version)


def provider_for_host(host: str) -> Provider | None:
    host = host.lower().rstrip(".")
    if host.startswith("email-smtp.") and host.endswith(".amazonaws.com"):
        return Provider("Amazon SES", _SES_INCLUDE)
    return PROVIDERS.get(host)


def sending_setup() -> SendingSetup:
    company = company_get()
    preset = preset_for_settings(key=company.smtp_preset, host=company.smtp_host)
    host = preset.host if preset is not None else company.smtp_host.strip().lower()
    keys = {
        domain: tuple(
            PostroomKey(
                selector=key.selector,
                algorithm=Algorithm(key.algorithm),
                public_key=key.public_key,
                record_name=key.record_name,
                record_value=key.record_value,
                is_signing=key.state == KeyState.SIGNING,
            )
            for key in domain_keys
            if key.state != KeyState.RETIRED
        )
        for domain, domain_keys in dkim_keys_by_domain()
    }
    bounce = company.bounce_address if company.tag_return_path else ""
    helo = company.smtp_helo_name.strip()
    return SendingSetup(
        relay_host=host,
        provider=provider_for_host(host),
        helo_name=(helo or local_host_name()).lower().rstrip("."),
        is_helo_configured=bool(helo),
        bounce_domain=bounce.rpartition("@")[2].lower().rstrip(".") if bounce else "",
        keys=keys,
    )
