"""The SPF findings of one domain: its record, whether it lets the relay send, its lookups."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from postroom.core.dns import Lookup
from postroom.domains.findings import Finding, Record, Status
from postroom.domains.sending import SendingSetup, is_internal_address
from postroom.domains.spf import (
    LOOKUP_LIMIT,
    IpAddress,
    SpfResult,
    SpfSyntaxError,
    SpfWalker,
    spf_parse,
    spf_with_term,
)

NEW_RECORD = "v=spf1 ~all"  # ~all: softfail; DMARC's policy decides what happens to failures


@dataclass(frozen=True)
class RelayVerdict:
    """Will the relay's mail pass SPF at a domain: True, False, or None (not known)."""

    passes: bool | None
    finding: Finding


def spf_record_finding(walker: SpfWalker, domain: str) -> tuple[Finding, str]:
    """The SPF record itself, and its text ("" when there is no single usable one)."""
    answer, records = walker.record(domain)
    title = "SPF record"
    if answer.lookup is Lookup.FAILED:
        return Finding("spf", title, Status.UNKNOWN, f"Could not check: {answer.error}."), ""
    if not records:
        message = (
            f"{domain} has no SPF record, so receivers cannot tell which servers may send its "
            "mail; many put such mail in spam. Publish the record below."
        )
        return Finding("spf", title, Status.PROBLEM, message, Record(domain, "TXT", NEW_RECORD)), ""
    if len(records) > 1:
        merged = _merged(records)
        message = (
            f"{domain} has {len(records)} SPF records. RFC 7208 allows one: with two, every "
            "receiver's SPF check ends in an error (permerror) and SPF fails. Replace them "
            "with the one record below."
        )
        record = Record(domain, "TXT", merged)
        return Finding("spf", title, Status.PROBLEM, message, record, tuple(records)), merged
    try:
        spf_parse(records[0])
    except SpfSyntaxError as error:
        message = (
            f"The SPF record of {domain} is not valid ({error}): receivers treat it as an "
            "error (permerror) and SPF fails. Correct the record."
        )
        return Finding("spf", title, Status.PROBLEM, message, found=tuple(records)), ""
    message = f"{domain} publishes one SPF record."
    return Finding("spf", title, Status.OK, message, found=tuple(records)), records[0]


def _merged(records: list[str]) -> str:
    terms: list[str] = []
    for text in records:
        for term in text.split()[1:]:
            if term.lower().lstrip("+-~?") != "all" and term not in terms:
                terms.append(term)
    return " ".join(["v=spf1", *terms, "~all"])


def spf_all_finding(domain: str, text: str) -> Finding | None:
    """A record that ends in "+all" (or a bare "all") lets anyone send as the domain."""
    try:
        record = spf_parse(text)
    except SpfSyntaxError:
        return None
    for term in record.terms:
        if term.name == "all" and term.qualifier == "+":
            message = (
                f'The SPF record of {domain} ends in "+all": it lets every server in the world '
                "send as this domain, so SPF proves nothing and some receivers score it as "
                'spam. End it with "~all" (or "-all") instead.'
            )
            fixed = " ".join(
                "~all" if part.lower() in {"+all", "all"} else part for part in text.split()
            )
            return Finding(
                "spf_all", "SPF +all", Status.WARNING, message, Record(domain, "TXT", fixed)
            )
    return None


def spf_lookups_finding(walker: SpfWalker, domain: str) -> Finding:
    count = walker.count_lookups(domain)
    title = "SPF DNS lookups"
    if count.problems:
        message = (
            f"The SPF record of {domain} includes records that break its check: "
            + "; ".join(count.problems)
            + ". Receivers treat that as an error (permerror) and SPF fails."
        )
        return Finding("spf_lookups", title, Status.PROBLEM, message)
    if count.total > LOOKUP_LIMIT:
        message = (
            f"The SPF record of {domain} needs {count.total} DNS lookups (its includes "
            f"counted); RFC 7208 allows at most {LOOKUP_LIMIT}, so receivers stop with an "
            "error (permerror) and SPF fails. Remove includes you no longer use, or replace "
            "some with the ip4:/ip6: addresses they stand for."
        )
        return Finding("spf_lookups", title, Status.PROBLEM, message)
    if count.is_partial:
        message = (
            f"Could not check: a DNS lookup for an include of {domain} failed, so the count "
            f"({count.total} so far, at most {LOOKUP_LIMIT} allowed) is incomplete."
        )
        return Finding("spf_lookups", title, Status.UNKNOWN, message)
    message = f"{count.total} of the {LOOKUP_LIMIT} DNS lookups SPF allows."
    return Finding("spf_lookups", title, Status.OK, message)


