"""A sending setup whose every record is right, in the test DNS server: each test of the
domain check breaks one thing."""

from __future__ import annotations

from typing import Any

from postroom.accounts.models import Role, User
from postroom.company.selectors import company_get
from postroom.dkim.models import DkimKey
from postroom.dkim.services import dkim_key_create, dkim_key_start_signing
from postroom.domains.findings import DomainReport, Finding
from tests.support.dns_server import DnsServer

DOMAIN = "example.com"
RELAY = "relay.example.net"
RELAY_ADDRESS = "198.51.100.25"
HELO = "mail.example.com"
HELO_ADDRESS = "198.51.100.40"
GOOD_SPF = f"v=spf1 ip4:{RELAY_ADDRESS} -all"
GOOD_DMARC = f"v=DMARC1; p=quarantine; rua=mailto:dmarc@{DOMAIN}"


def company_set(**changes: Any) -> None:
    company = company_get()
    values: dict[str, Any] = {
        "sender_email": f"info@{DOMAIN}",
        "smtp_host": RELAY,
        "smtp_port": 587,
        "smtp_preset": "",
        "smtp_helo_name": HELO,
        **changes,
    }
    for name, value in values.items():
        setattr(company, name, value)
    company.save()


def all_good(dns_server: DnsServer) -> DkimKey:
    """Publish every record of a domain set up right, and sign with a Postroom key."""
    company_set()
    dns_server.add(RELAY, "A", RELAY_ADDRESS)
    dns_server.add(DOMAIN, "TXT", GOOD_SPF)
    dns_server.add(DOMAIN, "TXT", "google-site-verification=abc123")  # not SPF: ignored
    dns_server.add(f"_dmarc.{DOMAIN}", "TXT", GOOD_DMARC)
    dns_server.add(DOMAIN, "MX", f"10 mx.{DOMAIN}.")
    dns_server.add(HELO, "A", HELO_ADDRESS)
    dns_server.add("40.100.51.198.in-addr.arpa", "PTR", f"{HELO}.")
    admin = User.objects.create(username="dkim-admin", role=Role.ADMINISTRATOR)
    key = dkim_key_create(actor=admin, domain=DOMAIN, selector="pr1")
    dns_server.add(key.record_name, "TXT", key.record_value)
    return dkim_key_start_signing(actor=admin, key=key)


def finding(report: DomainReport, key: str) -> Finding:
    found = [item for item in report.findings if item.key == key]
    assert len(found) == 1, f"{key}: {[item.key for item in report.findings]}"
    return found[0]
