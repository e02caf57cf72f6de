"""MX of a domain, and the HELO name Postroom greets with: forward-confirmed reverse DNS."""

from __future__ import annotations

import re

from postroom.core.dns import Lookup, dns_reverse_name
from postroom.domains.findings import Finding, Record, Status
from postroom.domains.sending import SendingSetup
from postroom.domains.spf import LookupFunction

# RFC 1035 §2.3.1 labels, at least two of them: a HELO name receivers can look up.
_FQDN = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$"
)


def mx_finding(lookup: LookupFunction, domain: str) -> Finding:
    answer = lookup(domain, "MX")
    title = "MX"
    if answer.lookup is Lookup.FAILED:
        return Finding("mx", title, Status.UNKNOWN, f"Could not check: {answer.error}.")
    if not answer.records:
        message = (
            f"{domain} has no MX record, so replies and bounces to its addresses have nowhere "
            "to go, and some receivers refuse mail from a domain that cannot receive any. "
            "Publish an MX record naming the server that receives this domain's mail."
        )
        return Finding("mx", title, Status.PROBLEM, message)
    exchanges = [record.split()[-1] for record in answer.records]
    if exchanges == ["."]:  # RFC 7505: a null MX, "this domain accepts no mail"
        message = (
            f"{domain} publishes a null MX (it accepts no mail): replies and bounces are "
            "refused, and receivers may refuse mail from it too. Publish a real MX record."
        )
        return Finding("mx", title, Status.PROBLEM, message, found=answer.records)
    message = f"{domain} receives mail at {', '.join(name.rstrip('.') for name in exchanges)}."
    return Finding("mx", title, Status.OK, message, found=answer.records)


def helo_finding(lookup: LookupFunction, setup: SendingSetup) -> Finding:
    """The HELO name resolves, and each of its addresses' PTR names it back (FCrDNS)."""
    name = setup.helo_name
    title = f"HELO name {name}"
    where = (
        "the HELO name set in SMTP Server Information → Advanced"
        if setup.is_helo_configured
        else "this machine's name (no HELO name is set in SMTP Server Information → Advanced)"
    )
    if not _FQDN.match(name):
        message = (
            f'Postroom greets servers as "{name}", {where}, which is not a fully qualified '
            "domain name: many servers refuse or score such a greeting. Set a HELO name such "
            "as mail.example.com that resolves to this machine's public address."
        )
        return Finding("helo", title, Status.PROBLEM, message)
    addresses: list[str] = []
    for rdtype in ("A", "AAAA"):
        answer = lookup(name, rdtype)
        if answer.lookup is Lookup.FAILED:
            return Finding("helo", title, Status.UNKNOWN, f"Could not check: {answer.error}.")
        addresses += answer.records
    if not addresses:
        message = (
            f'Postroom greets servers as "{name}" ({where}), but that name has no A or AAAA '
            "record: receivers that check the greeting score it as spam. Publish an A record "
            "for it with this machine's public address."
        )
        return Finding("helo", title, Status.PROBLEM, message)
    for address in addresses:
        finding = _ptr_finding(lookup, name, address, title)
        if finding is not None:
            return finding
    message = f"{name} resolves to {', '.join(addresses)}, whose reverse DNS names it back."
    return Finding("helo", title, Status.OK, message)


def _ptr_finding(lookup: LookupFunction, name: str, address: str, title: str) -> Finding | None:
    reverse = dns_reverse_name(address)
    answer = lookup(reverse.rstrip("."), "PTR")
    if answer.lookup is Lookup.FAILED:
        return Finding("helo", title, Status.UNKNOWN, f"Could not check: {answer.error}.")
    names = [ptr.lower().rstrip(".") for ptr in answer.records]
    if name in names:
        return None
    now = f"points to {', '.join(names)}" if names else "has no PTR record"
    message = (
        f"{name} resolves to {address}, but the reverse DNS of {address} {now}: receivers "
        "check that the greeting's name and address match (forward-confirmed reverse DNS) "
        "and distrust mail when they do not. Ask whoever runs that address (the hosting "
        "provider) to set its PTR record as below."
    )
    record = Record(reverse, "PTR", f"{name}.")
    return Finding("helo", title, Status.PROBLEM, message, record, tuple(answer.records))
