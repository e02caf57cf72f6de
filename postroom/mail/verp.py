"""The tagged return path (VERP): an envelope sender that names the message it came with.

With a bounce address `bounces@example.com`, message 4711 leaves with the envelope sender
`bounces+m4711-3f9c0a1b2c4d@example.com`. A bounce goes to the envelope sender (RFC 5321
§4.5.5), so the address a bounce arrives at says which message bounced, whatever the
bouncing server wrote (or failed to write) in its report.

The tag carries an HMAC of the message's number under a key the caller derives from its
secret, so anyone who can mail the bounce mailbox cannot fail an arbitrary message by
writing a bounce to `bounces+m1-...`: without the key the tag cannot be made.

Pure: no Django, no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import re

# Twelve hex digits are 48 bits: a forger must guess among 2**48 tags per message. Hex and
# not base64: some servers lower-case the local part of the address they bounce to.
TAG_DIGITS = 12
SEPARATOR = "+"
_TAG = re.compile(rf"m(?P<pk>[1-9][0-9]{{0,18}})-(?P<mac>[0-9a-f]{{{TAG_DIGITS}}})")
# RFC 5321 §4.5.3.1.1: a local part of at most 64 octets.
LOCAL_PART_MAX = 64


def _mac(message_pk: int, key: bytes) -> str:
    digest = hmac.new(key, f"postroom-return-path:{message_pk}".encode(), hashlib.sha256)
    return digest.hexdigest()[:TAG_DIGITS]


def return_path_tagged(bounce_address: str, *, message_pk: int, key: bytes) -> str:
    """The envelope sender for message `message_pk`: the bounce address with its tag."""
    local, _, domain = bounce_address.rpartition("@")
    tagged = f"{local}{SEPARATOR}m{message_pk}-{_mac(message_pk, key)}"
    if not local or not domain or len(tagged) > LOCAL_PART_MAX:
        # A bounce address too long to carry the tag: send with it untagged rather than
        # with an address servers refuse.
        return bounce_address
    return f"{tagged}@{domain}"


def return_path_message(address: str, *, bounce_address: str, key: bytes) -> int | None:
    """The message a bounce sent to `address` belongs to, or None when `address` is not a
    tagged form of `bounce_address` or its tag does not verify (forged, or another key)."""
    local, _, domain = address.strip().rpartition("@")
    bounce_local, _, bounce_domain = bounce_address.rpartition("@")
    if not bounce_local or domain.lower() != bounce_domain.lower():
        return None
    base, separator, tag = local.rpartition(SEPARATOR)
    if not separator or base.lower() != bounce_local.lower():
        return None
    match = _TAG.fullmatch(tag.lower())
    if match is None:
        return None
    message_pk = int(match["pk"])
    if not hmac.compare_digest(match["mac"], _mac(message_pk, key)):
        return None
    return message_pk
