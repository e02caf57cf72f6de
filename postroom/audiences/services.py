"""Create, change and delete lists and segments; add and remove list members.

Every change writes an audit entry in its transaction. `actor` None is Postroom itself (an
API key acting for the install), as for contacts. Who may call these (marketers and
administrators) is the pages' and the API scope's to check.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from postroom.accounts.models import User
from postroom.audiences.models import ContactList, ListImport, ListMember, Segment, SegmentMatch
from postroom.audiences.rules import Rule, rules_clean, rules_text
from postroom.audit.services import audit_record
from postroom.contacts.fields import contact_email_key
from postroom.contacts.models import Contact, ImportJob
from postroom.contacts.selectors import contact_list_by_ids
from postroom.core.errors import ValidationError

NAME_MAX_LENGTH = 200
DESCRIPTION_MAX_LENGTH = 2000
# Members are looked up and inserted this many at a time: under SQLite's old limit of 999
# bound variables per statement.
MEMBER_CHUNK = 500
_LINE_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _name_clean(value: str, *, what: str) -> tuple[str, str]:
    """The name with its blanks collapsed, and its key (lower case)."""
    name = " ".join(value.split())
    if not name:
        raise ValidationError(f"Enter the {what}'s name.", field="name")
    if _LINE_CONTROL.search(value.strip()):
        raise ValidationError("The name contains a control character; remove it.", field="name")
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationError(
            f"The name is {len(name)} characters long; use at most {NAME_MAX_LENGTH}.",
            field="name",
        )
    return name, name.lower()


def _description_clean(value: str) -> str:
    text = value.strip()
    if len(text) > DESCRIPTION_MAX_LENGTH:
        raise ValidationError(
            f"The description is {len(text)} characters long; use at most "
            f"{DESCRIPTION_MAX_LENGTH}.",
            field="description",
        )
    return text


def _name_taken(what: str, name: str) -> ValidationError:
    return ValidationError(
        f"There is already a {what} called {name!r} (compared without regard to case).",
        field="name",
    )


def _changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {
        label: {"from": before[label], "to": value}
        for label, value in after.items()
        if before[label] != value
    }


# Lists.


def list_create(*, actor: User | None, name: str, description: str = "") -> ContactList:
    name, key = _name_clean(name, what="list")
    contact_list = ContactList(
        name=name, name_key=key, description=_description_clean(description), created_by=actor
    )
    try:
        with transaction.atomic():
            contact_list.save()
            audit_record(
                actor=actor,
                action="list.created",
                subject=f"list {name}",
                changes={"Name": name, "Description": contact_list.description},
            )
    except IntegrityError:
        raise _name_taken("list", name) from None
    return contact_list


def list_update(
    *,
    actor: User | None,
    contact_list: ContactList,
    name: str | None = None,
    description: str | None = None,
) -> ContactList:
    """Change the name and/or the description (None leaves one as it is)."""
    before = {"Name": contact_list.name, "Description": contact_list.description}
    if name is not None:
        contact_list.name, contact_list.name_key = _name_clean(name, what="list")
    if description is not None:
        contact_list.description = _description_clean(description)
    changes = _changes(before, {"Name": contact_list.name, "Description": contact_list.description})
    if not changes:
        return contact_list
    try:
        with transaction.atomic():
            contact_list.save()
            audit_record(
                actor=actor,
                action="list.updated",
                subject=f"list {contact_list.name}",
                changes=changes,
            )
    except IntegrityError:
        raise _name_taken("list", contact_list.name) from None
    return contact_list


def list_delete(*, actor: User | None, contact_list: ContactList) -> int:
    """Delete the list (its contacts stay); return how many members it had."""
    with transaction.atomic():
        count = contact_list.memberships.count()
        audit_record(
            actor=actor,
            action="list.deleted",
            subject=f"list {contact_list.name}",
            changes={"Name": contact_list.name, "Members": count},
        )
        contact_list.delete()
    return count


def list_members_add(
    *, actor: User | None, contact_list: ContactList, contact_ids: Iterable[int], how: str = ""
) -> int:
    """Add contacts (by id; ids of no contact are ignored) to the list; return how many
    joined (members already in it count once)."""
    with transaction.atomic():
        added = list_members_insert(contact_list, list(dict.fromkeys(contact_ids)))
        if added:
            audit_record(
                actor=actor,
                action="list.members_added",
                subject=f"list {contact_list.name}",
                changes={"Added": added, **({"How": how} if how else {})},
            )
            ContactList.objects.filter(pk=contact_list.pk).update(updated_at=timezone.now())
    return added


def list_members_insert(contact_list: ContactList, contact_ids: Sequence[int]) -> int:
    """Insert the memberships that are new; the caller holds the transaction."""
    now = timezone.now()
    added = 0
    for start in range(0, len(contact_ids), MEMBER_CHUNK):
        chunk = contact_ids[start : start + MEMBER_CHUNK]
        existing = set(Contact.objects.filter(pk__in=chunk).values_list("pk", flat=True))
        already = set(
            ListMember.objects.filter(contact_list=contact_list, contact_id__in=chunk).values_list(
                "contact_id", flat=True
            )
        )
        new = [pk for pk in chunk if pk in existing and pk not in already]
        # ignore_conflicts: another request adding the same contact meanwhile is no error.
        ListMember.objects.bulk_create(
            [ListMember(contact_list=contact_list, contact_id=pk, added_at=now) for pk in new],
            ignore_conflicts=True,
        )
        added += len(new)
    return added


@dataclass(frozen=True)
class AddressesAdded:
    added: int
    unknown: list[str]  # addresses of no contact, as typed


def list_members_add_by_address(
    *, actor: User | None, contact_list: ContactList, addresses: Iterable[str]
) -> AddressesAdded:
    """Add the contacts with these addresses (without regard to case); say which addresses
    are no contact's (add those as contacts first)."""
    typed = [address.strip() for address in addresses if address.strip()]
    keys = {contact_email_key(address): address for address in typed}
    found: dict[str, int] = {}
    key_list = list(keys)
    for start in range(0, len(key_list), MEMBER_CHUNK):
        rows = Contact.objects.filter(email_key__in=key_list[start : start + MEMBER_CHUNK])
        found.update(rows.values_list("email_key", "pk"))
    added = list_members_add(
        actor=actor, contact_list=contact_list, contact_ids=found.values(), how="by address"
    )
    return AddressesAdded(added, [address for key, address in keys.items() if key not in found])


