"""The tag=value records of DKIM keys (RFC 6376 §3.6.1) and DMARC (RFC 7489 §6.3), and DMARC's
identifier alignment (§3.1). No DNS here: the check feeds these what it looked up.

The organizational domain (§3.2) comes from the Public Suffix List as `publicsuffixlist`
bundles it: no download at run time, a newer list with each release of the package.
"""

from __future__ import annotations

import base64
import binascii
import functools
from dataclasses import dataclass

from publicsuffixlist import PublicSuffixList

# One parser of RFC 6376 §3.2 tag lists: the DKIM app's. DMARC records use the same syntax
# (RFC 7489 §6.4).
from postroom.dkim.keys import record_tags as tag_list


def dkim_key_problem(text: str) -> str:
    """What makes this TXT record unusable as a DKIM key, or "" when it is usable."""
    tags = tag_list(text)
    version = tags.get("v")
    if version is not None and version != "DKIM1":
        return f'its version is "v={version}", not "v=DKIM1"'
    if "v" in tags and not text.lstrip().startswith("v="):
        return '"v=DKIM1" must come first in the record'
    if "p" not in tags:
        return 'it has no public key ("p=" is missing)'
    if not tags["p"]:
        return 'its public key is empty ("p=" with no value means the key was revoked)'
    try:
        base64.b64decode(tags["p"], validate=True)
    except (binascii.Error, ValueError):
        return 'its public key ("p=") is not valid base64'
    key_type = tags.get("k", "rsa")
    if key_type not in {"rsa", "ed25519"}:
        return f'its key type "k={key_type}" is not one receivers know (rsa or ed25519)'
    return ""


def dkim_public_key(text: str) -> str:
    return tag_list(text).get("p", "")


@dataclass(frozen=True)
class DmarcPolicy:
    policy: str  # "none", "quarantine", "reject", or "" when p= is missing or unknown
    subdomain_policy: str
    is_dkim_strict: bool
    is_spf_strict: bool
    rua: str
    percent: int


def dmarc_records(texts: tuple[str, ...] | list[str]) -> list[str]:
    """RFC 7489 §6.6.3: records that start with "v=DMARC1"; other TXT strings are ignored."""
    return [text for text in texts if tag_list(text).get("v") == "DMARC1"]


def dmarc_parse(text: str) -> DmarcPolicy:
    tags = tag_list(text)
    policy = tags.get("p", "").lower()
    policy = policy if policy in {"none", "quarantine", "reject"} else ""
    subdomain = tags.get("sp", "").lower() or policy
    try:
        percent = int(tags.get("pct", "100"))
    except ValueError:
        percent = 100
    return DmarcPolicy(
        policy=policy,
        subdomain_policy=subdomain,
        is_dkim_strict=tags.get("adkim", "r").lower() == "s",
        is_spf_strict=tags.get("aspf", "r").lower() == "s",
        rua=tags.get("rua", ""),
        percent=percent,
    )


@functools.cache
def _suffix_list() -> PublicSuffixList:
    return PublicSuffixList()  # parses the bundled list once (about 10,000 rules)


def organizational_domain(domain: str) -> str:
    """RFC 7489 §3.2: the public suffix plus one label ("mail.example.co.uk" → "example.co.uk")."""
    domain = domain.lower().rstrip(".")
    return _suffix_list().privatesuffix(domain) or domain


def is_aligned(identifier: str, from_domain: str, *, is_strict: bool) -> bool:
    """RFC 7489 §3.1: strict is the same name; relaxed, the same organizational domain."""
    identifier, from_domain = identifier.lower().rstrip("."), from_domain.lower().rstrip(".")
    if is_strict:
        return identifier == from_domain
    return organizational_domain(identifier) == organizational_domain(from_domain)
