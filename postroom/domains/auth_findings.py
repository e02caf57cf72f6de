"""The DKIM and DMARC findings of one domain, and whether its mail aligns with DMARC."""

from __future__ import annotations

from dataclasses import dataclass

from postroom.core.dns import DnsAnswer, Lookup
from postroom.dkim.keys import record_compare
from postroom.dkim.models import CheckResult
from postroom.domains.findings import Finding, Record, Status
from postroom.domains.sending import DEFAULT_SELECTOR, PostroomKey, SendingSetup
from postroom.domains.spf import LookupFunction
from postroom.domains.tag_records import (
    DmarcPolicy,
    dkim_key_problem,
    dmarc_parse,
    dmarc_records,
    is_aligned,
    organizational_domain,
)


@dataclass(frozen=True)
class DkimVerdict:
    """Will mail carry a DKIM signature with d= this domain that verifies: True, False or
    None (not known)."""

    passes: bool | None
    findings: tuple[Finding, ...]


def _key_finding(lookup: LookupFunction, key: PostroomKey) -> tuple[Finding, bool | None]:
    title = f"DKIM {key.selector} (Postroom's key)"
    record = Record(key.record_name, "TXT", key.record_value)
    answer = lookup(key.record_name, "TXT")
    if answer.lookup is Lookup.FAILED:
        return Finding("dkim", title, Status.UNKNOWN, f"Could not check: {answer.error}."), None
    result = record_compare(answer.records, algorithm=key.algorithm, public_key=key.public_key)
    if result is CheckResult.OK and key.is_signing:
        message = f"Postroom signs with this key and {key.record_name} publishes it."
        return Finding("dkim", title, Status.OK, message, found=answer.records), True
    if result is CheckResult.OK:
        message = (
            f"{key.record_name} publishes this key, but Postroom does not sign with it yet: "
            "start signing in Company → DKIM."
        )
        return Finding("dkim", title, Status.WARNING, message, found=answer.records), False
    wrong = {
        CheckResult.MISSING: f"No DKIM key is published at {key.record_name}",
        CheckResult.NOT_DKIM: f"The TXT record at {key.record_name} is not a DKIM key",
        CheckResult.SEVERAL: f"{key.record_name} has more than one DKIM record",
        CheckResult.WRONG_TYPE: f"The record at {key.record_name} is for another key type",
        CheckResult.REVOKED: f"The record at {key.record_name} has an empty p= (revoked)",
        CheckResult.MISMATCH: f"The record at {key.record_name} holds another public key",
    }[result]
    message = (
        f"{wrong}, so receivers cannot verify Postroom's signature"
        f"{' and DKIM fails' if key.is_signing else ''}. Publish the record below."
    )
    return Finding("dkim", title, Status.PROBLEM, message, record, answer.records), False


def _selector_finding(
    lookup: LookupFunction, domain: str, selector: str, setup: SendingSetup
) -> tuple[Finding, bool | None]:
    name = f"{selector}._domainkey.{domain}"
    title = f"DKIM {selector}"
    answer = lookup(name, "TXT")
    if answer.lookup is Lookup.FAILED:
        return Finding("dkim", title, Status.UNKNOWN, f"Could not check: {answer.error}."), None
    keys = [text for text in answer.records if "p=" in text or "v=DKIM1" in text]
    if not keys:
        return _missing_selector(domain, selector, setup), False
    problem = dkim_key_problem(keys[0])
    if problem:
        message = (
            f"The record at {name} is not a valid DKIM key: {problem}. Receivers cannot "
            "verify signatures made with this selector, so DKIM fails."
        )
        return Finding("dkim", title, Status.PROBLEM, message, found=answer.records), False
    message = f"{name} publishes a valid DKIM key."
    return Finding("dkim", title, Status.OK, message, found=answer.records), True


def _missing_selector(domain: str, selector: str, setup: SendingSetup) -> Finding:
    name = f"{selector}._domainkey.{domain}"
    provider = setup.provider
    record = None
    if provider is not None and provider.name == "Microsoft 365":
        # The CNAME target names the tenant, which only the Defender portal shows.
        dashed = domain.replace(".", "-")
        target = f"{selector}-{dashed}._domainkey.<your tenant>.onmicrosoft.com"
        record = Record(name, "CNAME", target)
    if provider is not None and provider.dkim_how:
        how = f"To sign with {provider.name}, {provider.dkim_how}."
    else:
        how = "Create a DKIM key for this domain in Company → DKIM, so Postroom signs its mail."
    message = (
        f"No DKIM key is published at {name}, so mail from {domain} carries no signature "
        f"receivers can verify. {how}"
    )
    return Finding("dkim", f"DKIM {selector}", Status.PROBLEM, message, record)


def dkim_verdict(lookup: LookupFunction, domain: str, setup: SendingSetup) -> DkimVerdict:
    """Postroom's own keys for the domain when it has any; otherwise the provider's selectors,
    or "default"."""
    results: list[tuple[Finding, bool | None]]
    keys = setup.keys.get(domain, ())
    if keys:
        results = [_key_finding(lookup, key) for key in keys]
    else:
        provider = setup.provider
        selectors = (provider.dkim_selectors if provider else ()) or (DEFAULT_SELECTOR,)
        results = [_selector_finding(lookup, domain, sel, setup) for sel in selectors]
    passes = [verdict for _, verdict in results]
    verdict = True if True in passes else (None if None in passes else False)
    return DkimVerdict(verdict, tuple(finding for finding, _ in results))


@dataclass(frozen=True)
class DmarcVerdict:
    policy: DmarcPolicy | None  # None: no usable record (or not known)
    is_known: bool
    findings: tuple[Finding, ...]


