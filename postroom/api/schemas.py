"""The API's request and response shapes; they are also its OpenAPI documentation.

Schemas check shape and obvious bounds only. Whether an address, a header or an attachment
is acceptable is decided by the message builder (postroom.mail.message), the same rules for
every way mail enters Postroom.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, cast

from django.http import HttpRequest
from ninja import Field, Schema
from pydantic import (
    BeforeValidator,
    ConfigDict,
    ModelWrapValidatorHandler,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)
from pydantic import ValidationError as SchemaError
from pydantic_core import PydanticCustomError

from postroom.core.errors import ValidationError
from postroom.outbox.models import MessageStatus
from postroom.outbox.selectors import SHOWN_ATTEMPTS

# A header line holds at most 998 characters (RFC 5322 §2.1.1): an address written longer
# cannot be put in one, so longer input is refused before it is parsed.
MAX_ADDRESS_TEXT = 998
# Past 1,000 recipients one message is a mailing list; campaigns send one message per
# person, with unsubscribe, which is what a list of that size needs.
MAX_RECIPIENTS_PER_FIELD = 1000
# A template's name is at most 200 characters (postroom.compose.email_templates).
MAX_TEMPLATE_REF = 200
# Most file systems cap a file name at 255 bytes (postroom.mail.message.MAX_FILENAME_LENGTH).
MAX_FILENAME = 255
# RFC 6838 §4.2: type and subtype names are at most 127 characters each.
MAX_CONTENT_TYPE = 255
# One page of a list: small enough to answer fast, as list APIs commonly cap it.
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 50

Lane = Literal["transactional", "bulk"]
StoredStatus = Literal[
    "queued",
    "sending",
    "sent",
    "captured",
    "partial",
    "deferred",
    "uncertain",
    "failed",
    "cancelled",
]
assert set(StoredStatus.__args__) == set(MessageStatus.values)  # type: ignore[attr-defined]
# In answers, a queued message is "held" while sending is paused: it will not leave until
# an administrator fixes the settings (docs/outbox.md).
Status = Literal[StoredStatus, "held"]


class _Plain(Schema):
    """A shape of the API's own data, JSON or dictionaries: never ORM objects."""

    @model_validator(mode="wrap")
    @classmethod
    def _run_root_validator(
        cls, values: Any, handler: ModelWrapValidatorHandler[Any], info: ValidationInfo
    ) -> Any:
        # Replaces ninja's Schema validator of this name, which wraps every value in a
        # DjangoGetter made for ORM objects, and validates input twice when extra fields are
        # forbidden. Requests and answers here are JSON and dictionaries: validated once, as
        # they are, the result is the same, and a batch of 500 messages spent half its time
        # in that validator.
        return handler(values)


class _Strict(_Plain):
    # An unknown field is most often a typo ("subjet"): say so instead of ignoring it.
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def query_check_known(request: HttpRequest, schema: type[Schema]) -> None:
    """Refuse a query parameter `schema` does not have: most often a typo ("recipent"),
    which would otherwise be ignored and list everything."""
    known = [field.alias or name for name, field in schema.model_fields.items()]
    for name in request.GET:
        if name not in known:
            raise ValidationError(
                f"Unknown query parameter {name!r}; this list takes {', '.join(known)}.",
                field=name,
            )


# --- errors ----------------------------------------------------------------------------


class ErrorDetail(_Plain):
    field: str | None
    message: str


class ErrorBody(_Plain):
    code: str = Field(description="Stable, for programs: invalid, unauthenticated, ...")
    message: str = Field(description="For people: what is wrong and what to do.")
    field: str | None = Field(None, description="The request field at fault, if one is.")
    details: list[ErrorDetail] | None = Field(
        None, description="Every problem found, when the request did not fit the schema."
    )


class ErrorOut(_Plain):
    error: ErrorBody


def error_responses(*statuses: int) -> dict[int, type[ErrorOut]]:
    """The error answers an operation documents: any call can meet 400, 401, 403 and 429."""
    return dict.fromkeys((400, 401, 403, 429, *statuses), ErrorOut)


# --- sending ---------------------------------------------------------------------------


class AddressIn(_Strict):
    email: str = Field(max_length=MAX_ADDRESS_TEXT, examples=["bob@example.org"])
    name: str = Field("", max_length=MAX_ADDRESS_TEXT, examples=["Bob Jones"])


