"""/api/v1/campaign-templates: campaign templates (scope `marketing`).

A template is checked when it is saved (merge fields, CSS), as on its page; `preview`
answers the message a campaign would send a given contact, with the warnings.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Field, Path, Router, Schema, Status
from pydantic import ConfigDict

from postroom.accounts.models import ApiScope
from postroom.api.auth import ApiKeyAuth
from postroom.api.cursors import MAX_ID
from postroom.api.schemas import error_responses
from postroom.campaigns import campaign_templates as services
from postroom.campaigns.campaign_templates import (
    SOURCE_MAX_CHARS,
    contact_row,
    letter_preview,
    sample_row,
)
from postroom.campaigns.models import CampaignTemplate
from postroom.campaigns.sending import letter_make, preview_sender
from postroom.contacts.selectors import contact_get
from postroom.mail.reading import message_read

router = Router(tags=["Campaign templates"])
_AUTH = ApiKeyAuth(ApiScope.MARKETING)
_ID = Path(..., ge=1, le=MAX_ID)
# How many templates one list answers: templates are few (a team's letters), so no paging.
MAX_LISTED = 500


class _Strict(Schema):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class TemplateIn(_Strict):
    name: str = Field(max_length=services.NAME_MAX_LENGTH, examples=["Monthly news"])
    html: str = Field("", max_length=SOURCE_MAX_CHARS)
    text: str = Field("", max_length=SOURCE_MAX_CHARS, description="Empty: generated from html.")


class TemplatePatch(_Strict):
    name: str | None = Field(None, max_length=services.NAME_MAX_LENGTH)
    html: str | None = Field(None, max_length=SOURCE_MAX_CHARS)
    text: str | None = Field(None, max_length=SOURCE_MAX_CHARS)


class TemplateOut(Schema):
    id: int
    name: str
    html: str
    text: str
    created_at: dt.datetime
    updated_at: dt.datetime


class PreviewIn(_Strict):
    subject: str = Field("Preview", max_length=998)
    contact_id: int | None = Field(None, ge=1, le=MAX_ID, description="Default: a sample person.")


class PreviewOut(Schema):
    subject: str
    from_: str = Field(alias="from")
    to: str
    text: str | None
    html: str | None
    size: int
    headers: list[list[str]]
    warnings: list[str]


def template_out(template: CampaignTemplate) -> dict[str, Any]:
    return {name: getattr(template, name) for name in TemplateOut.model_fields if name != "id"} | {
        "id": template.pk
    }


@router.get(
    "/campaign-templates",
    response={200: list[TemplateOut], **error_responses()},
    auth=_AUTH,
    operation_id="campaign_template_list",
    summary="List campaign templates",
)
def template_list(request: HttpRequest) -> list[dict[str, Any]]:
    return [template_out(template) for template in services.campaign_template_list()[:MAX_LISTED]]


@router.post(
    "/campaign-templates",
    response={201: TemplateOut, **error_responses()},
    auth=_AUTH,
    operation_id="campaign_template_create",
    summary="Create a campaign template",
)
def template_create(request: HttpRequest, payload: TemplateIn) -> Status[dict[str, Any]]:
    template = services.campaign_template_create(
        actor=None, fields=services.TemplateFields(**payload.model_dump())
    )
    return Status(201, template_out(template))


@router.get(
    "/campaign-templates/{template_id}",
    response={200: TemplateOut, **error_responses(404)},
    auth=_AUTH,
    operation_id="campaign_template_get",
    summary="Get a campaign template",
)
def template_get(request: HttpRequest, template_id: int = _ID) -> dict[str, Any]:
    return template_out(services.campaign_template_get(pk=template_id))


@router.patch(
    "/campaign-templates/{template_id}",
    response={200: TemplateOut, **error_responses(404)},
    auth=_AUTH,
    operation_id="campaign_template_update",
    summary="Change a campaign template",
    description="Campaigns already sent keep the letter they were sent with.",
)
def template_update(
    request: HttpRequest, payload: TemplatePatch, template_id: int = _ID
) -> dict[str, Any]:
    template = services.campaign_template_get(pk=template_id)
    given = {k: v for k, v in payload.model_dump(exclude_unset=True).items() if v is not None}
    fields = services.TemplateFields(
        name=given.get("name", template.name),
        html=given.get("html", template.html),
        text=given.get("text", template.text),
    )
    return template_out(
        services.campaign_template_update(actor=None, template=template, fields=fields)
    )


@router.delete(
    "/campaign-templates/{template_id}",
    response={204: None, **error_responses(404)},
    auth=_AUTH,
    operation_id="campaign_template_delete",
    summary="Delete a campaign template no campaign uses",
)
def template_delete(request: HttpRequest, template_id: int = _ID) -> Status[None]:
    services.campaign_template_delete(
        actor=None, template=services.campaign_template_get(pk=template_id)
    )
    return Status(204, None)


@router.post(
    "/campaign-templates/{template_id}/preview",
    response={200: PreviewOut, **error_responses(404)},
    auth=_AUTH,
    operation_id="campaign_template_preview",
    summary="Render a template for a contact",
    description="The message as a campaign from the company would send it, and the warnings.",
)
def template_preview(
    request: HttpRequest, payload: PreviewIn, template_id: int = _ID
) -> dict[str, Any]:
    template = services.campaign_template_get(pk=template_id)
    row = contact_row(contact_get(pk=payload.contact_id)) if payload.contact_id else None
    from_, reply_to = preview_sender()
    letter = letter_make(
        campaign_id=0,
        subject=payload.subject,
        html=template.html,
        text=template.text,
        from_=from_,
        reply_to=reply_to,
        is_tracking=False,
    )
    preview = letter_preview(
        letter,
        row=row or sample_row("jane.doe@example.com"),
        campaign_id=0,
        text_written=template.text,
        html_written=template.html,
    )
    content = message_read(preview.raw)
    return {
        "subject": preview.subject,
        "from": preview.from_header,
        "to": preview.to,
        "text": content.text,
        "html": content.html,
        "size": len(preview.raw),
        "headers": [[name, value] for name, value in content.headers],
        "warnings": preview.warnings,
    }
