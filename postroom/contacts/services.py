"""Create, change and delete contacts and companies.

The field rules live in postroom.contacts.fields; these services add what needs the
database: the address is unique among contacts (without regard to case), a company named
on a contact is found or created by name, and every change writes an audit entry in the
same transaction. The CSV import (postroom.contacts.import_jobs) writes in bulk and
records one audit entry per import instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from postroom.accounts.models import Role, User
from postroom.audit.services import audit_record
from postroom.contacts import fields
from postroom.contacts.models import Contact, Organization, Tag
from postroom.core.errors import PermissionDeniedError, ValidationError

# Who may delete contacts and companies. Every role may view and edit them: staff email
# contacts and marketers import and tidy them. Deleting is kept from marketers because a
# list import or clean-up by mistake would remove people staff work with.
DELETE_ROLES = (Role.ADMINISTRATOR, Role.STAFF)

_LABELS = {
    "first_name": "First name",
    "last_name": "Last name",
    "email": "Email address",
    "phone": "Phone",
    "organization": "Company",
    "tags": "Tags",
    "notes": "Notes",
    "marketing_consent": "Consent to marketing",
    "marketing_consent_at": "Consent date",
    "marketing_consent_source": "Consent source",
    "is_active": "Active",
}
_ORGANIZATION_LABELS = {"name": "Name", "website": "Website", "notes": "Notes"}


def contact_can_delete(user: User | None) -> bool:
    """`None` is Postroom itself (a command, an API key acting for the install)."""
    return user is None or (user.is_active and user.role in DELETE_ROLES)


def consent_default_source(actor: User | None) -> str:
    return f"entered by {actor.get_username()}" if actor is not None else "entered in Postroom"


# Audit: by the audit log's convention (postroom.audit.services), values for a new record,
# {"from", "to"} for a change. Values must be JSON: dates and related rows become text.


def _shown(field: str, value: Any) -> Any:
    if isinstance(value, datetime):
        return timezone.localtime(value).isoformat(timespec="minutes")
    if isinstance(value, Organization):
        return value.name
    if field == "tags":
        return ", ".join(value)
    return value


def _audit_contact(*, actor: User | None, action: str, contact: Contact, changes: dict) -> None:
    audit_record(actor=actor, action=action, subject=f"contact {contact.email}", changes=changes)


def _audit_organization(
    *, actor: User | None, action: str, organization: Organization, changes: dict
) -> None:
    audit_record(
        actor=actor, action=action, subject=f"company {organization.name}", changes=changes
    )


# Companies.


def organization_get_or_create(*, actor: User | None, name: str) -> Organization | None:
    """The company called `name` (without regard to case and blanks), created when missing;
    None for an empty name."""
    name = fields.organization_name_clean(name, field="organization")
    if not name:
        return None
    key = fields.organization_name_key(name)
    existing = Organization.objects.filter(name_key=key).first()
    if existing is not None:
        return existing
    return organization_create(actor=actor, name=name)


def _organization_name_check(name: str, *, exclude_pk: int | None = None) -> str:
    if not name:
        raise ValidationError("Enter the company's name.", field="name")
    others = Organization.objects.filter(name_key=fields.organization_name_key(name))
    if exclude_pk is not None:
        others = others.exclude(pk=exclude_pk)
    if others.exists():
        raise ValidationError(
            f"There is already a company called {name!r} (compared without regard to case).",
            field="name",
        )
    return name


def organization_create(
    *, actor: User | None, name: str, website: str = "", notes: str = ""
) -> Organization:
    name = _organization_name_check(fields.organization_name_clean(name))
    organization = Organization(
        name=name,
        name_key=fields.organization_name_key(name),
        website=fields.organization_website_clean(website),
        notes=fields.contact_notes_clean(notes),
    )
    try:
        with transaction.atomic():
            organization.save()
            _audit_organization(
                actor=actor,
                action="company.created",
                organization=organization,
                changes={
                    label: getattr(organization, field)
                    for field, label in _ORGANIZATION_LABELS.items()
                },
            )
    except IntegrityError:
        raise ValidationError(
            f"A company called {name!r} was just created by someone else.", field="name"
        ) from None
    return organization


def organization_update(
    *, actor: User | None, organization: Organization, name: str, website: str, notes: str
) -> Organization:
    name = _organization_name_check(
        fields.organization_name_clean(name), exclude_pk=organization.pk
    )
    new_values = {
        "name": name,
        "website": fields.organization_website_clean(website),
        "notes": fields.contact_notes_clean(notes),
    }
    changes = {}
    for field, value in new_values.items():
        old = getattr(organization, field)
        if old != value:
            changes[_ORGANIZATION_LABELS[field]] = {"from": old, "to": value}
            setattr(organization, field, value)
    if changes:
        organization.name_key = fields.organization_name_key(name)
        try:
            with transaction.atomic():
                organization.save()
                _audit_organization(
                    actor=actor,
                    action="company.updated",
                    organization=organization,
                    changes=changes,
                )
        except IntegrityError:
            raise ValidationError(
                f"A company called {name!r} was just created by someone else.", field="name"
            ) from None
    return organization


def organization_delete(*, actor: User | None, organization: Organization) -> int:
    """Delete a company; its contacts stay, without a company. Returns how many they were."""
    if not contact_can_delete(actor):
        raise PermissionDeniedError("Only administrators and staff can delete companies.")
    with transaction.atomic():
        count = organization.contacts.count()
        _audit_organization(
            actor=actor,
            action="company.deleted",
            organization=organization,
            changes={"Name": organization.name, "Contacts left without a company": count},
        )
        organization.delete()
    return count


# Contacts.


def _email_unique_check(email_key: str, *, exclude_pk: int | None = None) -> None:
    others = Contact.objects.filter(email_key=email_key)
    if exclude_pk is not None:
        others = others.exclude(pk=exclude_pk)
    other = others.first()
    if other is not None:
        raise ValidationError(
            f"Another contact, {other}, already has the address {other.email} (addresses are "
            "compared without regard to upper and lower case). Edit that contact instead.",
            field="email",
        )


def _tags_get_or_create(names: Iterable[str]) -> list[Tag]:
    names = list(names)
    existing = {tag.name: tag for tag in Tag.objects.filter(name__in=names)}
    missing = [Tag(name=name) for name in names if name not in existing]
    if missing:
        Tag.objects.bulk_create(missing, ignore_conflicts=True)
        existing = {tag.name: tag for tag in Tag.objects.filter(name__in=names)}
    return [existing[name] for name in names]


def _consent_apply(
    contact: Contact,
    *,
    actor: User | None,
    consent: bool | None,
    consent_at: datetime | None,
    source: str | None,
) -> None:
    """Record a consent decision. A changed decision without a date is dated now, and
    without a source gets "entered by <user>"; an unchanged one keeps its date and source
    unless new ones are given."""
    source = fields.consent_source_clean(source) if source is not None else None
    if consent_at is not None and consent_at > timezone.now():
        raise ValidationError(
            "The consent date is in the future. Enter the date the person gave or "
            "withdrew consent.",
            field="marketing_consent_at",
        )
    if consent is not None and consent != contact.marketing_consent:
        contact.marketing_consent = consent
        contact.marketing_consent_at = consent_at or timezone.now()
        contact.marketing_consent_source = source or consent_default_source(actor)
        return
    if consent_at is not None:
        contact.marketing_consent_at = consent_at
    if source:
        contact.marketing_consent_source = source


def _snapshot(contact: Contact, tags: list[str]) -> dict[str, Any]:
    return {
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "email": contact.email,
        "phone": contact.phone,
        "organization": contact.organization.name if contact.organization else "",
        "tags": tags,
        "notes": contact.notes,
        "marketing_consent": contact.marketing_consent,
        "marketing_consent_at": _shown("", contact.marketing_consent_at),
        "marketing_consent_source": contact.marketing_consent_source,
        "is_active": contact.is_active,
    }


def contact_create(
    *,
    actor: User | None,
    email: str,
    first_name: str = "",
    last_name: str = "",
    phone: str = "",
    organization_name: str = "",
    tags: str | Iterable[str] = (),
    notes: str = "",
    marketing_consent: bool = False,
    marketing_consent_at: datetime | None = None,
    marketing_consent_source: str = "",
    is_active: bool = True,
) -> Contact:
    """Create a contact. Raise ValidationError (naming the field) for a bad value or an
    address another contact has."""
    address, key = fields.contact_email_clean(email)
    contact = Contact(
        first_name=fields.contact_name_clean(first_name, field="first_name"),
        last_name=fields.contact_name_clean(last_name, field="last_name"),
        email=address,
        email_key=key,
        phone=fields.contact_phone_clean(phone),
        notes=fields.contact_notes_clean(notes),
        is_active=is_active,
        created_by=actor,
    )
    tag_names = fields.tag_names_parse(tags)
    if marketing_consent or marketing_consent_at is not None or marketing_consent_source.strip():
        # Without consent, a date or a source records a refusal (someone who said no at a
        # trade fair).
        _consent_apply(
            contact,
            actor=actor,
            consent=True if marketing_consent else None,
            consent_at=marketing_consent_at,
            source=marketing_consent_source,
        )
    _email_unique_check(key)
    try:
        with transaction.atomic():
            contact.organization = organization_get_or_create(actor=actor, name=organization_name)
            contact.save()
            contact.tags.set(_tags_get_or_create(tag_names))
            snapshot = _snapshot(contact, tag_names).items()
            changes = {_LABELS[f]: _shown(f, v) for f, v in snapshot if v not in ("", [], None)}
            _audit_contact(actor=actor, action="contact.created", contact=contact, changes=changes)
    except IntegrityError:
        raise ValidationError(
            f"A contact with the address {address} was just created by someone else. "
            "Find it in the contact list.",
            field="email",
        ) from None
    return contact


def contact_update(
    *,
    actor: User | None,
    contact: Contact,
    email: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    phone: str | None = None,
    organization_name: str | None = None,
    tags: str | Iterable[str] | None = None,
    notes: str | None = None,
    marketing_consent: bool | None = None,
    marketing_consent_at: datetime | None = None,
    marketing_consent_source: str | None = None,
    is_active: bool | None = None,
) -> Contact:
    """Change the fields given (None leaves a field as it is)."""
    # Long because it takes one line per optional field; split, the parts would pass the
    # same dozen arguments on.
    old_tags = [tag.name for tag in contact.tags.all()]
    before = _snapshot(contact, old_tags)
    if email is not None:
        address, key = fields.contact_email_clean(email)
        _email_unique_check(key, exclude_pk=contact.pk)
        contact.email, contact.email_key = address, key
    if first_name is not None:
        contact.first_name = fields.contact_name_clean(first_name, field="first_name")
    if last_name is not None:
        contact.last_name = fields.contact_name_clean(last_name, field="last_name")
    if phone is not None:
        contact.phone = fields.contact_phone_clean(phone)
    if notes is not None:
        contact.notes = fields.contact_notes_clean(notes)
    if is_active is not None:
        contact.is_active = is_active
    new_tags = sorted(fields.tag_names_parse(tags)) if tags is not None else old_tags
    if organization_name is not None:
        # Checked before the transaction, so a bad name is a form error, not a rollback.
        fields.organization_name_clean(organization_name, field="organization")
    _consent_apply(
        contact,
        actor=actor,
        consent=marketing_consent,
        consent_at=marketing_consent_at,
        source=marketing_consent_source,
    )
    try:
        with transaction.atomic():
            if organization_name is not None:
                contact.organization = organization_get_or_create(
                    actor=actor, name=organization_name
                )
            after = _snapshot(contact, new_tags)
            changes = {
                _LABELS[field]: {"from": _shown(field, old), "to": _shown(field, after[field])}
                for field, old in before.items()
                if old != after[field]
            }
            if changes:
                contact.save()
                if new_tags != old_tags:
                    contact.tags.set(_tags_get_or_create(new_tags))
                _audit_contact(
                    actor=actor, action="contact.updated", contact=contact, changes=changes
                )
    except IntegrityError:
        raise ValidationError(
            f"Another contact was just given the address {contact.email}.", field="email"
        ) from None
    return contact


def contact_delete(*, actor: User | None, contact: Contact) -> None:
    """Delete the contact row. The messages sent to the contact stay in the outbox, where
    recipients are stored by address, so the history of that address is kept."""
    if not contact_can_delete(actor):
        raise PermissionDeniedError(
            "Only administrators and staff can delete contacts. Mark the contact inactive "
            "instead, or ask an administrator."
        )
    with transaction.atomic():
        _audit_contact(
            actor=actor,
            action="contact.deleted",
            contact=contact,
            changes={"Name": contact.name, "Email address": contact.email},
        )
        contact.delete()


def contact_export_record(*, actor: User | None, count: int, description: str) -> None:
    """Record that contacts' personal data left Postroom as a file (who, how many, which)."""
    audit_record(
        actor=actor,
        action="contacts.exported",
        subject="contacts export",
        changes={"Contacts": count, "Selection": description},
    )
