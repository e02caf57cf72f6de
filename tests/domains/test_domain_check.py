"""The domain check against a real DNS server on loopback: the all-good case, then each wrong
record with its own message (and the record to publish)."""

from __future__ import annotations

import pytest

from postroom.accounts.models import Role, User
from postroom.dkim.models import DkimKey
from postroom.domains.check import DomainCheck, domains_check
from postroom.domains.findings import DomainReport, Status
from tests.domains.support import (
    DOMAIN,
    GOOD_DMARC,
    HELO,
    RELAY,
    RELAY_ADDRESS,
    all_good,
    company_set,
    finding,
)
from tests.support.dns_server import DnsServer

pytestmark = pytest.mark.django_db


def check_domain() -> DomainReport:
    result = domains_check()
    assert [report.domain for report in result.domains] == [DOMAIN]
    return result.domains[0]


def test_a_domain_set_up_right_passes_spf_dkim_and_dmarc(dns_server: DnsServer) -> None:
    all_good(dns_server)
    result: DomainCheck = domains_check()
    report = result.domains[0]
    assert report.summary == "Mail from Postroom will pass SPF, DKIM and DMARC."
    assert {item.key: item.status for item in report.findings} == {
        "spf": Status.OK,
        "spf_lookups": Status.OK,
        "spf_relay": Status.OK,
        "dkim": Status.OK,
        "dmarc": Status.OK,
        "dmarc_reports": Status.OK,
        "alignment": Status.OK,
        "mx": Status.OK,
    }
    assert report.records == []
    assert result.helo.status is Status.OK
    assert result.status is Status.OK
    assert "passes SPF and DKIM aligned" in finding(report, "alignment").message


def test_no_spf_record_says_to_publish_one(dns_server: DnsServer) -> None:
    all_good(dns_server)
    dns_server.remove(DOMAIN, "TXT")
    dns_server.add(DOMAIN, "TXT", "google-site-verification=abc123")
    report = check_domain()
    spf = finding(report, "spf")
    assert spf.status is Status.PROBLEM
    assert "example.com has no SPF record" in spf.message
    assert spf.record is not None and (spf.record.name, spf.record.type) == (DOMAIN, "TXT")
    relay = finding(report, "spf_relay")
    assert relay.status is Status.PROBLEM
    assert relay.record is not None and relay.record.value == f"v=spf1 ip4:{RELAY_ADDRESS} ~all"
    # DKIM still aligns, so DMARC still passes: only SPF fails.
    assert report.summary == "Mail from Postroom will not pass SPF; it will pass DKIM and DMARC."


def test_two_spf_records_are_a_permerror_merged_into_one(dns_server: DnsServer) -> None:
    all_good(dns_server)
    dns_server.add(DOMAIN, "TXT", "v=spf1 include:_spf.google.com ~all")
    spf = finding(check_domain(), "spf")
    assert spf.status is Status.PROBLEM
    assert "has 2 SPF records" in spf.message and "permerror" in spf.message
    assert spf.record is not None
    terms = spf.record.value.split()  # in the order the DNS answered them
    assert (terms[0], terms[-1]) == ("v=spf1", "~all")
    assert sorted(terms[1:-1]) == ["include:_spf.google.com", f"ip4:{RELAY_ADDRESS}"]


def test_an_spf_record_without_the_relay_says_what_to_add(dns_server: DnsServer) -> None:
    all_good(dns_server)
    dns_server.remove(DOMAIN, "TXT")
    dns_server.add(DOMAIN, "TXT", "v=spf1 ip4:192.0.2.1 mx -all")
    relay = finding(check_domain(), "spf_relay")
    assert relay.status is Status.PROBLEM
    assert f"Mail leaves through {RELAY}" in relay.message
    assert f"{RELAY_ADDRESS}: fail" in relay.message
    assert relay.record is not None
    assert relay.record.value == f"v=spf1 ip4:192.0.2.1 mx ip4:{RELAY_ADDRESS} -all"


