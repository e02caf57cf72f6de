"""/api/v1/contacts: create, read, change, delete and search contacts (scope `contacts`).

The rules are the contact services' (postroom.contacts.services), the same as the contact
pages and the CSV import apply. Changes made through the API are audited with Postroom
itself as the actor.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Field, Path, Query, Router, Schema, Status
from pydantic import ConfigDict

from postroom.accounts.models import ApiScope
from postroom.api.auth import ApiKeyAuth
from postroom.api.cursors import MAX_ID, cursor_decode, cursor_encode
from postroom.api.datetimes import aware_datetime
from postroom.api.schemas import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    error_responses,
    query_check_known,
)
from postroom.contacts import fields
from postroom.contacts import selectors as contact_selectors
from postroom.contacts import services as contact_services
from postroom.contacts.models import Contact
from postroom.mail.header_text import reject_control_characters
from postroom.queue.keyset import keyset_page

router = Router(tags=["Contacts"])
CURSOR_KIND = "c1"
# Contact.email's width: RFC 3696 §3 (errata): 64 for the local part, 1, 255 for the domain.
EMAIL_MAX_LENGTH = 320
# A search longer than a name, an address and a company together is no search.
MAX_SEARCH = 500
_AUTH = ApiKeyAuth(ApiScope.CONTACTS)


class _Strict(Schema):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ContactIn(_Strict):
    email: str = Field(max_length=EMAIL_MAX_LENGTH, examples=["bob@example.org"])
    first_name: str = Field("", max_length=fields.NAME_MAX_LENGTH, examples=["Bob"])
    last_name: str = Field("", max_length=fields.NAME_MAX_LENGTH, examples=["Jones"])
    phone: str = Field("", max_length=fields.PHONE_MAX_LENGTH)
    company: str = Field(
        "",
        max_length=fields.ORGANIZATION_NAME_MAX_LENGTH,
        description="The company's name; created when there is none by that name yet.",
    )
    tags: list[str] = Field(default_factory=list, examples=[["customer", "vip"]])
    notes: str = Field("", max_length=fields.NOTES_MAX_LENGTH)
    marketing_consent: bool = False
    marketing_consent_at: dt.datetime | None = Field(
        None, description="When consent was given or withdrawn; default: now, if it changes."
    )
    marketing_consent_source: str = Field("", max_length=fields.CONSENT_SOURCE_MAX_LENGTH)
    is_active: bool = True


class ContactPatch(_Strict):
    """Only the fields given change; null or absent leaves a field as it is."""

    email: str | None = Field(None, max_length=EMAIL_MAX_LENGTH)
    first_name: str | None = Field(None, max_length=fields.NAME_MAX_LENGTH)
    last_name: str | None = Field(None, max_length=fields.NAME_MAX_LENGTH)
    phone: str | None = Field(None, max_length=fields.PHONE_MAX_LENGTH)
    company: str | None = Field(
        None, max_length=fields.ORGANIZATION_NAME_MAX_LENGTH, description='"" removes it.'
    )
    tags: list[str] | None = Field(None, description="Replaces every tag.")
    notes: str | None = Field(None, max_length=fields.NOTES_MAX_LENGTH)
    marketing_consent: bool | None = None
    marketing_consent_at: dt.datetime | None = None
    marketing_consent_source: str | None = Field(None, max_length=fields.CONSENT_SOURCE_MAX_LENGTH)
    is_active: bool | None = None


class ContactOut(Schema):
    id: int
    email: str
    first_name: str
    last_name: str
    name: str
    phone: str
    company: str | None
    tags: list[str]
    notes: str
    marketing_consent: bool
    marketing_consent_at: dt.datetime | None
    marketing_consent_source: str
    is_active: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class ContactListOut(Schema):
    items: list[ContactOut]
    next_cursor: str | None


class ContactListQuery(_Strict):
    search: str | None = Field(
        None,
        max_length=MAX_SEARCH,
        description="Words that must each appear in the name, address or company.",
    )
    email: str | None = Field(
        None, max_length=EMAIL_MAX_LENGTH, description="An exact address (any case)."
    )
    tag: str | None = Field(None, max_length=fields.TAG_MAX_LENGTH)
    company_id: int | None = Field(None, ge=1, le=MAX_ID)
    marketing_consent: bool | None = None
    is_active: bool | None = None
    cursor: str | None = Field(None, max_length=100)
    limit: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)


@router.get(
    "/contacts",
    response={200: ContactListOut, **error_responses()},
    auth=_AUTH,
    operation_id="contact_list",
    summary="List and search contacts",
    description="Ordered by id (oldest first). Follow `next_cursor` for the next page.",
)
def contact_list(request: HttpRequest, query: Query[ContactListQuery]) -> dict[str, Any]:
    query_check_known(request, ContactListQuery)
    for name in ("search", "email", "tag"):
        value = getattr(query, name)
        if value is not None:
            reject_control_characters(value, label=name, what="the filter", field=name)
    contacts = contact_selectors.contact_list(
        filters=contact_selectors.ContactFilters(
            search=query.search or "",
            tag=" ".join((query.tag or "").split()).lower(),
            organization_id=query.company_id,
            has_consent=query.marketing_consent,
            is_active=query.is_active,
        )
    )
    if query.email:
        contacts = contacts.filter(email_key=fields.contact_email_key(query.email.strip()))
    after = cursor_decode(query.cursor, kind=CURSOR_KIND) if query.cursor else None
    # By id, not by name: a keyset on a unique, unchanging column never skips or repeats
    # a contact when others are renamed between two pages.
    page = keyset_page(contacts, size=query.limit, descending=False, following=after)
    return {
        "items": [_contact_out(contact) for contact in page.rows],
        "next_cursor": (
            cursor_encode(kind=CURSOR_KIND, pk=page.following) if page.following else None
        ),
    }


@router.post(
    "/contacts",
    response={201: ContactOut, **error_responses()},
    auth=_AUTH,
    operation_id="contact_create",
    summary="Create a contact",
    description="400 with field `email` when another contact has the address (any case).",
)
def contact_create(request: HttpRequest, payload: ContactIn) -> Status[dict[str, Any]]:
    contact = contact_services.contact_create(actor=None, **_contact_fields(payload))
    return Status(201, _contact_out(_reloaded(contact)))


@router.get(
    "/contacts/{contact_id}",
    response={200: ContactOut, **error_responses(404)},
    auth=_AUTH,
    operation_id="contact_get",
    summary="Get a contact",
)
def contact_get(
    request: HttpRequest, contact_id: int = Path(..., ge=1, le=MAX_ID)
) -> dict[str, Any]:
    return _contact_out(_reloaded_pk(contact_id))


@router.patch(
    "/contacts/{contact_id}",
    response={200: ContactOut, **error_responses(404)},
    auth=_AUTH,
    operation_id="contact_update",
    summary="Change some of a contact's fields",
)
def contact_update(
    request: HttpRequest, payload: ContactPatch, contact_id: int = Path(..., ge=1, le=MAX_ID)
) -> dict[str, Any]:
    contact = contact_selectors.contact_get(pk=contact_id)
    contact_services.contact_update(actor=None, contact=contact, **_contact_fields(payload))
    return _contact_out(_reloaded_pk(contact_id))


def _contact_fields(payload: ContactIn | ContactPatch) -> dict[str, Any]:
    """The service's keyword arguments from a request body (None leaves a field unchanged)."""
    return {
        "email": payload.email,
        "first_name": payload.first_name,
        "last_name": payload.last_name,
        "phone": payload.phone,
        "organization_name": payload.company,
        "tags": payload.tags,
        "notes": payload.notes,
        "marketing_consent": payload.marketing_consent,
        "marketing_consent_at": aware_datetime(
            payload.marketing_consent_at, field="marketing_consent_at"
        ),
        "marketing_consent_source": payload.marketing_consent_source,
        "is_active": payload.is_active,
    }


