"""Webhook signing, following the Standard Webhooks convention (pure: no I/O, no clock).

A secret reads `whsec_<base64>`; the decoded bytes are the HMAC key. Each request carries
`webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature: v1,<base64>`, the
HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}`. The receiver's side is in
docs/webhooks.md; the `standardwebhooks` library verifies these requests as they are.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from typing import Any

from postroom.core.errors import ValidationError

SECRET_PREFIX = "whsec_"  # noqa: S105 - the public prefix of every secret
# 32 bytes = 256 bits, within the 24 to 64 bytes the Standard Webhooks spec asks of a
# symmetric signing secret.
SECRET_BYTES = 32
_MIN_SECRET_BYTES = 24
SIGNATURE_VERSION = "v1"  # symmetric HMAC-SHA256, in the spec's naming
USER_AGENT = "Postroom-Webhooks/1"


def secret_generate() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_…` secret. The message never repeats the secret."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValidationError("A webhook secret starts with whsec_.", field="secret")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(
            "A webhook secret is whsec_ followed by base64.", field="secret"
        ) from None
    if len(key) < _MIN_SECRET_BYTES:
        raise ValidationError(
            f"A webhook secret needs at least {_MIN_SECRET_BYTES} bytes of key.", field="secret"
        )
    return key


def signature(*, key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def request_headers(
    *, keys: Sequence[bytes], webhook_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """Every header of one POST. The timestamp is the attempt's, so each retry is re-signed.

    One signature per key, space-separated, as the convention has it for rotation: the
    receiver accepts the request when any of them matches its secret.
    """
    if not keys:
        raise ValueError("at least one key is needed to sign")
    signatures = " ".join(
        signature(key=key, webhook_id=webhook_id, timestamp=timestamp, body=body) for key in keys
    )
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signatures,
    }


def payload_body(*, webhook_id: str, event_type: str, created_at: dt.datetime, data: Any) -> str:
    """The JSON posted: compact and ASCII-only, so its bytes are the same in any encoding a
    receiver's framework guesses, and a signature over them survives."""
    payload = {
        "id": webhook_id,
        "type": event_type,
        "created_at": created_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "data": data,
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True)
