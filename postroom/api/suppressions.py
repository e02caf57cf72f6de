"""/api/v1/suppressions: the suppression list — list, look up, add, remove (scope
`marketing`).

Bulk mail (campaigns, and any message queued in the bulk lane) is never sent to an address
on it; a person's email is. The rules are postroom.outbox.suppression's, as on the
Audiences → Suppression page. Changes are audited with Postroom itself as the actor.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

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
from postroom.mail.header_text import reject_control_characters
from postroom.outbox import suppression
from postroom.outbox.models import Suppression
from postroom.queue.keyset import keyset_page

router = Router(tags=["Suppression list"])
CURSOR_KIND = "x1"
EMAIL_MAX_LENGTH = 320  # RFC 3696 §3 (errata)
MAX_SEARCH = 320
_AUTH = ApiKeyAuth(ApiScope.MARKETING)

Reason = Literal["unsubscribed", "hard_bounced", "complained", "manual"]


class _Strict(Schema):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SuppressionIn(_Strict):
    address: str = Field(max_length=EMAIL_MAX_LENGTH, examples=["ann@example.org"])
    reason: Reason = "manual"
    note: str = Field("", max_length=suppression.NOTE_MAX_LENGTH)


class SuppressionOut(Schema):
    id: int
    address: str
    reason: Reason
    note: str
    source: str
    created_at: dt.datetime


class SuppressionListOut(Schema):
    items: list[SuppressionOut]
    next_cursor: str | None


class SuppressionListQuery(_Strict):
    address: str | None = Field(
        None, max_length=EMAIL_MAX_LENGTH, description="An exact address (any case)."
    )
    search: str | None = Field(
        None,
        max_length=MAX_SEARCH,
        description="Words that must each appear in the address, note or source.",
    )
    reason: Reason | None = None
    cursor: str | None = Field(None, max_length=100)
    limit: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)


def _entry_out(entry: Suppression) -> dict[str, Any]:
    return {
        "id": entry.pk,
        "address": entry.address,
        "reason": entry.reason,
        "note": entry.note,
        "source": entry.source,
        "created_at": entry.created_at,
    }


@router.get(
    "/suppressions",
    response={200: SuppressionListOut, **error_responses()},
    auth=_AUTH,
    operation_id="suppression_list",
    summary="List suppressed addresses, newest first",
    description="`address` answers whether one address is suppressed (one item or none). "
    "Follow `next_cursor` for older entries.",
)
def suppression_list(request: HttpRequest, query: Query[SuppressionListQuery]) -> dict[str, Any]:
    query_check_known(request, SuppressionListQuery)
    for name in ("address", "search"):
        value = getattr(query, name)
        if value is not None:
            reject_control_characters(value, label=name, what="the filter", field=name)
    entries = suppression.suppression_list(search=query.search or "", reason=query.reason or "")
    if query.address:
        entries = entries.filter(address_key=suppression.address_key(query.address))
    before = cursor_decode(query.cursor, kind=CURSOR_KIND) if query.cursor else None
    page = keyset_page(entries, size=query.limit, following=before)
    return {
        "items": [_entry_out(entry) for entry in page.rows],
        "next_cursor": cursor_encode(kind=CURSOR_KIND, pk=page.following)
        if page.following
        else None,
    }


@router.post(
    "/suppressions",
    response={200: SuppressionOut, 201: SuppressionOut, **error_responses()},
    auth=_AUTH,
    operation_id="suppression_add",
    summary="Suppress an address",
    description="201 with the new entry; 200 with the existing one, unchanged, when the "
    "address (any case) was already suppressed.",
)
def suppression_add(request: HttpRequest, payload: SuppressionIn) -> Status[dict[str, Any]]:
    entry = suppression.suppression_add(
        actor=None, address=payload.address, reason=payload.reason, note=payload.note
    )
    return Status(201 if entry.is_new else 200, _entry_out(entry))


@router.delete(
    "/suppressions/{suppression_id}",
    response={204: None, **error_responses(404)},
    auth=_AUTH,
    operation_id="suppression_remove",
    summary="Take an address off the suppression list",
    description="Bulk mail may reach it again, mail already waiting too.",
)
def suppression_remove(
    request: HttpRequest, suppression_id: int = Path(..., ge=1, le=MAX_ID)
) -> Status[None]:
    entry = suppression.suppression_get(pk=suppression_id)
    suppression.suppression_remove(actor=None, suppression=entry)
    return Status(204, None)