def _dmarc_answer(lookup: LookupFunction, domain: str) -> tuple[str, DnsAnswer, list[str]]:
    """RFC 7489 §6.6.3: the domain's own record, else its organizational domain's."""
    name = f"_dmarc.{domain}"
    answer = lookup(name, "TXT")
    records = dmarc_records(answer.records)
    organizational = organizational_domain(domain)
    if answer.lookup is not Lookup.FAILED and not records and organizational != domain:
        name = f"_dmarc.{organizational}"
        answer = lookup(name, "TXT")
        records = dmarc_records(answer.records)
    return name, answer, records


def dmarc_verdict(lookup: LookupFunction, domain: str, *, reports_to: str) -> DmarcVerdict:
    name, answer, records = _dmarc_answer(lookup, domain)
    title = "DMARC"
    if answer.lookup is Lookup.FAILED:
        finding = Finding("dmarc", title, Status.UNKNOWN, f"Could not check: {answer.error}.")
        return DmarcVerdict(None, False, (finding,))
    if not records:
        value = f"v=DMARC1; p=none; rua=mailto:{reports_to}"
        message = (
            f"{domain} has no DMARC record. Gmail, Yahoo and Outlook.com require one from "
            "senders of bulk mail, and without it they decide alone what to do with mail that "
            "fails SPF or DKIM. Publish the record below (start with p=none; once the reports "
            "show only your own mail, move to p=quarantine)."
        )
        record = Record(f"_dmarc.{domain}", "TXT", value)
        return DmarcVerdict(None, True, (Finding("dmarc", title, Status.PROBLEM, message, record),))
    found = tuple(records)
    if len(records) > 1:
        message = (
            f"{name} has {len(records)} DMARC records; receivers ignore DMARC when there is "
            "more than one (RFC 7489 §6.6.3). Keep one."
        )
        return DmarcVerdict(
            None, True, (Finding("dmarc", title, Status.PROBLEM, message, None, found),)
        )
    policy = dmarc_parse(records[0])
    applied = policy.policy if name == f"_dmarc.{domain}" else policy.subdomain_policy
    return DmarcVerdict(policy, True, _dmarc_findings(name, applied, policy, found, reports_to))


def _dmarc_findings(
    name: str, applied: str, policy: DmarcPolicy, found: tuple[str, ...], reports_to: str
) -> tuple[Finding, ...]:
    title = "DMARC"
    if not applied:
        message = (
            f"The DMARC record at {name} has no valid policy (p=none, quarantine or reject): "
            "receivers ignore it. Add one."
        )
        return (Finding("dmarc", title, Status.PROBLEM, message, found=found),)
    if applied == "none":
        message = (
            f"The DMARC policy at {name} is p=none: monitoring only. Receivers send reports "
            "but deliver mail that fails as if there were no DMARC, so anyone can still send "
            "as this domain. Once the reports show only your own mail, move to p=quarantine."
        )
        dmarc = Finding("dmarc", title, Status.WARNING, message, found=found)
    else:
        message = f"{name} publishes a DMARC record with the policy p={applied}."
        dmarc = Finding("dmarc", title, Status.OK, message, found=found)
    if policy.rua:
        reports = Finding(
            "dmarc_reports", "DMARC reports", Status.OK, f"Reports go to {policy.rua}."
        )
    else:
        message = (
            f"The DMARC record at {name} asks for no reports (no rua=): you will not learn "
            f"who sends as this domain or whose mail fails. Add rua=mailto:{reports_to}."
        )
        reports = Finding("dmarc_reports", "DMARC reports", Status.WARNING, message)
    return (dmarc, reports)


def alignment_finding(
    domain: str,
    *,
    envelope_domain: str,
    spf_passes: bool | None,
    dkim_passes: bool | None,
    policy: DmarcPolicy | None,
) -> tuple[Finding, bool | None]:
    """RFC 7489 §4.2: DMARC passes when SPF or DKIM passes for an identifier aligned with From.
    DKIM's d= is the From domain whenever it passes here (Postroom and the providers above sign
    with it), so only SPF's envelope domain can stand apart."""
    is_strict = policy.is_spf_strict if policy else False
    spf_aligned = is_aligned(envelope_domain, domain, is_strict=is_strict)
    spf_ok = spf_passes and spf_aligned
    title = "DMARC alignment"
    if spf_ok or dkim_passes:
        parts = [name for name, ok in (("SPF", spf_ok), ("DKIM", dkim_passes)) if ok]
        message = f"Postroom's mail passes {' and '.join(parts)} aligned with From ({domain})."
        if policy is None:
            message += " DMARC passes once the domain publishes a DMARC record."
        return Finding("alignment", title, Status.OK, message), True
    if spf_passes is None or dkim_passes is None:
        message = "Could not check: SPF or DKIM could not be checked (see above)."
        return Finding("alignment", title, Status.UNKNOWN, message), None
    why = []
    if spf_passes and not spf_aligned:
        mode = "strict (aspf=s)" if is_strict else "relaxed"
        why.append(
            f"SPF passes for the envelope sender's domain {envelope_domain}, which does not "
            f"align with {domain} under {mode} alignment"
        )
    else:
        why.append("SPF does not pass for the relay")
    why.append("no DKIM signature with d=" + domain + " verifies")
    message = (
        f"Mail from {domain} will fail DMARC: {'; '.join(why)}. Fix SPF or DKIM above (DKIM "
        "is the sturdier of the two: it survives forwarding)."
    )
    return Finding("alignment", title, Status.PROBLEM, message), False
