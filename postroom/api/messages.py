"""/api/v1/messages: send, read, list and cancel outbox messages."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Header, Path, Query, Router, Status

from postroom.accounts.models import ApiKey, ApiScope
from postroom.api.auth import ApiKeyAuth, request_api_key
from postroom.api.cursors import MAX_ID, cursor_decode, cursor_encode
from postroom.api.datetimes import aware_datetime
from postroom.api.errors import ConflictError, postroom_error_body, schema_error_body
from postroom.api.schemas import (
    MAX_BATCH,
    BatchIn,
    BatchOut,
    InvalidBatchItem,
    MessageListOut,
    MessageListQuery,
    MessageOut,
    SendBatchItemIn,
    SendIn,
    error_responses,
    query_check_known,
)
from postroom.api.selectors import (
    MessageListFilters,
    MessageRecords,
    api_message_get,
    api_message_page,
    api_message_recipient_counts,
    api_message_records,
)
from postroom.api.senders import CompanySender, Sender, company_sender_get, sender_resolve
from postroom.api.sending import (
    MAX_IDEMPOTENCY_KEY_LENGTH,
    api_message_prepare,
    compose_request,
)
from postroom.core.errors import PostroomError, ValidationError
from postroom.mail.header_text import reject_control_characters
from postroom.outbox.actions import message_cancel
from postroom.outbox.batch import message_enqueue_batch, message_enqueue_grouped
from postroom.outbox.enqueue import IdempotencyConflictError, PreparedMessage
from postroom.outbox.models import Message, MessageStatus, Recipient
from postroom.outbox.pauses import server_is_any_paused

router = Router(tags=["Messages"])
CURSOR_KIND = "m1"


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
    prepared = api_message_prepare(
        request=compose_request(
            payload, sender, api_key=api_key, key=idempotency_key, key_field="Idempotency-Key"
        )
    )
    message = message_enqueue_grouped(prepared)
    if isinstance(message, IdempotencyConflictError):
        # The key of another message (message_enqueue compares them): named as it came in.
        raise ConflictError(message.message, field="Idempotency-Key")
    if message.is_replay:
        response["Idempotent-Replayed"] = "true"
        return Status(200, _message_out(message))
    return Status(202, _message_out(message, records=_queued_records(message, prepared)))


@router.post(
    "/messages/batch",
    response={200: BatchOut, **error_responses(413)},
    auth=ApiKeyAuth(ApiScope.SEND),
    operation_id="message_send_batch",
    by_alias=True,
    summary=f"Send up to {MAX_BATCH} messages",
    description=(
        f"Queue 1 to {MAX_BATCH} messages, each checked on its own as a single send would "
        "check it, and all those that pass stored in one transaction. Answers 200 once they "
        "are stored durably, with one item per message: its status (202 queued, 200 "
        "queued before with its `idempotency_key`, or the status of its error) and the "
        "message or the error. A batch counts as one request against the key's rate limit."
    ),
)
def message_send_batch(request: HttpRequest, payload: BatchIn) -> dict[str, Any]:
    api_key = request_api_key(request)
    checked = _batch_prepare(payload.checked_messages(), api_key=api_key)
    stored = iter(message_enqueue_batch([item for item in checked if not isinstance(item, dict)]))
    outcomes = [item if isinstance(item, dict) else next(stored) for item in checked]
    replays = [o.pk for o in outcomes if isinstance(o, Message) and o.is_replay]
    counts = api_message_recipient_counts(ids=replays) if replays else {}
    is_paused = server_is_any_paused()
    items = [
        _batch_item_out(index, outcome, checked[index], counts, is_paused=is_paused)
        for index, outcome in enumerate(outcomes)
    ]
    statuses = [item["status"] for item in items]
    return {
        "queued": statuses.count(202),
        "replayed": statuses.count(200),
        "failed": len(statuses) - statuses.count(202) - statuses.count(200),
        "items": items,
    }


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


# --- batches ---------------------------------------------------------------------------


def _batch_prepare(
    messages: list[SendBatchItemIn | InvalidBatchItem], *, api_key: ApiKey
) -> list[PreparedMessage | dict[str, Any]]:
    """Each message checked and built apart, as a single send would: prepared to be stored,
    or its error (`_batch_error`). The company and each sender are looked up once."""
    company = cache(company_sender_get)
    senders: dict[str | None, Sender | PostroomError] = {}
    checked: list[PreparedMessage | dict[str, Any]] = []
    for item in messages:
        if isinstance(item, InvalidBatchItem):
            checked.append(_batch_error(400, schema_error_body(item.errors, is_located=False)))
            continue
        try:
            if item.from_ not in senders:
                senders[item.from_] = _sender_or_error(item.from_, api_key, company)
            sender = senders[item.from_]
            if isinstance(sender, PostroomError):
                raise sender
            request = compose_request(
                item, sender, api_key=api_key, key=item.idempotency_key, key_field="idempotency_key"
            )
            checked.append(api_message_prepare(request=request))
        except PostroomError as error:
            checked.append(_batch_error(error.http_status, postroom_error_body(error)))
    return checked


def _sender_or_error(
    value: str | None, api_key: ApiKey, company: Callable[[], CompanySender]
) -> Sender | PostroomError:
    try:
        return sender_resolve(value=value, api_key=api_key, company=company)
    except PostroomError as error:
        return error


def _batch_error(status: int, error: dict[str, Any]) -> dict[str, Any]:
    return {"status": status, "message": None, "error": error}


def _batch_item_out(
    index: int,
    outcome: Message | IdempotencyConflictError | dict[str, Any],
    checked: PreparedMessage | dict[str, Any],
    replay_counts: dict[int, int],
    *,
    is_paused: bool,
) -> dict[str, Any]:
    if isinstance(outcome, IdempotencyConflictError):
        # As for a single send's key: this message's key, named as it came in.
        error = ConflictError(outcome.message, field="idempotency_key")
        outcome = _batch_error(error.http_status, postroom_error_body(error))
    if isinstance(outcome, dict):
        return {"index": index, **outcome}
    assert isinstance(checked, PreparedMessage)  # a message came of it
    # A new message's recipients are those it was stored with: nothing to read back.
    count = replay_counts.get(outcome.pk, 0) if outcome.is_replay else len(checked.recipients)
    return {
        "index": index,
        "status": 200 if outcome.is_replay else 202,
        "message": _summary_out(outcome, count, is_paused=is_paused),
        "error": None,
    }


# --- Message → response ----------------------------------------------------------------


def _queued_records(message: Message, prepared: PreparedMessage) -> MessageRecords:
    """The records of a message just stored, from what was stored rather than read back:
    every recipient queued, no attempt yet."""
    recipients = [
        Recipient(message=message, address=address, kind=kind)
        for address, kind in prepared.recipients
    ]
    return MessageRecords(recipients=recipients, attempts=[], attempt_total=0)


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


def _message_out(message: Message, *, records: MessageRecords | None = None) -> dict[str, Any]:
    records = records or api_message_records(message=message)
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
