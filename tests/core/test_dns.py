"""postroom.core.dns against the loopback DNS server of tests/support/dns_server.py."""

from __future__ import annotations

from postroom.core.dns import Lookup, dns_lookup, dns_reverse_name
from tests.support.dns_server import DnsServer


def test_txt_records_come_back_whole_even_when_split_into_255_byte_strings(
    dns_server: DnsServer,
) -> None:
    long_value = "v=DKIM1; k=rsa; p=" + "A" * 400
    dns_server.add("sel._domainkey.example.com", "TXT", long_value)
    dns_server.add("example.com", "TXT", "v=spf1 -all")

    assert dns_lookup("sel._domainkey.example.com", "TXT").records == (long_value,)
    assert dns_lookup("example.com", "TXT").records == ("v=spf1 -all",)


def test_no_record_and_failure_are_told_apart(dns_server: DnsServer) -> None:
    dns_server.add("example.com", "MX", "10 mail.example.com.")
    dns_server.fail("broken.example")

    assert dns_lookup("example.com", "MX").records == ("10 mail.example.com.",)
    assert dns_lookup("example.com", "TXT").lookup is Lookup.NO_RECORD  # exists, no TXT
    assert dns_lookup("nowhere.example", "A").lookup is Lookup.NO_RECORD  # NXDOMAIN
    failed = dns_lookup("broken.example", "A")
    assert failed.lookup is Lookup.FAILED
    assert "broken.example" in failed.error


def test_reverse_names() -> None:
    assert dns_reverse_name("127.0.0.1") == "1.0.0.127.in-addr.arpa."
