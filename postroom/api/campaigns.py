"""/api/v1/campaigns: create, change, send, pause, resume, cancel and follow campaigns
(scope `marketing`).

The rules are the campaign services' (postroom.campaigns.services), the same the pages
apply; changes are audited with Postroom itself as the actor. Send hands the campaign to the
worker and answers at once (202): its pre-flight and its messages are the worker's job, and
GET /campaigns/{id} and /stats follow them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Path, Query, Router, Schema, Status
from pydantic import ConfigDict

from postroom.accounts.models import ApiScope
from postroom.api.auth import ApiKeyAuth
from postroom.api.cursors import MAX_ID, cursor_decode, cursor_encode
from postroom.api.datetimes import aware_datetime
from postroom.api.schemas import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, error_responses
from postroom.campaigns import selectors, services
from postroom.campaigns.models import Campaign, CampaignStatus
from postroom.campaigns.monitor import campaign_refresh
from postroom.queue.keyset import keyset_page

router = Router(tags=["Campaigns"])
CURSOR_KIND = "cp1"
_AUTH = ApiKeyAuth(ApiScope.MARKETING)
MAX_IDS = 100  # lists or segments in one audience: more is a segment's job
_ID = Path(..., ge=1, le=MAX_ID)


class _Strict(Schema):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CampaignPatch(_Strict):
    """Only the fields given change (a draft only)."""

    name: str | None = Field(None, max_length=services.NAME_MAX_LENGTH)
    subject: str | None = Field(None, max_length=998)
    template_id: int | None = Field(None, ge=1, le=MAX_ID)
    sender: Literal["company", "user"] | None = Field(
        None, description='"company", or "user" with sender_user_id (send-as policy).'
    )
    sender_user_id: int | None = Field(None, ge=1, le=MAX_ID)
    list_ids: list[int] | None = Field(None, max_length=MAX_IDS)
    segment_ids: list[int] | None = Field(None, max_length=MAX_IDS)
    scheduled_at: dt.datetime | None = Field(
        None, description="Send at this time (with its offset); null sends when asked."
    )
    time_zone: str | None = Field(None, max_length=64, examples=["Europe/Berlin"])
    throttle_per_minute: int | None = Field(None, ge=0, le=services.MAX_THROTTLE)
    throttle_per_hour: int | None = Field(None, ge=0, le=services.MAX_THROTTLE)
    auto_pause_window: int | None = Field(None, ge=10, le=100_000)
    auto_pause_percent: int | None = Field(None, ge=1, le=100)


class CampaignIn(CampaignPatch):
    name: str = Field(max_length=services.NAME_MAX_LENGTH, examples=["Spring news"])  # type: ignore[assignment]


class CampaignOut(Schema):
    id: int
    name: str
    status: str
    subject: str
    template_id: int | None
    sender: str
    sender_user_id: int | None
    list_ids: list[int]
    segment_ids: list[int]
    scheduled_at: dt.datetime | None
    time_zone: str
    throttle_per_minute: int
    throttle_per_hour: int
    auto_pause_window: int
    auto_pause_percent: int
    paused_reason: str
    is_tracking: bool
    preflight_failed: int
    preflight_report: list[Any] = Field(description="[[contact id, address, problem], …]")
    queued_count: int
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


class CampaignListOut(Schema):
    items: list[CampaignOut]
    next_cursor: str | None


class SendBucketOut(Schema):
    at: dt.datetime
    sent: int


class StatsOut(Schema):
    status: str
    audience: int
    written: int
    queued: int
    sent: int
    captured: int
    deferred: int
    failed: int
    suppressed: int
    no_consent: int
    cancelled: int
    unsubscribed: int
    opened: int | None = Field(description="null when the campaign is not tracked")
    clicked: int | None
    percent_done: int
    sends_per: str = Field(description="minute, hour or day")
    sends: list[SendBucketOut]


class TestIn(_Strict):
    to: list[str] = Field(min_length=1, max_length=services.MAX_TEST_ADDRESSES)


class ListQuery(_Strict):
    status: CampaignStatus | None = None
    cursor: str | None = Field(None, max_length=100)
    limit: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)


def campaign_out(campaign: Campaign) -> dict[str, Any]:
    return {
        **{name: getattr(campaign, name) for name in CampaignOut.model_fields if name != "sender"},
        "id": campaign.pk,
        "sender": campaign.sender_kind,
        "template_id": campaign.template_id,
        "sender_user_id": campaign.sender_user_id,
    }


def _fields(payload: CampaignPatch, base: services.CampaignFields) -> services.CampaignFields:
    given = payload.model_dump(exclude_unset=True)
    if "sender" in given:
        given["sender_kind"] = given.pop("sender")
    if "scheduled_at" in given:
        given["scheduled_at"] = aware_datetime(given["scheduled_at"], field="scheduled_at")
    for name in ("list_ids", "segment_ids"):
        if name in given:
            given[name] = tuple(given[name] or ())
    return dataclasses.replace(
        base, **{k: v for k, v in given.items() if v is not None or k == "scheduled_at"}
    )


def _campaign(campaign_id: int) -> Campaign:
    return campaign_refresh(selectors.campaign_get(pk=campaign_id))


@router.get(
    "/campaigns",
    response={200: CampaignListOut, **error_responses()},
    auth=_AUTH,
    operation_id="campaign_list",
    summary="List campaigns",
    description="Newest first. Follow `next_cursor` for the next page.",
)
def campaign_list(request: HttpRequest, query: Query[ListQuery]) -> dict[str, Any]:
    campaigns = selectors.campaign_list(status=query.status or "")
    before = cursor_decode(query.cursor, kind=CURSOR_KIND) if query.cursor else None
    page = keyset_page(campaigns, size=query.limit, descending=True, following=before)
    return {
        "items": [campaign_out(campaign_refresh(campaign)) for campaign in page.rows],
        "next_cursor": cursor_encode(kind=CURSOR_KIND, pk=page.following)
        if page.following
        else None,
    }


@router.post(
    "/campaigns",
    response={201: CampaignOut, **error_responses()},
    auth=_AUTH,
    operation_id="campaign_create",
    summary="Create a draft campaign",
)
def campaign_create(request: HttpRequest, payload: CampaignIn) -> Status[dict[str, Any]]:
    fields = _fields(payload, services.CampaignFields(name=payload.name))
    campaign = services.campaign_create(actor=None, fields=fields)
    return Status(201, campaign_out(_campaign(campaign.pk)))


@router.get(
    "/campaigns/{campaign_id}",
    response={200: CampaignOut, **error_responses(404)},
    auth=_AUTH,
    operation_id="campaign_get",
    summary="Get a campaign",
)
def campaign_get(request: HttpRequest, campaign_id: int = _ID) -> dict[str, Any]:
    return campaign_out(_campaign(campaign_id))


@router.patch(
    "/campaigns/{campaign_id}",
    response={200: CampaignOut, **error_responses(404)},
    auth=_AUTH,
    operation_id="campaign_update",
    summary="Change a draft campaign",
)
def campaign_update(
    request: HttpRequest, payload: CampaignPatch, campaign_id: int = _ID
) -> dict[str, Any]:
    campaign = selectors.campaign_get(pk=campaign_id)
    fields = _fields(payload, services.campaign_fields(campaign))
    services.campaign_update(actor=None, campaign=campaign, fields=fields)
    return campaign_out(_campaign(campaign_id))


@router.delete(
    "/campaigns/{campaign_id}",
    response={204: None, **error_responses(404)},
    auth=_AUTH,
    operation_id="campaign_delete",
    summary="Delete a draft campaign",
)
def campaign_delete(request: HttpRequest, campaign_id: int = _ID) -> Status[None]:
    services.campaign_delete(actor=None, campaign=selectors.campaign_get(pk=campaign_id))
    return Status(204, None)


def _action(name: str, summary: str, description: str) -> Any:
    return router.post(
        f"/campaigns/{{campaign_id}}/{name}",
        response={202 if name == "send" else 200: CampaignOut, **error_responses(404)},
        auth=_AUTH,
        operation_id=f"campaign_{name}",
        summary=summary,
        description=description,
    )


@_action(
    "send",
    "Send (or schedule) a draft",
    "Freezes the letter and hands the campaign to the worker: status becomes `sending` (or "
    "`scheduled` when scheduled_at is ahead). The pre-flight then renders every recipient's "
    "message; if any fails, the campaign comes back as a `draft` with `preflight_report`.",
)
def campaign_send(request: HttpRequest, campaign_id: int = _ID) -> Status[dict[str, Any]]:
    campaign = services.campaign_send(actor=None, campaign=selectors.campaign_get(pk=campaign_id))
    return Status(202, campaign_out(campaign))


@_action("pause", "Pause", "No further message starts within a second; Resume goes on.")
def campaign_pause(request: HttpRequest, campaign_id: int = _ID) -> dict[str, Any]:
    campaign = services.campaign_pause(actor=None, campaign=selectors.campaign_get(pk=campaign_id))
    return campaign_out(campaign)


@_action("resume", "Resume a paused campaign", "The held mail goes on where it stopped.")
def campaign_resume(request: HttpRequest, campaign_id: int = _ID) -> dict[str, Any]:
    campaign = services.campaign_resume(actor=None, campaign=selectors.campaign_get(pk=campaign_id))
    return campaign_out(campaign)


@_action("cancel", "Cancel", "Messages not yet sent are cancelled; the campaign is final.")
def campaign_cancel(request: HttpRequest, campaign_id: int = _ID) -> dict[str, Any]:
    campaign = services.campaign_cancel(actor=None, campaign=selectors.campaign_get(pk=campaign_id))
    return campaign_out(campaign)


@router.post(
    "/campaigns/{campaign_id}/test",
    response={202: dict[str, list[int]], **error_responses(404)},
    auth=_AUTH,
    operation_id="campaign_test",
    summary="Send a test to a few addresses",
    description="Answers the outbox ids of the test messages (subject starting [Test]).",
)
def campaign_test(
    request: HttpRequest, payload: TestIn, campaign_id: int = _ID
) -> Status[dict[str, list[int]]]:
    queued = services.campaign_test_send(
        actor=None, campaign=selectors.campaign_get(pk=campaign_id), addresses=payload.to
    )
    return Status(202, {"messages": [message.pk for message in queued]})


@router.get(
    "/campaigns/{campaign_id}/stats",
    response={200: StatsOut, **error_responses(404)},
    auth=_AUTH,
    operation_id="campaign_stats",
    summary="A campaign's statistics",
)
def campaign_stats(request: HttpRequest, campaign_id: int = _ID) -> dict[str, Any]:
    campaign = _campaign(campaign_id)
    stats = selectors.campaign_stats(campaign)
    buckets, unit = selectors.campaign_sends_over_time(campaign)
    counted = {
        name: getattr(stats, name)
        for name in StatsOut.model_fields
        if hasattr(stats, name) and name not in ("opened", "clicked")
    }
    return {
        **counted,
        "status": campaign.status,
        "queued": stats.waiting,
        "opened": stats.opened if campaign.is_tracking else None,
        "clicked": stats.clicked if campaign.is_tracking else None,
        "sends_per": unit,
        "sends": [{"at": bucket.at, "sent": bucket.sent} for bucket in buckets],
    }