def list_members_remove(
    *, actor: User | None, contact_list: ContactList, contact_ids: Iterable[int]
) -> int:
    """Remove contacts from the list (they stay contacts); return how many were members."""
    ids = list(dict.fromkeys(contact_ids))
    with transaction.atomic():
        removed = 0
        for start in range(0, len(ids), MEMBER_CHUNK):
            removed += ListMember.objects.filter(
                contact_list=contact_list, contact_id__in=ids[start : start + MEMBER_CHUNK]
            ).delete()[0]
        if removed:
            names = [contact.email for contact in contact_list_by_ids(ids=ids[:5])]
            audit_record(
                actor=actor,
                action="list.members_removed",
                subject=f"list {contact_list.name}",
                changes={"Removed": removed, "For example": ", ".join(names)},
            )
            ContactList.objects.filter(pk=contact_list.pk).update(updated_at=timezone.now())
    return removed


def list_import_attach(*, contact_list: ContactList, job: ImportJob) -> ListImport:
    """Make a CSV import (just uploaded) an import into the list: every contact it creates
    or merges joins the list, in the import's transaction (postroom.audiences.list_imports)."""
    return ListImport.objects.create(contact_list=contact_list, import_job=job)


# Segments.


def _match_clean(match: str) -> str:
    if match not in SegmentMatch.values:
        raise ValidationError(
            "Choose whether all or any of the conditions must hold.", field="match"
        )
    return match


def segment_create(
    *,
    actor: User | None,
    name: str,
    rules: Any,
    match: str = SegmentMatch.ALL,
    description: str = "",
) -> Segment:
    """`rules` as data ([{"field", "op", "value"}, …]), checked by rules_clean."""
    name, key = _name_clean(name, what="segment")
    checked = rules_clean(rules)
    segment = Segment(
        name=name,
        name_key=key,
        description=_description_clean(description),
        match=_match_clean(match),
        rules=[rule.as_json() for rule in checked],
        created_by=actor,
    )
    try:
        with transaction.atomic():
            segment.save()
            audit_record(
                actor=actor,
                action="segment.created",
                subject=f"segment {name}",
                changes={"Name": name, "Conditions": rules_text(checked, match=segment.match)},
            )
    except IntegrityError:
        raise _name_taken("segment", name) from None
    return segment


def segment_update(
    *,
    actor: User | None,
    segment: Segment,
    name: str | None = None,
    rules: Any = None,
    match: str | None = None,
    description: str | None = None,
) -> Segment:
    """Change what is given (None leaves a field as it is)."""
    before = _segment_shown(segment)
    if name is not None:
        segment.name, segment.name_key = _name_clean(name, what="segment")
    if description is not None:
        segment.description = _description_clean(description)
    if match is not None:
        segment.match = _match_clean(match)
    if rules is not None:
        segment.rules = [rule.as_json() for rule in rules_clean(rules)]
    changes = _changes(before, _segment_shown(segment))
    if not changes:
        return segment
    try:
        with transaction.atomic():
            segment.save()
            audit_record(
                actor=actor,
                action="segment.updated",
                subject=f"segment {segment.name}",
                changes=changes,
            )
    except IntegrityError:
        raise _name_taken("segment", segment.name) from None
    return segment


def _segment_shown(segment: Segment) -> dict[str, Any]:
    rules: list[Rule] = rules_clean(segment.rules) if segment.rules else []
    return {
        "Name": segment.name,
        "Description": segment.description,
        "Conditions": rules_text(rules, match=segment.match),
    }


def segment_delete(*, actor: User | None, segment: Segment) -> None:
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="segment.deleted",
            subject=f"segment {segment.name}",
            changes=_segment_shown(segment),
        )
        segment.delete()
