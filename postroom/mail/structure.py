"""Read a built message back before it is stored: the last guard against header injection.

`build_message` checks every field it is given, and `header_text` refuses what the `email`
package would turn into a line break. This module trusts neither: it parses the bytes that were
built, as a receiving server does, and checks that

* the header block holds exactly the fields the builder set, in order, each once;
* each MIME part holds exactly the Content-* fields the builder set, and there are no more
  parts than it made (a decoded CR LF in a file name would start new ones);
* the addresses, the subject and the file names read back as they were given.

A mismatch means a bug in Postroom or in the `email` package of the Python it runs on: the
message is refused (`UnsafeMessageError`, never sent) and the reason is logged, without values.

The bulk renderer writes fixed MIME heads and encoded bodies, and per recipient only header
values: it counts the header fields it wrote (`check_header_count`), as a full parse per
message would halve its speed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email import policy as email_policy
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage, Message
from email.parser import BytesParser

from postroom.core.errors import UnsafeMessageError

logger = logging.getLogger(__name__)

# compat32 keeps header values as they are on the wire, and parses 3-4x faster than the
# default policy; header objects are made only for the fields read back below.
_WIRE = BytesParser(policy=email_policy.compat32)
ADDRESS_FIELDS = ("From", "To", "Cc", "Reply-To")


@dataclass(frozen=True)
class MessageShape:
    """What a built message must read back as."""

    fields: tuple[tuple[str, ...], ...]  # the field names of each MIME part, in walk order
    addresses: Mapping[str, tuple[tuple[str, str], ...]]  # field -> (display name, addr-spec)
    subject: str
    filenames: tuple[str, ...]


def message_shape(
    msg: EmailMessage,
    *,
    addresses: Mapping[str, Sequence[HeaderAddress]],
    subject: str,
    filenames: Sequence[str],
) -> MessageShape:
    """The shape of `msg` as the builder made it (before it is turned into bytes)."""
    return MessageShape(
        fields=tuple(tuple(part.keys()) for part in msg.walk()),
        addresses={
            name: tuple((a.display_name, a.addr_spec) for a in values)
            for name, values in addresses.items()
            if values
        },
        subject=subject,
        filenames=tuple(filenames),
    )


def check_message_shape(raw: bytes, shape: MessageShape) -> None:
    """Raise UnsafeMessageError when `raw` does not read back as `shape`."""
    problem = _shape_problem(raw, shape)
    if problem is not None:
        _refuse(problem)


def count_header_fields(head: str) -> int:
    """How many header fields `head` (a header block, CRLF line ends) holds.

    Every field ends with a CRLF that is not followed by a blank (RFC 5322 §2.2.3: a folded
    line goes on with WSP), the last one included.
    """
    return head.count("\r\n") - head.count("\r\n ") - head.count("\r\n\t")


def check_header_count(head: str, expected: int) -> None:
    """Raise UnsafeMessageError when a rendered header block has more or fewer fields."""
    found = count_header_fields(head)
    if found != expected:
        _refuse(f"the header block has {found} fields, {expected} were written")


def _refuse(problem: str) -> None:
    logger.error("Refused to queue a message that does not read back as built: %s.", problem)
    raise UnsafeMessageError(
        "Postroom refused to queue this message: its bytes did not read back as it built them "
        f"({problem}). Nothing was queued or sent. This is a bug; please report it with the "
        "time, which is in Postroom's log."
    )


def _shape_problem(raw: bytes, shape: MessageShape) -> str | None:
    parsed = _WIRE.parsebytes(raw)
    parts = list(parsed.walk())
    found = tuple(tuple(part.keys()) for part in parts)
    if len(found) != len(shape.fields):
        return f"{len(found)} MIME parts read back, {len(shape.fields)} were built"
    for index, (got, want) in enumerate(zip(found, shape.fields, strict=True)):
        if [name.lower() for name in got] != [name.lower() for name in want]:
            where = "the header block" if index == 0 else f"MIME part {index}"
            return f"{where} reads back with the fields {', '.join(got)}; built: {', '.join(want)}"
    for name, expected in shape.addresses.items():
        if _read_addresses(parsed, name) != tuple(_squeezed(a) for a in expected):
            return f"the {name} field does not read back as the addresses given"
    if _without_blanks(_read_text(parsed, "Subject")) != _without_blanks(shape.subject):
        return "the Subject field does not read back as the subject given"
    filenames = tuple(file for part in parts if (file := part.get_filename()) is not None)
    if filenames != shape.filenames:
        return "the attachments' file names do not read back as given"
    return None


def _read_addresses(parsed: Message, name: str) -> tuple[tuple[str, str], ...]:
    header = email_policy.default.header_factory(name, _read_raw(parsed, name))
    return tuple(_squeezed((a.display_name, a.addr_spec)) for a in header.addresses)  # type: ignore[attr-defined]


def _read_text(parsed: Message, name: str) -> str:
    return str(email_policy.default.header_factory(name, _read_raw(parsed, name)))


def _read_raw(parsed: Message, name: str) -> str:
    # The stored value, not get(): compat32 wraps a value with 8-bit bytes (an SMTPUTF8
    # header) in a Header that shows them as U+FFFD; stored, they are surrogate escapes.
    value = next((v for n, v in parsed.raw_items() if n.lower() == name.lower()), "")
    if not value.isascii():
        value = value.encode("ascii", "surrogateescape").decode("utf-8", "replace")
    return value.replace("\r\n", "")  # unfold (RFC 5322 §2.2.3)


def _squeezed(address: tuple[str, str]) -> tuple[str, str]:
    display_name, addr_spec = address
    return _without_blanks(display_name), addr_spec


def _without_blanks(text: str) -> str:
    # Folding may move or drop a blank between encoded words (see postroom.mail.folding); the
    # words themselves must come back unchanged.
    return "".join(text.split())