def test_a_provider_relay_needs_its_include(dns_server: DnsServer) -> None:
    all_good(dns_server)
    company_set(smtp_host="smtp.office365.com", smtp_preset="microsoft365")
    dns_server.remove(DOMAIN, "TXT")
    dns_server.add(DOMAIN, "TXT", "v=spf1 include:_spf.google.com ~all")
    dns_server.add("_spf.google.com", "TXT", "v=spf1 ip4:192.0.2.0/24 ~all")
    relay = finding(check_domain(), "spf_relay")
    assert relay.status is Status.PROBLEM
    assert "does not include spf.protection.outlook.com" in relay.message
    assert relay.record is not None
    assert relay.record.value == (
        "v=spf1 include:_spf.google.com include:spf.protection.outlook.com ~all"
    )
    dns_server.remove(DOMAIN, "TXT")
    dns_server.add(DOMAIN, "TXT", "v=spf1 include:spf.protection.outlook.com -all")
    dns_server.add("spf.protection.outlook.com", "TXT", "v=spf1 ip4:40.92.0.0/15 -all")
    assert finding(check_domain(), "spf_relay").status is Status.OK


def test_more_than_ten_lookups_is_reported_with_the_count(dns_server: DnsServer) -> None:
    all_good(dns_server)
    includes = " ".join(f"include:s{n}.example.org" for n in range(6))
    dns_server.remove(DOMAIN, "TXT")
    dns_server.add(DOMAIN, "TXT", f"v=spf1 ip4:{RELAY_ADDRESS} {includes} -all")
    for n in range(6):  # each include costs one lookup, and its a and mx one more each
        dns_server.add(f"s{n}.example.org", "TXT", "v=spf1 a mx -all")
    lookups = finding(check_domain(), "spf_lookups")
    assert lookups.status is Status.PROBLEM
    assert "needs 18 DNS lookups" in lookups.message
    assert "at most 10" in lookups.message


def test_plus_all_is_a_warning(dns_server: DnsServer) -> None:
    all_good(dns_server)
    dns_server.remove(DOMAIN, "TXT")
    dns_server.add(DOMAIN, "TXT", "v=spf1 mx +all")
    report = check_domain()
    warning = finding(report, "spf_all")
    assert warning.status is Status.WARNING
    assert "lets every server in the world send" in warning.message
    assert warning.record is not None and warning.record.value == "v=spf1 mx ~all"
    assert finding(report, "spf_relay").status is Status.OK  # +all lets the relay through too


def test_no_dkim_key_at_the_providers_selector(dns_server: DnsServer) -> None:
    all_good(dns_server)
    company_set(smtp_host="smtp.office365.com", smtp_preset="microsoft365")
    DkimKey.objects.all().delete()  # Microsoft 365 signs, not Postroom
    dns_server.add("selector2._domainkey.example.com", "TXT", "v=DKIM1; k=rsa; p=MIIBIjAN")
    report = check_domain()
    first, second = (item for item in report.findings if item.key == "dkim")
    assert first.status is Status.PROBLEM
    assert "No DKIM key is published at selector1._domainkey.example.com" in first.message
    assert "Microsoft Defender portal" in first.message
    assert first.record is not None and first.record.type == "CNAME"
    assert first.record.value.startswith("selector1-example-com._domainkey.")
    assert second.status is Status.OK  # one valid selector signs: DKIM passes
    # SPF lacks Microsoft's include, but one valid selector is enough for DKIM and DMARC.
    assert report.summary == "Mail from Postroom will not pass SPF; it will pass DKIM and DMARC."


def test_an_invalid_dkim_record_says_what_is_wrong(dns_server: DnsServer) -> None:
    all_good(dns_server)
    company_set(smtp_host="smtp.gmail.com", smtp_preset="gmail")
    DkimKey.objects.all().delete()
    dns_server.add("google._domainkey.example.com", "TXT", "v=DKIM1; k=rsa; p=")
    dkim = finding(check_domain(), "dkim")
    assert dkim.status is Status.PROBLEM
    assert "google._domainkey.example.com is not a valid DKIM key" in dkim.message
    assert "revoked" in dkim.message