RecipientIn = str | AddressIn


class AttachmentIn(_Strict):
    filename: str = Field(max_length=MAX_FILENAME, examples=["invoice-1042.pdf"])
    content_type: str = Field(max_length=MAX_CONTENT_TYPE, examples=["application/pdf"])
    content: str = Field(description="The file's bytes, base64-encoded (RFC 4648 §4).")


class SendIn(_Strict):
    from_: str | None = Field(
        None,
        alias="from",
        max_length=MAX_ADDRESS_TEXT,
        description=(
            'Who the mail is from: "company" (the company address), a user\'s login or '
            "email address, or an address the key lists as an allowed From. Omitted: the "
            "key's sender user if it has one, else the company."
        ),
        examples=["alice"],
    )
    to: list[RecipientIn] = Field(
        default_factory=list,
        max_length=MAX_RECIPIENTS_PER_FIELD,
        description='Addresses: "bob@example.org", "Bob <bob@example.org>" or objects.',
        examples=[["Bob Jones <bob@example.org>"]],
    )
    cc: list[RecipientIn] = Field(default_factory=list, max_length=MAX_RECIPIENTS_PER_FIELD)
    bcc: list[RecipientIn] = Field(
        default_factory=list,
        max_length=MAX_RECIPIENTS_PER_FIELD,
        description="In the envelope only, never in a header.",
    )
    reply_to: list[RecipientIn] = Field(default_factory=list, max_length=MAX_RECIPIENTS_PER_FIELD)
    subject: str = Field("", examples=["Your invoice 1042"])
    text: str | None = Field(None, description="The plain-text body.")
    html: str | None = Field(
        None, description="The HTML body; give a text body too, for the best delivery."
    )
    template: str | None = Field(
        None,
        max_length=MAX_TEMPLATE_REF,
        coerce_numbers_to_str=True,
        description=(
            "A saved email template (its id or name, as on the Templates page) to send "
            "instead of subject, text and html. Its merge fields are filled from `data`, "
            "`contact` (the To recipient when there is exactly one), `user` (the sender) "
            "and `company`."
        ),
        examples=["Quote follow-up"],
    )
    data: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            'Values for the template\'s merge fields: {"order": {"number": "1042"}} '
            "fills {{ order.number }}. A key named contact, user or company replaces "
            "Postroom's own values. Only with `template`."
        ),
        examples=[{"order": {"number": "1042", "total": "€ 120.00"}}],
    )
    attachments: list[AttachmentIn] = Field(
        default_factory=list,
        description="Files; their total is capped by POSTROOM_MAX_MESSAGE_BYTES.",
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Extra headers from the allow-list: X-*, List-*, Auto-Submitted, Precedence, "
            "In-Reply-To, References, Keywords, Comments, Organization, Importance, "
            "Priority, Feedback-ID."
        ),
    )
    lane: Lane = Field(
        "transactional",
        description="transactional (people waiting for it) or bulk (never ahead of them).",
    )
    send_at: dt.datetime | None = Field(
        None,
        description=(
            "Send no earlier than this (ISO 8601). Without an offset, Postroom's time zone. "
            "At most 366 days ahead."
        ),
    )


# --- messages --------------------------------------------------------------------------


class AttemptOut(_Plain):
    at: dt.datetime
    recipient: str | None = Field(description="None: the attempt failed for every recipient.")
    server: str
    stage: str = Field(description="connect, tls, auth, mail, rcpt, data or end_of_data")
    code: int | None
    enhanced_code: str
    text: str
    classification: str


class RecipientOut(_Plain):
    address: str
    kind: Literal["to", "cc", "bcc"]
    status: str
    attempt_count: int
    last_code: int | None
    last_enhanced_code: str
    last_text: str
    sent_at: dt.datetime | None
    attempts: list[AttemptOut]


class MessageSummaryOut(_Plain):
    model_config = ConfigDict(populate_by_name=True)

    id: int
    message_id: str = Field(description="The Message-ID header, as sent.")
    status: Status
    lane: Lane
    source: str
    from_: str = Field(alias="from")
    envelope_from: str
    subject: str
    created_at: dt.datetime
    send_at: dt.datetime | None
    finished_at: dt.datetime | None
    attempt_count: int
    recipient_count: int


