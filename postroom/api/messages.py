"""/api/v1/messages: send, read, list and cancel outbox messages."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Header, Path, Query, Router, Status

from postroom.accounts.api_keys import PREFIX_BYTES
from postroom.accounts.models import ApiKey, ApiScope
from postroom.api.auth import ApiKeyAuth, request_api_key
from postroom.api.cursors import MAX_ID, cursor_decode, cursor_encode
from postroom.api.datetimes import aware_datetime
from postroom.api.errors import ConflictError
from postroom.api.schemas import (
    AddressIn,
    AttachmentIn,
    MessageListOut,
    MessageListQuery,
    MessageOut,
    RecipientIn,
    SendIn,
    error_responses,
    query_check_known,
)
from postroom.api.selectors import (
    MessageListFilters,
    api_message_get,
    api_message_page,
    api_message_records,
)
from postroom.api.senders import Sender, sender_resolve
from postroom.compose.services import ComposeRequest, message_compose
from postroom.core.errors import ValidationError
from postroom.mail.addresses import Address, parse_address
from postroom.mail.header_text import check_header_phrase, reject_control_characters
from postroom.mail.message import Attachment
from postroom.outbox.actions import message_cancel
from postroom.outbox.enqueue import MAX_IDEMPOTENCY_KEY, IdempotencyConflictError
from postroom.outbox.models import Lane, Message, MessageStatus, Source
from postroom.outbox.pauses import server_is_any_paused

router = Router(tags=["Messages"])
CURSOR_KIND = "m1"

# Scheduled sending is for the near future (tomorrow morning, the end of the month);
# mail planned further ahead belongs in a report schedule or a campaign.
MAX_SCHEDULE_AHEAD = dt.timedelta(days=366)
# An idempotency key is stored as "api:<key prefix>:<key>" so that two systems that both
# send "order-1042" do not get each other's message: 13 of the column's characters are ours.
_IDEMPOTENCY_NAMESPACE = "api:{prefix}:"
MAX_IDEMPOTENCY_KEY_LENGTH = MAX_IDEMPOTENCY_KEY - len(
    _IDEMPOTENCY_NAMESPACE.format(prefix="0" * 2 * PREFIX_BYTES)
)


@router.post(
    "/messages",
    response={202: MessageOut, 200: MessageOut, **error_responses(409, 413)},
    auth=ApiKeyAuth(ApiScope.SEND),
    operation_id="message_send",
    by_alias=True,
    summary="Send a message",
    description=(
        "Queue a message in the outbox. Answers 202 with the message once it is stored "
        "durably; it is sent by the worker. With an `Idempotency-Key` this key already "
        "used, answers 200 with the message queued the first time (header "
        "`Idempotent-Replayed: true`) and queues nothing."
    ),
)
def message_send(
    request: HttpRequest,
    response: HttpResponse,
    payload: SendIn,
    idempotency_key: str | None = Header(
        None,
        alias="Idempotency-Key",
        description=(
            "Any unique string of printable ASCII (a UUID is best), at most "
            f"{MAX_IDEMPOTENCY_KEY_LENGTH} characters; retries send the same one."
        ),
    ),
) -> Status[dict[str, Any]]:
    api_key = request_api_key(request)
    sender = sender_resolve(value=payload.from_, api_key=api_key)
    try:
        [message] = message_compose(
            request=_compose_request(payload, sender, api_key=api_key, key=idempotency_key)
        )
    except IdempotencyConflictError as error:
        # The key of another message (message_enqueue compares them): named as it came in.
        raise ConflictError(error.message, field="Idempotency-Key") from None
    if message.is_replay:
        response["Idempotent-Replayed"] = "true"
        return Status(200, _message_out(message))
    return Status(202, _message_out(message))


@router.get(
    "/messages/{message_id}",
    response={200: MessageOut, **error_responses(404)},
    auth=ApiKeyAuth(ApiScope.READ),
    operation_id="message_get",
    by_alias=True,
    summary="Get a message with per-recipient status and attempts",
)
def message_get(
    request: HttpRequest, message_id: int = Path(..., ge=1, le=MAX_ID)
) -> dict[str, Any]:
    message = api_message_get(api_key=request_api_key(request), pk=message_id)
    return _message_out(message)


@router.get(
    "/messages",
    response={200: MessageListOut, **error_responses()},
    auth=ApiKeyAuth(ApiScope.READ),
    operation_id="message_list",
    by_alias=True,
    summary="List messages, newest first",
    description="Filters combine with AND. Follow `next_cursor` for older messages.",
)
def message_list(request: HttpRequest, query: Query[MessageListQuery]) -> dict[str, Any]:
    query_check_known(request, MessageListQuery)
    for name, value in (("recipient", query.recipient), ("from", query.from_)):
        if value is not None:
            reject_control_characters(value, label=name, what="the filter", field=name)
    page = api_message_page(
        api_key=request_api_key(request),
        filters=MessageListFilters(
            status=query.status,
            lane=query.lane,
            recipient=query.recipient.strip() if query.recipient else None,
            sender=query.from_.strip() if query.from_ else None,
            created_after=aware_datetime(query.created_after, field="created_after"),
            created_before=aware_datetime(query.created_before, field="created_before"),
        ),
        before=cursor_decode(query.cursor, kind=CURSOR_KIND) if query.cursor else None,
        limit=query.limit,
    )
    is_paused = server_is_any_paused()
    return {
        "items": [
            _summary_out(message, page.recipient_counts.get(message.id, 0), is_paused=is_paused)
            for message in page.messages
        ],
        "next_cursor": (
            cursor_encode(kind=CURSOR_KIND, pk=page.next_before) if page.next_before else None
        ),
    }


@router.post(
    "/messages/{message_id}/cancel",
    response={200: MessageOut, **error_responses(404, 409)},
    auth=ApiKeyAuth(ApiScope.SEND),
    operation_id="message_cancel",
    by_alias=True,
    summary="Cancel what is not sent yet",
    description=(
        "Cancels every recipient not yet delivered. 409 when the message is being sent "
        "right now or is already finished."
    ),
)
def message_cancel_view(
    request: HttpRequest, message_id: int = Path(..., ge=1, le=MAX_ID)
) -> dict[str, Any]:
    message = api_message_get(api_key=request_api_key(request), pk=message_id)
    try:
        message = message_cancel(message=message)
    except ValidationError as error:
        raise ConflictError(error.message) from None
    return _message_out(message)


# --- request → ComposeRequest -----------------------------------------------------------


def _compose_request(
    payload: SendIn, sender: Sender, *, api_key: ApiKey, key: str | None
) -> ComposeRequest:
    """The request as Postroom's compose service reads it (postroom.compose.services), with
    the addresses parsed and the attachments decoded."""
    to = _addresses(payload.to, kind="To", field="to")
    cc = _addresses(payload.cc, kind="Cc", field="cc")
    bcc = _addresses(payload.bcc, kind="Bcc", field="bcc")
    reply_to = _addresses(payload.reply_to, kind="Reply-To", field="reply_to")
    attachments = _attachments(payload.attachments)
    not_before_at = _send_at(payload.send_at)
    return ComposeRequest(
        source=Source.API,
        user=sender.user,
        from_=sender.address,
        to=to,
        cc=cc,
        bcc=bcc,
        reply_to=reply_to,
        subject=payload.subject,
        text=payload.text,
        html=payload.html,
        template=payload.template,
        data=payload.data,
        attachments=attachments,
        headers=payload.headers,
        lane=Lane(payload.lane),
        not_before_at=not_before_at,
        idempotency_key=_stored_idempotency_key(api_key, key),
    )


def _addresses(values: list[RecipientIn], *, kind: str, field: str) -> list[Address]:
    addresses = []
    for index, value in enumerate(values, start=1):
        label = f"Recipient {index} ({kind})"
        if isinstance(value, AddressIn):
            parsed = parse_address(value.email, label=label, field=field)
            check_header_phrase(value.name, label=label, what="the name", field=field)
            addresses.append(Address(" ".join(value.name.split()), parsed.addr_spec))
        else:
            addresses.append(parse_address(value, label=label, field=field))
    return addresses


def _attachments(values: list[AttachmentIn]) -> list[Attachment]:
    limit = settings.POSTROOM_MAX_MESSAGE_BYTES
    attachments = []
    total = 0
    for index, value in enumerate(values, start=1):
        # 4 base64 characters carry 3 bytes: refuse an oversize file before decoding it.
        total += len(value.content) * 3 // 4
        if total > limit + 3:
            raise ValidationError(
                f"Attachment {index}: the attachments are larger than the limit of "
                f"{limit:,} bytes (POSTROOM_MAX_MESSAGE_BYTES); send fewer or smaller files.",
                field="attachments",
            )
        try:
            data = base64.b64decode(value.content.encode("ascii"), validate=True)
        except (UnicodeError, ValueError, binascii.Error):
            raise ValidationError(
                f"Attachment {index} ({value.filename!r}): the content is not valid base64 "
                "(RFC 4648 §4: A–Z, a–z, 0–9, + and /, padded with =).",
                field="attachments",
            ) from None
        attachments.append(
            Attachment(filename=value.filename, content_type=value.content_type, data=data)
        )
    return attachments


def _send_at(value: dt.datetime | None) -> dt.datetime | None:
    send_at = aware_datetime(value, field="send_at")
    if send_at is None:
        return None
    if send_at - timezone.now() > MAX_SCHEDULE_AHEAD:
        raise ValidationError(
            f"send_at: schedule at most {MAX_SCHEDULE_AHEAD.days} days ahead.", field="send_at"
        )
    return send_at  # a time in the past means now


def _stored_idempotency_key(api_key: ApiKey, value: str | None) -> str | None:
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_IDEMPOTENCY_KEY_LENGTH or not all(
        "!" <= char <= "~" for char in value
    ):
        raise ValidationError(
            f"Idempotency-Key: use 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII "
            "characters without spaces, such as a UUID.",
            field="Idempotency-Key",
        )
    return _IDEMPOTENCY_NAMESPACE.format(prefix=api_key.prefix) + value


# --- Message → response ----------------------------------------------------------------


def _summary_out(message: Message, recipient_count: int, *, is_paused: bool) -> dict[str, Any]:
    is_held = is_paused and message.status == MessageStatus.QUEUED
    return {
        "id": message.pk,
        "message_id": message.message_id,
        "status": "held" if is_held else message.status,
        "lane": message.lane,
        "source": message.source,
        "from": message.from_header,
        "envelope_from": message.envelope_from,
        "subject": message.subject,
        "created_at": message.created_at,
        "send_at": message.not_before_at,
        "finished_at": message.finished_at,
        "attempt_count": message.attempt_count,
        "recipient_count": recipient_count,
    }


def _message_out(message: Message) -> dict[str, Any]:
    records = api_message_records(message=message)
    by_recipient: dict[int | None, list[dict[str, Any]]] = {}
    addresses = {recipient.pk: recipient.address for recipient in records.recipients}
    for attempt in records.attempts:
        by_recipient.setdefault(attempt.recipient_id, []).append(
            {
                "at": attempt.at,
                "recipient": addresses.get(attempt.recipient_id or 0),
                "server": attempt.server,
                "stage": attempt.stage,
                "code": attempt.code,
                "enhanced_code": attempt.enhanced_code,
                "text": attempt.text,
                "classification": attempt.classification,
            }
        )
    return {
        **_summary_out(message, len(records.recipients), is_paused=server_is_any_paused()),
        "recipients": [
            {
                "address": recipient.address,
                "kind": recipient.kind,
                "status": recipient.status,
                "attempt_count": recipient.attempt_count,
                "last_code": recipient.last_code,
                "last_enhanced_code": recipient.last_enhanced_code,
                "last_text": recipient.last_text,
                "sent_at": recipient.sent_at,
                "attempts": by_recipient.get(recipient.pk, []),
            }
            for recipient in records.recipients
        ],
        "attempts": by_recipient.get(None, []),
        "attempt_total": records.attempt_total,
    }
