"""The CSV import's plan, pure: what the checked rows change against the contacts that
exist. A new address creates a contact; a known one updates the fields its row gives (never
erasing with an empty cell) and adds its tags; an identical one is left alone. Consent
follows the contact services' rules (postroom.contacts.services._consent_apply).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from postroom.contacts import fields
from postroom.contacts.importing import FIELD_NAMES, ParsedRow

# The contact fields an import writes, with their value for a new contact.
CONTACT_DEFAULTS: dict[str, Any] = {
    "first_name": "",
    "last_name": "",
    "phone": "",
    "notes": "",
    "organization": "",  # the company's name; "" for none
    "marketing_consent": False,
    "marketing_consent_at": None,
    "marketing_consent_source": "",
    "is_active": True,
}
PREVIEW_ROWS = 20


@dataclass(slots=True)
class ExistingContact:
    """What the plan needs of a contact in the database."""

    id: int
    email: str
    values: dict[str, Any]  # CONTACT_DEFAULTS' fields
    tags: set[str]


@dataclass(slots=True)
class ContactUpdate:
    existing: ExistingContact
    changes: dict[str, Any]  # field -> new value
    tags_added: list[str]


@dataclass
class ImportPlan:
    creates: list[tuple[ParsedRow, dict[str, Any]]] = field(default_factory=list)
    updates: list[ContactUpdate] = field(default_factory=list)
    unchanged: int = 0
    preview: list[dict[str, Any]] = field(default_factory=list)

    def organization_names(self) -> dict[str, str]:
        """Every company name the import sets, by its key (to find or create them)."""
        names: dict[str, str] = {}
        for _, values in self.creates:
            if values["organization"]:
                names[fields.organization_name_key(values["organization"])] = values["organization"]
        for update in self.updates:
            if update.changes.get("organization"):
                name = update.changes["organization"]
                names[fields.organization_name_key(name)] = name
        return names

    def tag_names(self) -> set[str]:
        names = {tag for parsed, _ in self.creates for tag in parsed.tags}
        names.update(tag for update in self.updates for tag in update.tags_added)
        return names


def _consent_merge(
    current: dict[str, Any], given: dict[str, Any], *, is_new: bool, now: datetime, source: str
) -> dict[str, Any]:
    """The consent fields after applying a row, by the rules of the contact services: a
    changed decision is dated now and sourced to this import unless the row says otherwise;
    the same decision keeps its date and source unless the row gives new ones. A "no" for a
    new contact is not dated: it means never asked, not withdrawn today."""
    if "marketing_consent" not in given:
        return {}
    consent = given["marketing_consent"]
    at = given.get("marketing_consent_at")
    given_source = given.get("marketing_consent_source")
    if consent != current["marketing_consent"] and not (is_new and not consent):
        return {
            "marketing_consent": consent,
            "marketing_consent_at": at or now,
            "marketing_consent_source": given_source or source,
        }
    result: dict[str, Any] = {"marketing_consent": consent}
    if at is not None:
        result["marketing_consent_at"] = at
    if given_source:
        result["marketing_consent_source"] = given_source
    return result


def _applied(
    current: dict[str, Any], parsed: ParsedRow, *, is_new: bool, now: datetime, source: str
) -> dict[str, Any]:
    given = parsed.values
    values = dict(current)
    for name, value in given.items():
        if not name.startswith("marketing_consent"):
            values[name] = value
    values.update(_consent_merge(current, given, is_new=is_new, now=now, source=source))
    return values


def _same(name: str, old: Any, new: Any) -> bool:
    if name == "organization":
        return fields.organization_name_key(old) == fields.organization_name_key(new)
    return bool(old == new)


def _preview_entry(
    parsed: ParsedRow,
    values: dict[str, Any],
    *,
    action: str,
    changed: Iterable[str],
    tags: list[str],
    email: str,
) -> dict[str, Any]:
    at = values["marketing_consent_at"]
    return {
        "row": parsed.row,
        "action": action,
        "email": email,
        "first_name": values["first_name"],
        "last_name": values["last_name"],
        "phone": values["phone"],
        "organization": values["organization"],
        "tags": tags,
        "marketing_consent": values["marketing_consent"],
        "marketing_consent_at": at.isoformat(timespec="minutes") if at else "",
        "is_active": values["is_active"],
        "changed": [FIELD_NAMES.get(name, name) for name in changed],
    }


def plan_make(
    merged: dict[str, ParsedRow],
    existing: dict[str, ExistingContact],
    *,
    now: datetime,
    source: str,
) -> ImportPlan:
    """Decide, for each merged row, whether it creates, updates or leaves a contact."""
    plan = ImportPlan()
    for key, parsed in merged.items():
        contact = existing.get(key)
        if contact is None:
            values = _applied(CONTACT_DEFAULTS, parsed, is_new=True, now=now, source=source)
            plan.creates.append((parsed, values))
            if len(plan.preview) < PREVIEW_ROWS:
                plan.preview.append(
                    _preview_entry(
                        parsed,
                        values,
                        action="new",
                        changed=(),
                        tags=parsed.tags,
                        email=parsed.email,
                    )
                )
            continue
        values = _applied(contact.values, parsed, is_new=False, now=now, source=source)
        changes = {
            name: value
            for name, value in values.items()
            if not _same(name, contact.values[name], value)
        }
        tags_added = [tag for tag in parsed.tags if tag not in contact.tags]
        if changes or tags_added:
            plan.updates.append(ContactUpdate(contact, changes, tags_added))
            action = "update"
        else:
            plan.unchanged += 1
            action = "unchanged"
        if len(plan.preview) < PREVIEW_ROWS:
            changed = [*changes, *(["tags"] if tags_added else [])]
            plan.preview.append(
                _preview_entry(
                    parsed,
                    values,
                    action=action,
                    changed=changed,
                    tags=sorted(contact.tags | set(tags_added)),
                    email=contact.email,
                )
            )
    return plan
