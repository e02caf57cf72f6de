"""A send request as Postroom's compose service reads it: the single send and the batch
(postroom.api.messages: POST /messages and /messages/batch) read each message the same way.

Addresses are parsed, attachments decoded, `send_at` bounded and the idempotency key put in
the calling key's own namespace here; everything else about the message is checked by
`compose_prepare`'s rules for the API (postroom.compose.services.API_MESSAGE).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt

from django.conf import settings
from django.utils import timezone

from postroom.accounts.api_keys import PREFIX_BYTES
from postroom.accounts.models import ApiKey
from postroom.api.datetimes import aware_datetime
from postroom.api.schemas import AddressIn, AttachmentIn, RecipientIn, SendIn
from postroom.api.senders import Sender
from postroom.compose.services import ComposeRequest, compose_prepare
from postroom.core.errors import ValidationError
from postroom.mail.addresses import Address, parse_address
from postroom.mail.header_text import check_header_phrase
from postroom.mail.message import Attachment
from postroom.outbox.enqueue import MAX_IDEMPOTENCY_KEY, PreparedMessage, message_prepare
from postroom.outbox.models import Lane, Source

# Scheduled sending is for the near future (tomorrow morning, the end of the month);
# mail planned further ahead belongs in a report schedule or a campaign.
MAX_SCHEDULE_AHEAD = dt.timedelta(days=366)
# An idempotency key is stored as "api:<key prefix>:<key>" so that two systems that both
# send "order-1042" do not get each other's message: 13 of the column's characters are ours.
_IDEMPOTENCY_NAMESPACE = "api:{prefix}:"
MAX_IDEMPOTENCY_KEY_LENGTH = MAX_IDEMPOTENCY_KEY - len(
    _IDEMPOTENCY_NAMESPACE.format(prefix="0" * 2 * PREFIX_BYTES)
)


def api_message_prepare(*, request: ComposeRequest) -> PreparedMessage:
    """Check and build the one email of an API request, ready to be stored (with others, by
    postroom.outbox.batch); raises the PostroomError a single send answers with."""
    _, [composed] = compose_prepare(request=request)  # the API sends one email to all
    return message_prepare(
        email=composed.email,
        source=request.source,
        lane=request.lane,
        sender_user=request.user,
        idempotency_key=request.idempotency_key,
        not_before_at=request.not_before_at,
    )


def compose_request(
    payload: SendIn, sender: Sender, *, api_key: ApiKey, key: str | None, key_field: str
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
        idempotency_key=stored_idempotency_key(api_key, key, field=key_field),
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


def stored_idempotency_key(api_key: ApiKey, value: str | None, *, field: str) -> str | None:
    """The key as stored: namespaced per API key (see _IDEMPOTENCY_NAMESPACE)."""
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_IDEMPOTENCY_KEY_LENGTH or not all(
        "!" <= char <= "~" for char in value
    ):
        raise ValidationError(
            f"{field}: use 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII "
            "characters without spaces, such as a UUID.",
            field=field,
        )
    return _IDEMPOTENCY_NAMESPACE.format(prefix=api_key.prefix) + value
