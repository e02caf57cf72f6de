"""/api/v1/lists: static lists of contacts — create, read, rename, delete, and add or remove
members (scope `marketing`).

The rules are the audiences services' (postroom.audiences.services), the same as the
Audiences pages apply. Changes are audited with Postroom itself as the actor.
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
from postroom.api.schemas import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    error_responses,
    query_check_known,
)
from postroom.audiences import selectors, services
from postroom.audiences.models import ContactList, ListMember
from postroom.audiences.services import DESCRIPTION_MAX_LENGTH, NAME_MAX_LENGTH
from postroom.mail.header_text import reject_control_characters
from postroom.queue.keyset import keyset_page

router = Router(tags=["Lists"])
LIST_CURSOR = "l1"
MEMBER_CURSOR = "lm1"
# Contacts added or removed by one request: a page of a client's own list; more, in
# several requests (each is one transaction).
MAX_MEMBERS_PER_REQUEST = 1000
EMAIL_MAX_LENGTH = 320  # RFC 3696 §3 (errata)
MAX_SEARCH = 200
_AUTH = ApiKeyAuth(ApiScope.MARKETING)


class _Strict(Schema):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ListIn(_Strict):
    name: str = Field(max_length=NAME_MAX_LENGTH, examples=["Trade fair 2026"])
    description: str = Field("", max_length=DESCRIPTION_MAX_LENGTH)


class ListPatch(_Strict):
    """Only the fields given change."""

    name: str | None = Field(None, max_length=NAME_MAX_LENGTH)
    description: str | None = Field(None, max_length=DESCRIPTION_MAX_LENGTH)


class ListOut(Schema):
    id: int
    name: str
    description: str
    member_count: int
    created_at: dt.datetime
    updated_at: dt.datetime


class ListListOut(Schema):
    items: list[ListOut]
    next_cursor: str | None


class ListListQuery(_Strict):
    search: str | None = Field(
        None, max_length=MAX_SEARCH, description="Words that must each appear in the name."
    )
    cursor: str | None = Field(None, max_length=100)
    limit: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)


class MembersIn(_Strict):
    contact_ids: list[int] = Field(
        default_factory=list, max_length=MAX_MEMBERS_PER_REQUEST, examples=[[12, 13]]
    )
    emails: list[str] = Field(
        default_factory=list,
        max_length=MAX_MEMBERS_PER_REQUEST,
        description="Contacts' addresses (any case); an address of no contact is returned in "
        "`unknown_emails`, not created.",
        examples=[["ann@example.org"]],
    )


class MembersAddedOut(Schema):
    added: int = Field(description="Contacts that joined (members already in count once).")
    unknown_emails: list[str]


class MembersRemoveIn(_Strict):
    contact_ids: list[int] = Field(max_length=MAX_MEMBERS_PER_REQUEST, examples=[[12]])


class MembersRemovedOut(Schema):
    removed: int


class MemberOut(Schema):
    id: int = Field(description="The contact's id (see /contacts/{id}).")
    email: str
    name: str
    marketing_consent: bool
    is_active: bool
    added_at: dt.datetime


class MemberListOut(Schema):
    items: list[MemberOut]
    next_cursor: str | None


class MemberListQuery(_Strict):
    cursor: str | None = Field(None, max_length=100)
    limit: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)


def _list_out(contact_list: ContactList) -> dict[str, Any]:
    count = getattr(contact_list, "member_count", None)
    return {
        "id": contact_list.pk,
        "name": contact_list.name,
        "description": contact_list.description,
        "member_count": contact_list.memberships.count() if count is None else count,
        "created_at": contact_list.created_at,
        "updated_at": contact_list.updated_at,
    }


def _list(list_id: int) -> ContactList:
    return selectors.list_get(pk=list_id)  # NotFoundError: 404


@router.get(
    "/lists",
    response={200: ListListOut, **error_responses()},
    auth=_AUTH,
    operation_id="list_list",
    summary="List the lists",
    description="Ordered by id (oldest first). Follow `next_cursor` for the next page.",
)
def list_list(request: HttpRequest, query: Query[ListListQuery]) -> dict[str, Any]:
    query_check_known(request, ListListQuery)
    if query.search:
        reject_control_characters(query.search, label="search", what="the filter", field="search")
    after = cursor_decode(query.cursor, kind=LIST_CURSOR) if query.cursor else None
    page = keyset_page(
        selectors.list_list(search=query.search or ""),
        size=query.limit,
        descending=False,
        following=after,
    )
    return {
        "items": [_list_out(contact_list) for contact_list in page.rows],
        "next_cursor": cursor_encode(kind=LIST_CURSOR, pk=page.following)
        if page.following
        else None,
    }


@router.post(
    "/lists",
    response={201: ListOut, **error_responses()},
    auth=_AUTH,
    operation_id="list_create",
    summary="Create a list",
    description="400 with field `name` when another list has the name (any case).",
)
def list_create(request: HttpRequest, payload: ListIn) -> Status[dict[str, Any]]:
    contact_list = services.list_create(
        actor=None, name=payload.name, description=payload.description
    )
    return Status(201, _list_out(contact_list))


@router.get(
    "/lists/{list_id}",
    response={200: ListOut, **error_responses(404)},
    auth=_AUTH,
    operation_id="list_get",
    summary="Get a list",
)
def list_get(request: HttpRequest, list_id: int = Path(..., ge=1, le=MAX_ID)) -> dict[str, Any]:
    return _list_out(_list(list_id))


@router.patch(
    "/lists/{list_id}",
    response={200: ListOut, **error_responses(404)},
    auth=_AUTH,
    operation_id="list_update",
    summary="Rename a list or change its description",
)
def list_update(
    request: HttpRequest, payload: ListPatch, list_id: int = Path(..., ge=1, le=MAX_ID)
) -> dict[str, Any]:
    contact_list = services.list_update(
        actor=None,
        contact_list=_list(list_id),
        name=payload.name,
        description=payload.description,
    )
    return _list_out(contact_list)


@router.delete(
    "/lists/{list_id}",
    response={204: None, **error_responses(404)},
    auth=_AUTH,
    operation_id="list_delete",
    summary="Delete a list",
    description="The list goes; its members stay contacts.",
)
def list_delete(request: HttpRequest, list_id: int = Path(..., ge=1, le=MAX_ID)) -> Status[None]:
    services.list_delete(actor=None, contact_list=_list(list_id))
    return Status(204, None)


@router.get(
    "/lists/{list_id}/members",
    response={200: MemberListOut, **error_responses(404)},
    auth=_AUTH,
    operation_id="list_members",
    summary="List a list's members",
    description="Active and inactive contacts, in the order they joined. Follow "
    "`next_cursor` for the next page.",
)
def list_members(
    request: HttpRequest,
    query: Query[MemberListQuery],
    list_id: int = Path(..., ge=1, le=MAX_ID),
) -> dict[str, Any]:
    query_check_known(request, MemberListQuery)
    contact_list = _list(list_id)
    after = cursor_decode(query.cursor, kind=MEMBER_CURSOR) if query.cursor else None
    # By the membership's id: unique and unchanging, so a keyset never skips nor repeats.
    page = keyset_page(
        ListMember.objects.filter(contact_list=contact_list).select_related("contact"),
        size=query.limit,
        descending=False,
        following=after,
    )
    return {
        "items": [
            {
                "id": member.contact.pk,
                "email": member.contact.email,
                "name": member.contact.name,
                "marketing_consent": member.contact.marketing_consent,
                "is_active": member.contact.is_active,
                "added_at": member.added_at,
            }
            for member in page.rows
        ],
        "next_cursor": cursor_encode(kind=MEMBER_CURSOR, pk=page.following)
        if page.following
        else None,
    }


@router.post(
    "/lists/{list_id}/members",
    response={200: MembersAddedOut, **error_responses(404)},
    auth=_AUTH,
    operation_id="list_members_add",
    summary="Add contacts to a list",
    description="By contact id and/or address; ids of no contact are ignored. Adding a "
    f"member twice is no error. At most {MAX_MEMBERS_PER_REQUEST} of each per request.",
)
def list_members_add(
    request: HttpRequest, payload: MembersIn, list_id: int = Path(..., ge=1, le=MAX_ID)
) -> dict[str, Any]:
    contact_list = _list(list_id)
    for email in payload.emails:
        reject_control_characters(email, label="emails", what="the address", field="emails")
    added = services.list_members_add(
        actor=None,
        contact_list=contact_list,
        contact_ids=[pk for pk in payload.contact_ids if 1 <= pk <= MAX_ID],
        how="through the API",
    )
    by_address = services.list_members_add_by_address(
        actor=None,
        contact_list=contact_list,
        addresses=[email[:EMAIL_MAX_LENGTH] for email in payload.emails],
    )
    return {"added": added + by_address.added, "unknown_emails": by_address.unknown}


@router.post(
    "/lists/{list_id}/members/remove",
    response={200: MembersRemovedOut, **error_responses(404)},
    auth=_AUTH,
    operation_id="list_members_remove",
    summary="Remove contacts from a list",
    description="They stay contacts. `removed` counts those that were members.",
)
def list_members_remove(
    request: HttpRequest, payload: MembersRemoveIn, list_id: int = Path(..., ge=1, le=MAX_ID)
) -> dict[str, Any]:
    removed = services.list_members_remove(
        actor=None,
        contact_list=_list(list_id),
        contact_ids=[pk for pk in payload.contact_ids if 1 <= pk <= MAX_ID],
    )
    return {"removed": removed}