@router.delete(
    "/contacts/{contact_id}",
    response={204: None, **error_responses(404)},
    auth=_AUTH,
    operation_id="contact_delete",
    summary="Delete a contact",
    description=(
        "Deletes the contact; the mail sent to its address stays in the outbox, where "
        "recipients are kept by address. To stop mailing someone, set is_active false."
    ),
)
def contact_delete(
    request: HttpRequest, contact_id: int = Path(..., ge=1, le=MAX_ID)
) -> Status[None]:
    contact = contact_selectors.contact_get(pk=contact_id)
    contact_services.contact_delete(actor=None, contact=contact)
    return Status(204, None)


def _reloaded(contact: Contact) -> Contact:
    return _reloaded_pk(contact.pk)


def _reloaded_pk(pk: int) -> Contact:
    # Through the selector, so the company and tags come the way the list loads them.
    contact = contact_selectors.contact_list_by_ids(ids=[pk]).first()
    if contact is None:
        contact_selectors.contact_get(pk=pk)  # raises NotFoundError
    assert contact is not None
    return contact


def _contact_out(contact: Contact) -> dict[str, Any]:
    return {
        "id": contact.pk,
        "email": contact.email,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "name": contact.name,
        "phone": contact.phone,
        "company": contact.organization.name if contact.organization else None,
        "tags": sorted(tag.name for tag in contact.tags.all()),
        "notes": contact.notes,
        "marketing_consent": contact.marketing_consent,
        "marketing_consent_at": contact.marketing_consent_at,
        "marketing_consent_source": contact.marketing_consent_source,
        "is_active": contact.is_active,
        "created_at": contact.created_at,
        "updated_at": contact.updated_at,
    }
