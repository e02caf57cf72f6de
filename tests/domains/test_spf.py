"""The SPF evaluator (RFC 7208) against the loopback DNS server: what a receiver would answer
for an address, and the count of DNS-querying terms."""

from __future__ import annotations

import ipaddress

import pytest

from postroom.core.dns import dns_lookup
from postroom.domains.spf import SpfResult, SpfSyntaxError, SpfWalker, spf_parse, spf_with_term
from tests.support.dns_server import DnsServer

D = "example.com"


def result(address: str, domain: str = D) -> SpfResult:
    return SpfWalker(dns_lookup).check_host(ipaddress.ip_address(address), domain)


def test_each_qualifier_gives_its_result(dns_server: DnsServer) -> None:
    dns_server.add(
        D, "TXT", "v=spf1 ip4:192.0.2.1 -ip4:192.0.2.2 ~ip4:192.0.2.3 ?ip4:192.0.2.4 -all"
    )
    assert [result(f"192.0.2.{n}") for n in (1, 2, 3, 4, 5)] == [
        SpfResult.PASS,
        SpfResult.FAIL,
        SpfResult.SOFTFAIL,
        SpfResult.NEUTRAL,
        SpfResult.FAIL,
    ]


def test_no_match_and_no_all_is_neutral_and_no_record_is_none(dns_server: DnsServer) -> None:
    dns_server.add(D, "TXT", "v=spf1 ip4:192.0.2.1")
    assert result("198.51.100.1") is SpfResult.NEUTRAL
    assert result("198.51.100.1", "nothing.example") is SpfResult.NONE


def test_a_and_mx_with_prefix_lengths_and_ipv6(dns_server: DnsServer) -> None:
    dns_server.add(D, "TXT", "v=spf1 a:web.example.com/24 mx//64 -all")
    dns_server.add("web.example.com", "A", "203.0.113.10")
    dns_server.add(D, "MX", "10 mx.example.com.")
    dns_server.add("mx.example.com", "AAAA", "2001:db8:1:2::25")
    assert result("203.0.113.200") is SpfResult.PASS
    assert result("203.0.114.1") is SpfResult.FAIL
    assert result("2001:db8:1:2::ffff") is SpfResult.PASS
    assert result("2001:db8:1:3::1") is SpfResult.FAIL


def test_include_and_redirect(dns_server: DnsServer) -> None:
    dns_server.add(D, "TXT", "v=spf1 include:_spf.example.net redirect=_rest.example.com")
    dns_server.add("_spf.example.net", "TXT", "v=spf1 ip4:192.0.2.0/28 -all")
    dns_server.add("_rest.example.com", "TXT", "v=spf1 ip6:2001:db8::/32 ~all")
    assert result("192.0.2.5") is SpfResult.PASS  # the include matched
    assert result("2001:db8::1") is SpfResult.PASS  # the include's -all is no match; redirect
    assert result("192.0.2.100") is SpfResult.SOFTFAIL


def test_an_include_without_a_record_is_a_permerror(dns_server: DnsServer) -> None:
    dns_server.add(D, "TXT", "v=spf1 include:gone.example -all")
    assert result("192.0.2.1") is SpfResult.PERMERROR


def test_a_failing_dns_server_is_a_temperror(dns_server: DnsServer) -> None:
    dns_server.add(D, "TXT", "v=spf1 include:broken.example -all")
    dns_server.fail("broken.example")
    assert result("192.0.2.1") is SpfResult.TEMPERROR


def test_the_eleventh_lookup_is_a_permerror_and_the_count_says_so(dns_server: DnsServer) -> None:
    names = [f"i{n}.example.org" for n in range(11)]
    dns_server.add(D, "TXT", "v=spf1 " + " ".join(f"include:{n}" for n in names) + " -all")
    for name in names:
        dns_server.add(name, "TXT", "v=spf1 ip4:198.51.100.1 -all")
    assert result("192.0.2.1") is SpfResult.PERMERROR
    count = SpfWalker(dns_lookup).count_lookups(D)
    assert count.total == 11 and count.problems == [] and set(names) <= count.includes


def test_an_include_loop_is_reported(dns_server: DnsServer) -> None:
    dns_server.add(D, "TXT", "v=spf1 include:loop.example -all")
    dns_server.add("loop.example", "TXT", f"v=spf1 include:{D} -all")
    count = SpfWalker(dns_lookup).count_lookups(D)
    assert count.problems == [f"{D} includes itself (a loop)"]


def test_macros_and_ptr_are_counted_not_evaluated(dns_server: DnsServer) -> None:
    dns_server.add(D, "TXT", "v=spf1 exists:%{i}.spf.example.com ptr ~all")
    count = SpfWalker(dns_lookup).count_lookups(D)
    assert count.total == 2 and count.has_unevaluated
    assert result("192.0.2.1") is SpfResult.SOFTFAIL


@pytest.mark.parametrize(
    "record",
    ["v=spf1 ip4:300.1.1.1 -all", "v=spf1 ip4:2001:db8::1", "v=spf1 foo:bar", "v=spf1 a/40"],
)
def test_a_bad_term_is_a_syntax_error(record: str) -> None:
    with pytest.raises(SpfSyntaxError):
        spf_parse(record)


def test_a_term_goes_before_all_or_redirect() -> None:
    assert spf_with_term("v=spf1 mx -all", "ip4:192.0.2.1") == "v=spf1 mx ip4:192.0.2.1 -all"
    assert spf_with_term("v=spf1 redirect=x.example", "a") == "v=spf1 a redirect=x.example"
    assert spf_with_term("v=spf1 mx", "a") == "v=spf1 mx a"
