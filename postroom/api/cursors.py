"""Opaque cursors for keyset pagination: the id of the last row of a page, with its kind.

Clients pass `next_cursor` back unchanged and never build one, so its form may change;
a cursor of one list (messages) given to another (contacts) is refused.
"""

from __future__ import annotations

import base64
import binascii

from postroom.core.errors import ValidationError

# Ids are 64-bit (BigAutoField); a larger number cannot name a row, and SQLite refuses it.
MAX_ID = 2**63 - 1


class InvalidCursorError(ValidationError):
    code = "invalid_cursor"


def cursor_encode(*, kind: str, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{pk}".encode()).decode().rstrip("=")


def cursor_decode(cursor: str, *, kind: str) -> int:
    bad = InvalidCursorError(
        "This cursor is not one Postroom gave out for this list; pass the `next_cursor` of "
        "the previous page unchanged, or leave it out for the first page.",
        field="cursor",
    )
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
    except (UnicodeError, ValueError, binascii.Error):
        raise bad from None
    found_kind, _, number = raw.partition(":")
    if found_kind != kind or not number.isascii() or not number.isdigit():
        raise bad
    pk = int(number)
    if not 1 <= pk <= MAX_ID:
        raise bad
    return pk