def test_postroom_key_not_published_gives_its_record(dns_server: DnsServer) -> None:
    key = all_good(dns_server)
    dns_server.remove(key.record_name)
    report = check_domain()
    dkim = finding(report, "dkim")
    assert dkim.status is Status.PROBLEM
    assert f"No DKIM key is published at {key.record_name}" in dkim.message
    assert dkim.record is not None and dkim.record.value == key.record_value
    # SPF still aligns: DMARC still passes.
    assert report.summary == "Mail from Postroom will not pass DKIM; it will pass SPF and DMARC."


def test_no_dmarc_record_says_to_publish_one(dns_server: DnsServer) -> None:
    all_good(dns_server)
    dns_server.remove(f"_dmarc.{DOMAIN}")
    report = check_domain()
    dmarc = finding(report, "dmarc")
    assert dmarc.status is Status.PROBLEM
    assert "example.com has no DMARC record" in dmarc.message
    assert dmarc.record is not None
    assert (dmarc.record.name, dmarc.record.value) == (
        "_dmarc.example.com",
        "v=DMARC1; p=none; rua=mailto:info@example.com",
    )
    assert report.summary == "Mail from Postroom will not pass DMARC; it will pass SPF and DKIM."


def test_a_subdomain_falls_back_to_its_organizational_domains_dmarc(dns_server: DnsServer) -> None:
    all_good(dns_server)
    company_set(sender_email="news@mail.example.co.uk")
    dns_server.add("example.co.uk", "TXT", "ignored")
    dns_server.add("_dmarc.example.co.uk", "TXT", "v=DMARC1; p=reject; sp=none")
    report = domains_check().domains[0]
    dmarc = finding(report, "dmarc")
    assert dmarc.status is Status.WARNING  # sp=none applies to the subdomain
    assert "_dmarc.example.co.uk" in dmarc.message and "p=none" in dmarc.message


def test_p_none_is_a_warning_and_no_rua_another(dns_server: DnsServer) -> None:
    all_good(dns_server)
    dns_server.remove(f"_dmarc.{DOMAIN}")
    dns_server.add(f"_dmarc.{DOMAIN}", "TXT", "v=DMARC1; p=none")
    report = check_domain()
    dmarc = finding(report, "dmarc")
    assert dmarc.status is Status.WARNING
    assert "monitoring only" in dmarc.message
    reports = finding(report, "dmarc_reports")
    assert reports.status is Status.WARNING
    assert "rua=mailto:info@example.com" in reports.message


def test_a_return_path_on_another_domain_does_not_align(dns_server: DnsServer) -> None:
    key = all_good(dns_server)
    company_set(bounce_address="bounces@bounce-mail.net", tag_return_path=True)
    dns_server.add("bounce-mail.net", "TXT", f"v=spf1 ip4:{RELAY_ADDRESS} -all")
    dns_server.remove(key.record_name)  # and DKIM fails: nothing aligns
    report = check_domain()
    alignment = finding(report, "alignment")
    assert alignment.status is Status.PROBLEM
    assert "Mail from example.com will fail DMARC" in alignment.message
    assert "SPF passes for the envelope sender's domain bounce-mail.net" in alignment.message
    assert "does not align with example.com under relaxed alignment" in alignment.message
    assert "will not pass DKIM and DMARC" in report.summary


def test_strict_spf_alignment_refuses_a_subdomain_return_path(dns_server: DnsServer) -> None:
    key = all_good(dns_server)
    company_set(bounce_address="bounces@b.example.com", tag_return_path=True)
    dns_server.add("b.example.com", "TXT", f"v=spf1 ip4:{RELAY_ADDRESS} -all")
    dns_server.remove(key.record_name)
    assert finding(check_domain(), "alignment").status is Status.OK  # relaxed: same org
    dns_server.remove(f"_dmarc.{DOMAIN}")
    dns_server.add(f"_dmarc.{DOMAIN}", "TXT", GOOD_DMARC + "; aspf=s")
    alignment = finding(check_domain(), "alignment")
    assert alignment.status is Status.PROBLEM
    assert "under strict (aspf=s) alignment" in alignment.message


