"""The bytes of a typed message, built once at enqueue: fast where the bulk renderer can.

`postroom.mail.message.build_message` builds with the `email` package and parses the result
back: about 1 ms of CPU for a 2 KB text message, the largest cost of accepting one message
over the API. `postroom.mail.bulk` renders campaign mail without the package, byte for byte
what build_message writes (tests/mail/test_bulk.py), once a template is compiled (≈ 0.8 ms).

So each *shape* of message (its From, its Reply-To, the names of its custom headers, and
which of text and HTML it has) is compiled here once per process into such a template, whose
fields print the message's own subject, body and header values as given (`_Verbatim`, through
the renderer's FieldFiller seam), and every message of that shape renders in ≈ 20-60 µs.
The renderer checks what build_message checks of those values (the subject, each header
value, the body's characters) and counts the header fields it wrote
(postroom.mail.structure.check_header_count), as it does for campaigns, instead of parsing
the message back.

What the renderer does not do goes to build_message: several To recipients, Cc, attachments,
addresses that need SMTPUTF8 in a header. So does every message the fast path refuses, so that
an error reads exactly as before: an invalid message is always refused by build_message.
One difference: with both text and HTML, the multipart boundary comes from the shape, as a
campaign template's does, instead of from the content. Both are made of "=" runs that the
part encodings cannot produce, and a part that contains one is encoded so that it does not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from postroom.core.errors import PostroomError
from postroom.mail.addresses import Address, normalize_address
from postroom.mail.bulk import CompiledTemplate, compile_template
from postroom.mail.custom_headers import check_custom_headers
from postroom.mail.message import MAX_LINE_OCTETS, BuiltMessage, OutgoingEmail, build_message

# Shapes compiled per process. An install sends as a handful of senders with a few header
# sets; past this, the least recently used shape is compiled again when it comes back.
SHAPES_KEPT = 256
_SUBJECT, _TEXT, _HTML = "subject", "text", "html"


def message_build(
    email: OutgoingEmail,
    *,
    message_id: str,
    date: datetime,
    max_attachment_bytes: int | None = None,
) -> BuiltMessage:
    """Return what `build_message` returns for `email` (the same bytes, see the module doc)."""
    if len(email.to) == 1 and not email.cc and not email.attachments:
        built = _rendered(email, message_id=message_id, date=date)
        if built is not None:
            return built
    return build_message(
        email, message_id=message_id, date=date, max_attachment_bytes=max_attachment_bytes
    )


@dataclass(frozen=True)
class _Shape:
    """What a compiled template fixes: everything of a message but its values."""

    from_: Address
    reply_to: tuple[Address, ...]
    header_names: tuple[str, ...]
    has_text: bool
    has_html: bool


class _Verbatim:
    """A template field that prints one value as given: a whole subject, body or header."""

    is_static = False

    def __init__(self, name: str) -> None:
        self.name = name
        self.names = frozenset({name})

    def fill(self, values: Mapping[str, object]) -> str:
        value = values[self.name]
        assert isinstance(value, str)
        return value

    def split_lines(self) -> None:
        return None  # the renderer encodes the whole part, as build_message does


class _VerbatimFiller:
    """Compiles each field's source, a value's name, into a field printing that value."""

    def compile(self, source: str, *, is_html: bool) -> _Verbatim:
        return _Verbatim(source)


@lru_cache(maxsize=SHAPES_KEPT)
def _template(shape: _Shape) -> CompiledTemplate | None:
    """The shape's template, or None when build_message must build every message of it."""
    try:
        template = compile_template(
            from_=shape.from_,
            reply_to=shape.reply_to,
            subject_template=_SUBJECT,
            text_template=_TEXT if shape.has_text else None,
            html_template=_HTML if shape.has_html else None,
            headers={name: f"header:{name}" for name in shape.header_names},
            filler=_VerbatimFiller(),
        )
    except PostroomError:
        return None  # a bad sender or header name: build_message says so in its words
    # Addresses of its own that need SMTPUTF8 send every message to the exact builder.
    return None if template.needs_smtputf8 else template


def _rendered(email: OutgoingEmail, *, message_id: str, date: datetime) -> BuiltMessage | None:
    """`email` rendered by its shape's template, or None where build_message must do it."""
    template = _template(
        _Shape(
            from_=email.from_,
            reply_to=tuple(email.reply_to),
            header_names=tuple(email.headers),
            has_text=bool(email.text),
            has_html=bool(email.html),
        )
    )
    if template is None:
        return None
    try:
        check_custom_headers(email.headers)  # what the template checks of names, and values
        envelope, needs_smtputf8 = _envelope(email)
        to = email.to[0]
        raw = template.render(
            to=Address(to.display_name, envelope[0][0]),
            message_id=message_id,
            date=date,
            values={
                _SUBJECT: email.subject,
                _TEXT: email.text or "",
                _HTML: email.html or "",
                **{f"header:{name}": value for name, value in email.headers.items()},
            },
        )
    except PostroomError:
        return None  # build_message refuses it too, with its own message
    if not _is_wire_safe(raw):
        return None
    return BuiltMessage(
        raw=raw,
        envelope_from=template.envelope_from,
        recipients=envelope,
        needs_smtputf8=needs_smtputf8,
        size=len(raw),
    )


def _envelope(email: OutgoingEmail) -> tuple[list[tuple[str, str]], bool]:
    """The envelope recipients as build_message lists them: the To recipient first, then
    each Bcc recipient once (the same mailbox twice gets one delivery, under its first kind)."""
    envelope: list[tuple[str, str]] = []
    seen: set[str] = set()
    needs_smtputf8 = False
    kinds = (("to", "To", email.to), ("bcc", "Bcc", email.bcc))
    for kind, title, addresses in kinds:
        for index, address in enumerate(addresses, start=1):
            normalized = normalize_address(
                address.addr_spec, label=f"Recipient {index} ({title})", field=kind
            )
            needs_smtputf8 |= normalized.needs_smtputf8
            if normalized.addr_spec.lower() not in seen:
                seen.add(normalized.addr_spec.lower())
                envelope.append((normalized.addr_spec, kind))
    return envelope, needs_smtputf8


def _is_wire_safe(raw: bytes) -> bool:
    """CRLF line ends only, each line at most 998 octets (RFC 5322 §2.1.1, §2.3): what
    build_message checks of its own output. The encodings guarantee it; a message that broke
    it would go to build_message, which refuses it."""
    if raw.count(b"\n") != raw.count(b"\r\n") or raw.count(b"\r") != raw.count(b"\r\n"):
        return False
    return max(map(len, raw.split(b"\r\n"))) <= MAX_LINE_OCTETS
