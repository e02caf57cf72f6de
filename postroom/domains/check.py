"""The domain check: for each domain Postroom sends from, SPF, DKIM, DMARC and MX, each found
ok, a warning, a problem, or "could not check" (the DNS did not answer: nothing is missing
until it does), with the record to publish; and the HELO name Postroom greets with.

Domains are checked side by side in threads (each check is a few dozen lookups of at most
postroom.core.dns.LOOKUP_TIMEOUT_SECONDS each); what Postroom sends with is read from the
database first, so the threads make DNS lookups only.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from postroom.company.selectors import company_get
from postroom.core.dns import DnsAnswer, dns_lookup, dns_resolver
from postroom.dkim.selectors import sending_domains
from postroom.domains.auth_findings import alignment_finding, dkim_verdict, dmarc_verdict
from postroom.domains.findings import DomainReport, Finding, Status, worst_status
from postroom.domains.sending import SendingSetup, sending_setup
from postroom.domains.server_findings import helo_finding, mx_finding
from postroom.domains.spf import LookupFunction, SpfWalker
from postroom.domains.spf_findings import (
    spf_all_finding,
    spf_lookups_finding,
    spf_record_finding,
    spf_relay_verdict,
)

PASSING = "Mail from Postroom will pass SPF, DKIM and DMARC."
# Domains checked at once: enough that five domains take the time of one or two.
PARALLEL_DOMAINS = 4


@dataclass(frozen=True)
class DomainCheck:
    relay_host: str
    company_domain: str
    helo: Finding
    domains: tuple[DomainReport, ...]
    checked_at: datetime

    @property
    def status(self) -> Status:
        return worst_status([self.helo, *(finding for d in self.domains for finding in d.findings)])

    def as_dict(self) -> dict[str, object]:
        return {
            "relay": self.relay_host,
            "checked_at": self.checked_at.isoformat(),
            "helo": self.helo.as_dict(),
            "domains": [report.as_dict() for report in self.domains],
        }


def _lookup_function() -> LookupFunction:
    """dns_lookup over one resolver, built in the caller's thread from the settings."""
    resolver = dns_resolver()

    def lookup(name: str, rdtype: str) -> DnsAnswer:
        return dns_lookup(name, rdtype, resolver=resolver)

    return lookup


def _spf_findings(domain: str, setup: SendingSetup) -> tuple[list[Finding], bool | None]:
    """SPF's findings at the From domain, and whether the mail passes SPF: at the envelope
    sender's domain, which differs only with the tagged return path."""
    walker = SpfWalker(_lookup_function())
    spf, text = spf_record_finding(walker, domain)
    findings = [spf]
    all_finding = spf_all_finding(domain, text) if text else None
    if all_finding is not None:
        findings.append(all_finding)
    if text:
        findings.append(spf_lookups_finding(walker, domain))
    relay = spf_relay_verdict(walker, domain, text, setup)
    findings.append(relay.finding)
    envelope_domain = setup.envelope_domain(domain)
    if envelope_domain == domain:
        return findings, relay.passes
    _, envelope_text = spf_record_finding(walker, envelope_domain)
    return findings, spf_relay_verdict(walker, envelope_domain, envelope_text, setup).passes


def domain_check(domain: str, *, setup: SendingSetup, reports_to: str = "") -> DomainReport:
    reports_to = reports_to or f"dmarc@{domain}"
    # SPF, DKIM, DMARC and MX ask different names: side by side, a DNS server that does not
    # answer costs the time of the longest chain (SPF, then the relay's address), not the sum.
    with ThreadPoolExecutor(max_workers=4) as pool:
        spf_future = pool.submit(_spf_findings, domain, setup)
        dkim_future = pool.submit(dkim_verdict, _lookup_function(), domain, setup)
        dmarc_future = pool.submit(dmarc_verdict, _lookup_function(), domain, reports_to=reports_to)
        mx_future = pool.submit(mx_finding, _lookup_function(), domain)
        findings, spf_passes = spf_future.result()
        dkim, dmarc, mx = dkim_future.result(), dmarc_future.result(), mx_future.result()
    findings += [*dkim.findings, *dmarc.findings]
    alignment, dmarc_passes = alignment_finding(
        domain,
        envelope_domain=setup.envelope_domain(domain),
        spf_passes=spf_passes,
        dkim_passes=dkim.passes,
        policy=dmarc.policy,
    )
    findings += [alignment, mx]
    if dmarc.policy is None:
        dmarc_passes = None if not dmarc.is_known else False
    summary = _summary(spf=spf_passes, dkim=dkim.passes, dmarc=dmarc_passes)
    still = [item.title for item in findings if item.status is Status.PROBLEM]
    if still and summary == PASSING:  # passing, yet something else needs fixing (MX, +all)
        summary += f" Still to fix: {', '.join(still)}."
    return DomainReport(domain, summary, worst_status(findings), tuple(findings))


def _summary(*, spf: bool | None, dkim: bool | None, dmarc: bool | None) -> str:
    checks = {"SPF": spf, "DKIM": dkim, "DMARC": dmarc}
    passing = [name for name, result in checks.items() if result]
    failing = [name for name, result in checks.items() if result is False]
    unknown = [name for name, result in checks.items() if result is None]
    if len(passing) == len(checks):
        return PASSING
    parts = []
    if failing:
        parts.append(f"Mail from Postroom will not pass {_and(failing)}")
    if passing:
        parts.append(
            f"it will pass {_and(passing)}"
            if parts
            else f"Mail from Postroom will pass {_and(passing)}"
        )
    if unknown:
        parts.append(f"{_and(unknown)} could not be checked")
    return "; ".join(parts) + "."


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def domains_check(*, domains: list[str] | None = None) -> DomainCheck:
    """Check every sending domain (the company's first) and the HELO name."""
    setup = sending_setup()
    domains = sending_domains() if domains is None else domains
    reports_to = company_get().sender_email
    company_domain = reports_to.rpartition("@")[2].lower().rstrip(".")
    with ThreadPoolExecutor(max_workers=PARALLEL_DOMAINS) as pool:
        helo = pool.submit(helo_finding, _lookup_function(), setup)
        reports = list(
            pool.map(
                lambda domain: domain_check(domain, setup=setup, reports_to=reports_to), domains
            )
        )
        return DomainCheck(
            setup.relay_host, company_domain, helo.result(), tuple(reports), timezone.now()
        )