def test_no_mx_record(dns_server: DnsServer) -> None:
    all_good(dns_server)
    dns_server.remove(DOMAIN, "MX")
    mx = finding(check_domain(), "mx")
    assert mx.status is Status.PROBLEM
    assert "example.com has no MX record" in mx.message and "bounces" in mx.message


def test_a_helo_name_whose_address_points_elsewhere(dns_server: DnsServer) -> None:
    all_good(dns_server)
    dns_server.remove("40.100.51.198.in-addr.arpa")
    dns_server.add("40.100.51.198.in-addr.arpa", "PTR", "host-40.isp.example.")
    helo = domains_check().helo
    assert helo.status is Status.PROBLEM
    assert "the reverse DNS of 198.51.100.40 points to host-40.isp.example" in helo.message
    assert helo.record is not None
    assert (helo.record.name, helo.record.type, helo.record.value) == (
        "40.100.51.198.in-addr.arpa.",
        "PTR",
        f"{HELO}.",
    )
    dns_server.remove(HELO)
    helo = domains_check().helo
    assert helo.status is Status.PROBLEM and "has no A or AAAA record" in helo.message


def test_a_helo_name_that_is_not_a_domain_name(dns_server: DnsServer) -> None:
    all_good(dns_server)
    company_set(smtp_helo_name="localhost")
    helo = domains_check().helo
    assert helo.status is Status.PROBLEM
    assert "not a fully qualified domain name" in helo.message


def test_a_dns_failure_is_could_not_check_never_missing(dns_server: DnsServer) -> None:
    all_good(dns_server)
    dns_server.fail(f"_dmarc.{DOMAIN}")
    dns_server.fail(DOMAIN)
    report = check_domain()
    for key in ("spf", "dmarc", "mx"):
        item = finding(report, key)
        assert item.status is Status.UNKNOWN, key
        assert item.message.startswith("Could not check"), item.message
        assert item.record is None
    assert finding(report, "spf_relay").status is Status.UNKNOWN
    assert report.status is Status.UNKNOWN
    assert report.summary == (
        "Mail from Postroom will pass DKIM; SPF and DMARC could not be checked."
    )


def test_every_sending_domain_is_checked_the_companys_first(dns_server: DnsServer) -> None:
    all_good(dns_server)
    User.objects.create(username="zed", email="zed@zulu.example", role=Role.STAFF)
    User.objects.create(username="amy", email="amy@alpha.example", role=Role.STAFF)
    result = domains_check()
    assert [report.domain for report in result.domains] == [
        DOMAIN,
        "alpha.example",
        "zulu.example",
    ]
    assert finding(result.domains[1], "spf").status is Status.PROBLEM


def test_passing_mail_still_names_what_else_to_fix(dns_server: DnsServer) -> None:
    all_good(dns_server)
    dns_server.remove(DOMAIN, "MX")
    report = check_domain()
    assert report.status is Status.PROBLEM
    assert report.summary == "Mail from Postroom will pass SPF, DKIM and DMARC. Still to fix: MX."


def test_a_relay_on_an_internal_address_is_a_warning_not_a_verdict(dns_server: DnsServer) -> None:
    all_good(dns_server)
    company_set(smtp_host="127.0.0.1")
    report = check_domain()
    relay = finding(report, "spf_relay")
    assert relay.status is Status.WARNING
    assert "internal address (127.0.0.1)" in relay.message
    # SPF is not known to pass, but DKIM aligns: DMARC still passes.
    assert (
        report.summary == "Mail from Postroom will pass DKIM and DMARC; SPF could not be checked."
    )
