"""/api/v1/segments: saved filters over contacts — create, read, change, delete, and count who
is in one now (scope `marketing`).

A segment's `rules` use the fixed vocabulary of postroom.audiences.rules (docs/audiences.md
lists it): `{"field": "tag", "op": "has", "value": "customer"}`. A rule outside it is
refused with 400, field `rules`, naming the condition.
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
from postroom.audiences import rules as segment_rules
from postroom.audiences import selectors, services
from postroom.audiences.models import Segment
from postroom.audiences.services import DESCRIPTION_MAX_LENGTH, NAME_MAX_LENGTH
from postroom.core.errors import PostroomError
from postroom.mail.header_text import reject_control_characters
from postroom.queue.keyset import keyset_page

router = Router(tags=["Segments"])
CURSOR_KIND = "s1"
MAX_SEARCH = 200
_AUTH = ApiKeyAuth(ApiScope.MARKETING)

Match = Literal["all", "any"]


class _Strict(Schema):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RuleIn(_Strict):
    field: str = Field(
        max_length=30, description=f"One of: {', '.join(segment_rules.FIELDS)}.", examples=["tag"]
    )
    op: str = Field(max_length=30, description="An operator of the field.", examples=["has"])
    value: str | int | None = Field(
        None,
        description="Text, or a number of days; absent for operators without a value.",
        examples=["customer"],
    )


class SegmentIn(_Strict):
    name: str = Field(max_length=NAME_MAX_LENGTH, examples=["Customers to wake"])
    description: str = Field("", max_length=DESCRIPTION_MAX_LENGTH)
    match: Match = Field("all", description="Contacts who meet all, or any, of the rules.")
    rules: list[RuleIn] = Field(max_length=segment_rules.MAX_RULES)


class SegmentPatch(_Strict):
    """Only the fields given change; `rules` replaces every rule."""

    name: str | None = Field(None, max_length=NAME_MAX_LENGTH)
    description: str | None = Field(None, max_length=DESCRIPTION_MAX_LENGTH)
    match: Match | None = None
    rules: list[RuleIn] | None = Field(None, max_length=segment_rules.MAX_RULES)


class RuleOut(Schema):
    field: str
    op: str
    value: str | int | None = None


class SegmentOut(Schema):
    id: int
    name: str
    description: str
    match: Match
    rules: list[RuleOut]
    conditions: str = Field(description="The rules in words.")
    created_at: dt.datetime
    updated_at: dt.datetime


class SegmentListOut(Schema):
    items: list[SegmentOut]
    next_cursor: str | None


class SegmentListQuery(_Strict):
    search: str | None = Field(
        None, max_length=MAX_SEARCH, description="Words that must each appear in the name."
    )
    cursor: str | None = Field(None, max_length=100)
    limit: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)


class SegmentCountOut(Schema):
    count: int = Field(description="Active contacts who meet the rules now.")
    consented_not_suppressed: int = Field(
        description="Of them, those a campaign would mail: consented, address not suppressed."
    )


def _segment_out(segment: Segment) -> dict[str, Any]:
    try:
        words = segment_rules.rules_text(
            segment_rules.rules_clean(segment.rules), match=segment.match
        )
    except PostroomError as error:
        words = f"(not usable: {error.message})"
    return {
        "id": segment.pk,
        "name": segment.name,
        "description": segment.description,
        "match": segment.match,
        "rules": segment.rules,
        "conditions": words,
        "created_at": segment.created_at,
        "updated_at": segment.updated_at,
    }


def _rules(rules: list[RuleIn]) -> list[dict[str, Any]]:
    return [rule.model_dump(exclude_none=True) for rule in rules]


@router.get(
    "/segments",
    response={200: SegmentListOut, **error_responses()},
    auth=_AUTH,
    operation_id="segment_list",
    exclude_none=True,  # a rule without a value has no "value", as stored
    summary="List the segments",
    description="Ordered by id (oldest first). Follow `next_cursor` for the next page.",
)
def segment_list(request: HttpRequest, query: Query[SegmentListQuery]) -> dict[str, Any]:
    query_check_known(request, SegmentListQuery)
    if query.search:
        reject_control_characters(query.search, label="search", what="the filter", field="search")
    after = cursor_decode(query.cursor, kind=CURSOR_KIND) if query.cursor else None
    page = keyset_page(
        selectors.segment_list(search=query.search or ""),
        size=query.limit,
        descending=False,
        following=after,
    )
    return {
        "items": [_segment_out(segment) for segment in page.rows],
        "next_cursor": cursor_encode(kind=CURSOR_KIND, pk=page.following)
        if page.following
        else None,
    }


@router.post(
    "/segments",
    response={201: SegmentOut, **error_responses()},
    auth=_AUTH,
    operation_id="segment_create",
    exclude_none=True,  # a rule without a value has no "value", as stored
    summary="Create a segment",
    description="400 with field `rules` for a rule outside the vocabulary, with field "
    "`name` when another segment has the name (any case).",
)
def segment_create(request: HttpRequest, payload: SegmentIn) -> Status[dict[str, Any]]:
    segment = services.segment_create(
        actor=None,
        name=payload.name,
        description=payload.description,
        match=payload.match,
        rules=_rules(payload.rules),
    )
    return Status(201, _segment_out(segment))


@router.get(
    "/segments/{segment_id}",
    response={200: SegmentOut, **error_responses(404)},
    auth=_AUTH,
    operation_id="segment_get",
    exclude_none=True,  # a rule without a value has no "value", as stored
    summary="Get a segment",
)
def segment_get(
    request: HttpRequest, segment_id: int = Path(..., ge=1, le=MAX_ID)
) -> dict[str, Any]:
    return _segment_out(selectors.segment_get(pk=segment_id))


@router.patch(
    "/segments/{segment_id}",
    response={200: SegmentOut, **error_responses(404)},
    auth=_AUTH,
    operation_id="segment_update",
    exclude_none=True,  # a rule without a value has no "value", as stored
    summary="Change a segment",
)
def segment_update(
    request: HttpRequest, payload: SegmentPatch, segment_id: int = Path(..., ge=1, le=MAX_ID)
) -> dict[str, Any]:
    segment = services.segment_update(
        actor=None,
        segment=selectors.segment_get(pk=segment_id),
        name=payload.name,
        description=payload.description,
        match=payload.match,
        rules=_rules(payload.rules) if payload.rules is not None else None,
    )
    return _segment_out(segment)


@router.delete(
    "/segments/{segment_id}",
    response={204: None, **error_responses(404)},
    auth=_AUTH,
    operation_id="segment_delete",
    summary="Delete a segment",
    description="No contact is changed.",
)
def segment_delete(
    request: HttpRequest, segment_id: int = Path(..., ge=1, le=MAX_ID)
) -> Status[None]:
    services.segment_delete(actor=None, segment=selectors.segment_get(pk=segment_id))
    return Status(204, None)


@router.get(
    "/segments/{segment_id}/count",
    response={200: SegmentCountOut, **error_responses(404)},
    auth=_AUTH,
    operation_id="segment_count",
    summary="Count who is in a segment now",
)
def segment_count(
    request: HttpRequest, segment_id: int = Path(..., ge=1, le=MAX_ID)
) -> dict[str, Any]:
    segment = selectors.segment_get(pk=segment_id)
    return {
        "count": selectors.segment_count(segment=segment),
        "consented_not_suppressed": selectors.segment_reachable_count(segment=segment),
    }