def _relay_addresses(walker: SpfWalker, host: str) -> tuple[list[IpAddress], str]:
    """The relay's addresses, or [] and why not."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))], ""
    except ValueError:
        pass
    addresses: list[IpAddress] = []
    failures = []
    for rdtype in ("A", "AAAA"):
        answer = walker.lookup(host, rdtype)
        if answer.lookup is Lookup.FAILED:
            failures.append(answer.error)
        addresses += [ipaddress.ip_address(text) for text in answer.records]
    if not addresses:
        return [], "; ".join(failures) or f"{host} has no A or AAAA record"
    return addresses, ""


def spf_relay_verdict(
    walker: SpfWalker, domain: str, text: str, setup: SendingSetup
) -> RelayVerdict:
    """Does SPF at `domain` let the relay's mail through?"""
    title = "SPF allows the relay"
    base = text or NEW_RECORD
    provider = setup.provider
    if not setup.relay_host:
        message = "The company SMTP server is not set, so there is no relay to check."
        return RelayVerdict(None, Finding("spf_relay", title, Status.WARNING, message))
    answer, _ = walker.record(domain)
    if answer.lookup is Lookup.FAILED:  # nothing to evaluate the relay against
        message = f"Could not check: the SPF record of {domain} could not be looked up."
        return RelayVerdict(None, Finding("spf_relay", title, Status.UNKNOWN, message))
    if provider is not None:
        include = provider.spf_include
        count = walker.count_lookups(domain)
        if include in count.includes:
            message = f"The SPF record of {domain} includes {include}, as {provider.name} asks."
            return RelayVerdict(True, Finding("spf_relay", title, Status.OK, message))
        if count.is_partial:
            message = f"Could not check: a DNS lookup for the SPF record of {domain} failed."
            return RelayVerdict(None, Finding("spf_relay", title, Status.UNKNOWN, message))
        message = (
            f"Mail goes out through {provider.name} ({setup.relay_host}), but the SPF record "
            f"of {domain} does not include {include}: receivers will see {provider.name}'s "
            f"servers fail SPF. Add include:{include} to the record, as below."
        )
        record = Record(domain, "TXT", spf_with_term(base, f"include:{include}"))
        return RelayVerdict(False, Finding("spf_relay", title, Status.PROBLEM, message, record))
    return _relay_by_address(walker, domain, base, setup)


def _relay_by_address(
    walker: SpfWalker, domain: str, base: str, setup: SendingSetup
) -> RelayVerdict:
    title = "SPF allows the relay"
    host = setup.relay_host
    addresses, why = _relay_addresses(walker, host)
    if not addresses:
        message = f"Could not check: the address of the relay {host} is not known ({why})."
        return RelayVerdict(None, Finding("spf_relay", title, Status.UNKNOWN, message))
    if all(is_internal_address(address) for address in addresses):
        message = (
            f"The relay {host} is at an internal address ({addresses[0]}); receivers see the "
            "public address your mail leaves from, which Postroom cannot know. Make sure the "
            f"SPF record of {domain} covers that address."
        )
        return RelayVerdict(None, Finding("spf_relay", title, Status.WARNING, message))
    results = {address: walker.check_host(address, domain) for address in addresses}
    if any(result is SpfResult.TEMPERROR for result in results.values()):
        message = f"Could not check: a DNS lookup made while evaluating {domain}'s SPF failed."
        return RelayVerdict(None, Finding("spf_relay", title, Status.UNKNOWN, message))
    failing = [address for address, result in results.items() if result is not SpfResult.PASS]
    if not failing:
        message = f"The relay {host} ({_listed(addresses)}) passes the SPF record of {domain}."
        return RelayVerdict(True, Finding("spf_relay", title, Status.OK, message))
    got = ", ".join(f"{address}: {results[address].value}" for address in failing)
    message = (
        f"Mail leaves through {host}, but the SPF record of {domain} does not allow it "
        f"({got}): receivers will fail SPF for this domain's mail. Add the relay's "
        "address to the record, as below."
    )
    terms = " ".join(f"ip{address.version}:{address}" for address in failing)
    record = Record(domain, "TXT", spf_with_term(base, terms))
    return RelayVerdict(False, Finding("spf_relay", title, Status.PROBLEM, message, record))


def _listed(addresses: list[IpAddress]) -> str:
    return ", ".join(str(address) for address in addresses)
