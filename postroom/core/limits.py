"""The largest request body Postroom accepts: pure arithmetic on the settings that cap uploads.

The largest legitimate requests are an API send whose attachments fill
POSTROOM_MAX_MESSAGE_BYTES (sent as base64, so 4/3 of it, inside JSON) and a contact import
of POSTROOM_IMPORT_MAX_BYTES (inside a multipart form). A body larger than both, plus room for
the fields around them, is refused with 413 before a byte of it is read (see
postroom.core.middleware and `postroom run`).
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

# The fields, multipart boundaries and part headers (or the JSON) around the files; also the
# slack DATA_UPLOAD_MAX_MEMORY_SIZE leaves around an API send's base64.
FORM_SLACK_BYTES = 1024 * 1024


def base64_size(size: int) -> int:
    """The length of `size` bytes in base64: RFC 4648 §4, 4 characters per 3 bytes, padded."""
    return 4 * -(-size // 3)


def request_body_limit(*, max_message_bytes: int, import_max_bytes: int) -> int:
    """The largest body a legitimate request can have, from the settings that cap them."""
    api_send = base64_size(max_message_bytes) + FORM_SLACK_BYTES
    contact_import = import_max_bytes + FORM_SLACK_BYTES
    return max(api_send, contact_import)


def request_body_limit_check(value: int) -> int:
    """Refuse a POSTROOM_MAX_REQUEST_BYTES that is no size at all."""
    if value < 1:
        raise ImproperlyConfigured(
            f"POSTROOM_MAX_REQUEST_BYTES={value} is not a size: give a number of bytes, or "
            "leave it unset to derive it from POSTROOM_MAX_MESSAGE_BYTES and "
            "POSTROOM_IMPORT_MAX_BYTES."
        )
    return value
