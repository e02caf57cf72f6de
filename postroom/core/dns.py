"""DNS lookups for the deliverability checks (DKIM keys, SPF, DMARC, MX, the HELO name).

One resolver, built from POSTROOM_DNS_SERVERS ("host" or "host:port", comma separated) or,
without it, from the system's /etc/resolv.conf. The tests point it at a DNS server they start
on loopback (tests/support/dns_server.py), so no test reaches the internet.

A lookup answers a plain list of strings or a `DnsAnswer` saying why there is none: callers
tell "no such record" (something to publish) from "the DNS did not answer" (try again).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.resolver
import dns.reversename
from django.conf import settings

# A whole domain check makes a few dozen lookups: keep each one short.
LOOKUP_TIMEOUT_SECONDS = 4.0


class Lookup(enum.Enum):
    FOUND = "found"
    NO_RECORD = "no record"  # the name exists without this type, or does not exist
    FAILED = "failed"  # timeout, SERVFAIL, refused: nothing is known


@dataclass(frozen=True)
class DnsAnswer:
    lookup: Lookup
    records: tuple[str, ...] = ()
    error: str = ""

    @property
    def found(self) -> bool:
        return self.lookup is Lookup.FOUND


def _server(text: str) -> tuple[str, int]:
    """ "192.0.2.1", "192.0.2.1:5353", "2001:db8::1" or "[2001:db8::1]:5353"."""
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
        return host.rstrip("]"), int(port or 53)
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, int(port)
    return text, 53


def dns_resolver() -> dns.resolver.Resolver:
    servers: list[str] = settings.POSTROOM_DNS_SERVERS
    if servers:
        resolver = dns.resolver.Resolver(configure=False)
        hosts = [_server(server) for server in servers]
        resolver.nameservers = [host for host, _ in hosts]
        resolver.nameserver_ports = dict(hosts)
    else:
        resolver = dns.resolver.Resolver()
    resolver.lifetime = LOOKUP_TIMEOUT_SECONDS
    resolver.timeout = LOOKUP_TIMEOUT_SECONDS
    # Each lookup asks again: a record the administrator just published must show at once.
    resolver.cache = None
    return resolver


def dns_lookup(
    name: str, rdtype: str, *, resolver: dns.resolver.Resolver | None = None
) -> DnsAnswer:
    """The records of one type at one name, as text (TXT strings joined as RFC 7208 §3.3
    says: the pieces of one record concatenated without spaces)."""
    resolver = resolver or dns_resolver()
    try:
        answer = resolver.resolve(name, rdtype, search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return DnsAnswer(Lookup.NO_RECORD)
    except dns.resolver.NoNameservers as error:
        return DnsAnswer(Lookup.FAILED, error=f"no DNS server answered for {name}: {error}")
    except dns.exception.Timeout:
        return DnsAnswer(Lookup.FAILED, error=f"the DNS lookup of {name} ({rdtype}) timed out")
    except dns.exception.DNSException as error:
        return DnsAnswer(
            Lookup.FAILED, error=f"the DNS lookup of {name} ({rdtype}) failed: {error}"
        )
    if rdtype == "TXT":
        texts = tuple(
            b"".join(rdata.strings).decode("utf-8", "replace")
            for rdata in answer  # type: ignore[attr-defined]
        )
        return DnsAnswer(Lookup.FOUND, texts)
    return DnsAnswer(Lookup.FOUND, tuple(rdata.to_text() for rdata in answer))


def dns_reverse_name(address: str) -> str:
    """The PTR name of an IPv4 or IPv6 address ("4.3.2.1.in-addr.arpa.")."""
    return dns.reversename.from_address(address).to_text()
