"""The tagged return path's settings (Company.bounce_address, Company.tag_return_path): checked
and audited here; the outbox's routing reads them when it sends (postroom.outbox.routing)."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import transaction

from postroom.audit.services import audit_record
from postroom.company.models import Company
from postroom.company.selectors import company_get
from postroom.core.errors import ValidationError
from postroom.mail.addresses import normalize_address
from postroom.mail.verp import LOCAL_PART_MAX, SEPARATOR, TAG_DIGITS

RETURN_PATH_UPDATED = "company.return_path.updated"
# "+m" + up to 10 digits of a message number + "-" + the MAC: what a tag adds to the local
# part, which must stay within RFC 5321's 64 octets (§4.5.3.1.1).
TAG_LENGTH = len(SEPARATOR) + 1 + 10 + 1 + TAG_DIGITS
BOUNCE_LOCAL_PART_MAX = LOCAL_PART_MAX - TAG_LENGTH


def bounce_address_clean(value: str, *, is_tagged: bool) -> str:
    """The bounce address as stored: blank, or an ASCII address a tag fits on."""
    value = value.strip()
    if not value:
        if is_tagged:
            raise ValidationError(
                "Enter the bounce address (the bounce mailbox's address, e.g. "
                "bounces@example.com) to tag the return path with.",
                field="bounce_address",
            )
        return ""
    address = normalize_address(
        value, allow_smtputf8=False, label="Bounce address", field="bounce_address"
    )
    if SEPARATOR in address.local_part:
        raise ValidationError(
            f"Bounce address: {address.addr_spec} already has a {SEPARATOR!r} in it; Postroom "
            f"adds its tag after a {SEPARATOR!r}. Use the plain address (bounces@…).",
            field="bounce_address",
        )
    if len(address.local_part) > BOUNCE_LOCAL_PART_MAX:
        raise ValidationError(
            f"Bounce address: the part before the @ has {len(address.local_part)} characters; "
            f"with the tag it must fit in 64 (RFC 5321), so use at most "
            f"{BOUNCE_LOCAL_PART_MAX}.",
            field="bounce_address",
        )
    return address.addr_spec


def return_path_update(
    *,
    actor: AbstractBaseUser | AnonymousUser | None,
    bounce_address: str,
    tag_return_path: bool,
) -> Company:
    """Save the bounce address and the switch; audit what changed."""
    address = bounce_address_clean(bounce_address, is_tagged=tag_return_path)
    with transaction.atomic():
        company = company_get()
        changes = {
            label: {"from": old, "to": new}
            for label, old, new in (
                ("Bounce address", company.bounce_address, address),
                ("Tag the return path", company.tag_return_path, tag_return_path),
            )
            if old != new
        }
        if not changes:
            return company
        company.bounce_address, company.tag_return_path = address, tag_return_path
        if actor is not None and actor.is_authenticated:
            company.updated_by_id = actor.pk
        company.save()
        audit_record(actor=actor, action=RETURN_PATH_UPDATED, subject="Company", changes=changes)
    return company
