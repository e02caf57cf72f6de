"""Helpers of the DKIM tests: publish a key in the test DNS server, verify as receivers do."""

from __future__ import annotations

import dkim

from postroom.core.dns import dns_lookup
from postroom.dkim.models import DkimKey
from tests.support.dns_server import DnsServer


def publish(dns_server: DnsServer, key: DkimKey) -> None:
    dns_server.add(key.record_name, "TXT", key.record_value)


def dns_txt(name: bytes, timeout: int = 5) -> bytes | None:
    """dkimpy's key lookup, through Postroom's resolver and so the test DNS server."""
    answer = dns_lookup(name.decode("ascii"), "TXT")
    return answer.records[0].encode() if answer.found else None


def verified(message: bytes, *, index: int = 0) -> bool:
    """Whether the `index`th DKIM-Signature of `message` verifies, as a receiver checks it."""
    try:
        return bool(dkim.DKIM(message).verify(idx=index, dnsfunc=dns_txt))
    except dkim.DKIMException:  # what dkim.verify() itself answers False for
        return False


def signature_count(message: bytes) -> int:
    head = message.split(b"\r\n\r\n", 1)[0]
    return sum(1 for line in head.split(b"\r\n") if line.lower().startswith(b"dkim-signature:"))