class MessageOut(MessageSummaryOut):
    recipients: list[RecipientOut]
    attempts: list[AttemptOut] = Field(
        description="Attempts that concern no single recipient (connection, TLS, login)."
    )
    attempt_total: int = Field(
        description=f"All attempts recorded; at most the newest {SHOWN_ATTEMPTS} are listed."
    )


class MessageListOut(_Plain):
    items: list[MessageSummaryOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page."
    )


class MessageListQuery(_Strict):
    status: StoredStatus | None = None
    lane: Lane | None = None
    recipient: str | None = Field(
        None, max_length=MAX_ADDRESS_TEXT, description="An exact address (any case)."
    )
    from_: str | None = Field(
        None,
        alias="from",
        max_length=MAX_ADDRESS_TEXT,
        description="The envelope sender address, exact (any case).",
    )
    created_after: dt.datetime | None = None
    created_before: dt.datetime | None = None
    cursor: str | None = Field(None, max_length=100)
    limit: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)


# --- batches ---------------------------------------------------------------------------

# Messages per batch: an ERP's month-end run of 10,000 invoices in 20 requests (issue 13).
# 500 plain notices of a few KB each stay far within POSTROOM_MAX_REQUEST_BYTES; mail with
# large attachments is better sent one message a request.
MAX_BATCH = 500


class SendBatchItemIn(SendIn):
    idempotency_key: str | None = Field(
        None,
        description=(
            "This message's idempotency key, as the Idempotency-Key header of a single send: "
            "a key used before for the same message gives that message (status 200) and "
            "queues nothing; for another message it is this item's 409."
        ),
    )


class InvalidBatchItem:
    """A batch item that does not fit SendBatchItemIn, kept with its schema errors: they
    become that item's error, and the other items are sent."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors


def _item_or_invalid(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    try:
        return handler(value)
    except SchemaError as error:
        return InvalidBatchItem(
            cast(
                list[dict[str, Any]],
                error.errors(include_url=False, include_context=False, include_input=False),
            )
        )


def _at_most_max_batch(value: Any) -> Any:
    # Before the messages are checked one by one: an oversize batch costs nothing to refuse.
    if isinstance(value, list) and len(value) > MAX_BATCH:
        raise PydanticCustomError(
            "too_long",
            f"Send at most {MAX_BATCH} messages in one request, not {len(value):,}; split "
            "them into several batches.",
        )
    return value


class BatchIn(_Strict):
    messages: Annotated[
        list[Annotated[SendBatchItemIn, WrapValidator(_item_or_invalid)]],
        BeforeValidator(_at_most_max_batch),
    ] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description=(
            f"1 to {MAX_BATCH} messages, each with the fields of a single send and its own "
            "`idempotency_key`. Each is checked on its own: one that is refused does not "
            "stop the others."
        ),
    )

    def checked_messages(self) -> list[SendBatchItemIn | InvalidBatchItem]:
        """Each message as checked on its own: its fields, or its schema errors."""
        return cast(list[SendBatchItemIn | InvalidBatchItem], self.messages)


class BatchItemOut(_Plain):
    index: int = Field(description="The message's place in the request, from 0.")
    status: int = Field(
        description=(
            "What sending this message alone would have answered: 202 queued now, 200 "
            "queued before with this idempotency key (nothing queued), or an error's status "
            "(400, 403, 409)."
        )
    )
    message: MessageSummaryOut | None = Field(description="The message, for 202 and 200.")
    error: ErrorBody | None = Field(description="The error, as a single send's `error`.")


class BatchOut(_Plain):
    queued: int = Field(description="Messages queued by this request (status 202).")
    replayed: int = Field(description="Messages queued before with their idempotency key.")
    failed: int = Field(description="Messages refused; nothing of them was queued.")
    items: list[BatchItemOut] = Field(description="One per message, in the request's order.")


# --- keys ------------------------------------------------------------------------------


class KeyOut(_Plain):
    name: str
    prefix: str
    scopes: list[str]
    sender_user: str | None = Field(description="The login of the user it may send as.")
    allowed_from: list[str]
    rate_limit_per_minute: int
    created_at: dt.datetime
    last_used_at: dt.datetime | None
