"""Create DKIM keys, check their DNS records, start and retire signing with them.

A private key arrives here only from the generator and is encrypted at once; it is never
logged, never put in an exception or the audit log, and never returned. Checking is not an
administrator's change (it changes what is known, not what is configured) and is not audited.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.utils import timezone

from postroom.audit.services import audit_record
from postroom.core.dns import Lookup, dns_lookup
from postroom.core.errors import NotFoundError, ValidationError
from postroom.core.secrets import secret_encrypt
from postroom.dkim.keys import SELECTOR_PATTERN, key_pair_generate, record_compare
from postroom.dkim.models import Algorithm, CheckResult, DkimKey, KeyState

logger = logging.getLogger(__name__)

KEY_CREATED = "dkim.key.created"
KEY_SIGNING = "dkim.key.signing"
KEY_RETIRED = "dkim.key.retired"
AUDIT_SUBJECT = "DKIM"

Actor = AbstractBaseUser | AnonymousUser | None

_DOMAIN_PATTERN = SELECTOR_PATTERN  # a host name has the same shape as a selector


def domain_clean(domain: str) -> str:
    """The domain in the ASCII (A-label) form DNS and the d= tag use."""
    text = domain.strip().rstrip(".").lower()
    try:
        text = text.encode("idna").decode("ascii") if not text.isascii() else text
    except UnicodeError:
        text = ""
    if "." not in text or not _DOMAIN_PATTERN.match(text):
        raise ValidationError(
            f"“{domain}” is not a domain name: enter the part after the @ of your addresses, "
            "for example example.com.",
            field="domain",
        )
    return text


def selector_default(*, domain: str, algorithm: Algorithm) -> str:
    """postroom<year><month>, with "ed" for Ed25519 and "-2", "-3"… when that one is taken."""
    base = f"postroom{timezone.now():%Y%m}" + (
        "ed" if algorithm is Algorithm.ED25519_SHA256 else ""
    )
    taken = set(DkimKey.objects.filter(domain=domain).values_list("selector", flat=True))
    selector, number = base, 1
    while selector in taken:
        number += 1
        selector = f"{base}-{number}"
    return selector


def _selector_clean(selector: str, *, domain: str) -> str:
    text = selector.strip().lower()
    if not SELECTOR_PATTERN.match(text) or len(text) > 63:
        raise ValidationError(
            f"“{selector}” cannot be a selector: use letters, digits and hyphens (for example "
            "postroom2026), at most 63 characters.",
            field="selector",
        )
    if DkimKey.objects.filter(domain=domain, selector=text).exists():
        raise ValidationError(
            f"{domain} already has a key with the selector {text}: choose another selector, "
            "or leave it blank for a new one.",
            field="selector",
        )
    return text


def dkim_key_create(
    *, actor: Actor, domain: str, algorithm: str = Algorithm.RSA_SHA256, selector: str = ""
) -> DkimKey:
    """Generate a key pair for `domain`; it waits for its DNS record before it may sign."""
    domain = domain_clean(domain)
    if algorithm not in Algorithm.values:
        raise ValidationError(
            "Choose RSA 2048 or Ed25519 as the key's algorithm.", field="algorithm"
        )
    chosen = Algorithm(algorithm)
    selector = (
        _selector_clean(selector, domain=domain)
        if selector.strip()
        else selector_default(domain=domain, algorithm=chosen)
    )
    pair = key_pair_generate(chosen)
    with transaction.atomic():
        key = DkimKey.objects.create(
            domain=domain,
            selector=selector,
            algorithm=chosen,
            private_key_encrypted=secret_encrypt(pair.private),
            public_key=pair.public,
        )
        audit_record(
            actor=actor,
            action=KEY_CREATED,
            subject=f"{AUDIT_SUBJECT} {domain}",
            changes={
                "Selector": {"from": None, "to": selector},
                "Algorithm": {"from": None, "to": chosen.label},
                "Private key": {"changed": True, "secret": "set"},
            },
        )
    logger.info("DKIM key %s created (%s)", key.record_name, chosen.value)
    return key


def dkim_key_get(key_id: int) -> DkimKey:
    try:
        return DkimKey.objects.get(pk=key_id)
    except DkimKey.DoesNotExist:
        raise NotFoundError("This DKIM key does not exist (any more).") from None


def check_message(key: DkimKey) -> str:
    """What the last check found, in words an administrator can act on."""
    name = key.record_name
    result = CheckResult(key.check_result)
    kind = Algorithm(key.algorithm).key_type
    messages: dict[CheckResult, str] = {
        CheckResult.NOT_CHECKED: "Not checked yet: publish the record, then click Check DNS.",
        CheckResult.OK: f"The TXT record at {name} is published and matches this key.",
        CheckResult.MISSING: (
            f"No TXT record at {name} yet: publish the record above; DNS changes can take up "
            "to an hour."
        ),
        CheckResult.NOT_DKIM: (
            f"There is a TXT record at {name}, but it is not a DKIM key (no v=DKIM1 and p=): "
            "replace it with the record above."
        ),
        CheckResult.SEVERAL: (
            f"There is more than one DKIM record at {name}: receivers may pick any of them. "
            "Keep only the record above."
        ),
        CheckResult.WRONG_TYPE: (
            f"The record at {name} is for another key type (this key needs k={kind}): "
            "replace it with the record above."
        ),
        CheckResult.REVOKED: (
            f"The record at {name} has an empty p=, which revokes the key: replace it with "
            "the record above."
        ),
        CheckResult.MISMATCH: (
            f"The record at {name} holds another public key (p=): replace it with the record "
            "above, copied whole (the Copy button copies it exactly)."
        ),
        CheckResult.FAILED: (
            f"The DNS did not answer for {name}, so nothing is known yet"
            f"{': ' + key.check_detail if key.check_detail else ''}. Try Check DNS again in a "
            "minute."
        ),
    }
    return messages[result]


def dkim_key_check(*, key: DkimKey) -> DkimKey:
    """Look the key's record up in DNS and note what was found (and when).

    A waiting key whose record matches becomes checked; a checked key whose record no longer
    matches waits again. A signing key keeps signing (a DNS hiccup must not stop it); the
    page shows what the check found."""
    answer = dns_lookup(key.record_name, "TXT")
    if answer.lookup is Lookup.FAILED:
        result, detail = CheckResult.FAILED, answer.error
    else:
        result = record_compare(
            answer.records, algorithm=Algorithm(key.algorithm), public_key=key.public_key
        )
        detail = ""
    key.check_result = result
    key.check_detail = detail
    key.checked_at = timezone.now()
    if key.state == KeyState.WAITING and result is CheckResult.OK:
        key.state = KeyState.CHECKED
    elif key.state == KeyState.CHECKED and result is not CheckResult.OK:
        key.state = KeyState.WAITING
    key.save(update_fields=["check_result", "check_detail", "checked_at", "state"])
    return key


def dkim_key_start_signing(*, actor: Actor, key: DkimKey) -> DkimKey:
    """Sign the domain's mail with this key from now on, after a fresh DNS check passes;
    the key of the same domain and algorithm that signed until now is retired."""
    if key.state == KeyState.RETIRED:
        raise ValidationError(
            f"The key {key.selector} is retired and cannot sign again: create a new key."
        )
    if key.state == KeyState.SIGNING:
        return key
    dkim_key_check(key=key)
    if key.check_result != CheckResult.OK:
        raise ValidationError(f"Not signing yet. {check_message(key)}")
    with transaction.atomic():
        now = timezone.now()
        previous = list(
            DkimKey.objects.select_for_update()
            .filter(domain=key.domain, algorithm=key.algorithm, state=KeyState.SIGNING)
            .exclude(pk=key.pk)
        )
        for old in previous:
            old.state, old.retired_at = KeyState.RETIRED, now
            old.save(update_fields=["state", "retired_at"])
        key.state, key.signing_since = KeyState.SIGNING, now
        key.save(update_fields=["state", "signing_since"])
        changes: dict[str, Any] = {"Signing with": {"from": None, "to": key.selector}}
        if previous:
            changes["Signing with"]["from"] = ", ".join(old.selector for old in previous)
        audit_record(
            actor=actor,
            action=KEY_SIGNING,
            subject=f"{AUDIT_SUBJECT} {key.domain}",
            changes=changes,
        )
    logger.info("DKIM key %s signs now", key.record_name)
    return key


def dkim_key_retire(*, actor: Actor, key: DkimKey) -> DkimKey:
    """Stop using the key for good. Leave its DNS record published for a few days: mail
    signed with it may still be checked by receivers."""
    if key.state == KeyState.RETIRED:
        return key
    with transaction.atomic():
        was = KeyState(key.state).label
        key.state, key.retired_at = KeyState.RETIRED, timezone.now()
        key.save(update_fields=["state", "retired_at"])
        audit_record(
            actor=actor,
            action=KEY_RETIRED,
            subject=f"{AUDIT_SUBJECT} {key.domain}",
            changes={f"Key {key.selector}": {"from": was, "to": KeyState.RETIRED.label}},
        )
    logger.info("DKIM key %s retired", key.record_name)
    return key
