"""A fast renderer for bulk mail: compile a template once, then fill in each recipient's parts.

Building one `EmailMessage` per recipient costs ≈ 1.3 ms, which caps a campaign at ≈ 700
messages/s on one core — below the outbox's 2,000 msg/s target. Most of that work is the same
for every recipient: From, Reply-To, custom headers, the MIME skeleton, and most lines of the
body. So `compile_template` renders those once (headers through the `email` package itself, so
they are exactly what `build_message` writes), and `CompiledTemplate.render` only fills in what
differs per recipient: the To header, Message-ID, Date, and the lines with merge fields.

Per-recipient headers are folded by `postroom.mail.folding`, which `build_message` uses for the
same headers (its contract), and bodies (postroom.mail.bulk_body) by `postroom.mail.encoding`,
which reproduces the `email` package's body encodings byte for byte. Body encodings are
line-local (7bit and quoted-printable encode each line on its own), so a line without merge
fields is encoded once; only the choice of encoding looks at the whole body, through summed
per-line statistics. The result is identical to `build_message` of the merged fields —
tests/mail/test_bulk.py checks it on a corpus of tricky inputs and on random ones — so a bulk
message and its exact rebuild never differ.

Rare shapes take the exact path (`build_message` itself): a recipient whose local part is UTF-8
(its headers must be written in SMTPUTF8 form), a template whose own addresses need SMTPUTF8,
a merged part that comes out empty (the exact builder leaves that part out), or a merged value
with a carriage return (it changes how the lines around it are split).

Merge fields are written in Postroom's one merge language (postroom.mail.merge): a template of
plain lookups (`{{ first_name }}`) fills at C speed; one with `{% if %}` or filters renders its
fields in the sandbox for each recipient, and a body it cannot fill line by line is encoded whole.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import MIMEPart

from postroom.core.errors import ValidationError
from postroom.mail.addresses import Address, normalize_address
from postroom.mail.bulk_body import CompiledBody, MergeFallback
from postroom.mail.custom_headers import (
    check_custom_headers,
    check_date,
    check_message_id,
    check_subject,
)
from postroom.mail.encoding import CRLF, POLICY
from postroom.mail.folding import (
    FoldedHeader,
    date_line,
    fold_mailbox,
    fold_message_id,
    fold_unstructured,
)
from postroom.mail.header_text import check_header_text
from postroom.mail.merge import MERGE_FILLER, CompiledField, FieldFiller
from postroom.mail.message import (
    OutgoingEmail,
    boundaries_from_hash,
    build_message,
    header_address,
    multipart_content_type,
    ordered_headers,
)
from postroom.mail.structure import check_header_count

_CTES = ("7bit", "quoted-printable", "base64")


# ---------------------------------------------------------------------------------------------
# Headers
# ---------------------------------------------------------------------------------------------

_Segment = str | Callable[["_Fill"], str]


class _Fill:
    """The per-recipient inputs of one render (a plain class: built once per message)."""

    __slots__ = ("to", "message_id", "date", "values")

    def __init__(
        self, to: Address, message_id: str, date: datetime, values: Mapping[str, object]
    ) -> None:
        self.to = to
        self.message_id = message_id
        self.date = date
        self.values = values


def _render_to(fill: _Fill) -> str:
    return fold_mailbox("To", fill.to.display_name, fill.to.addr_spec)


class _DateLine:
    """The Date header, remembered for the last date: a batch is often stamped with one time."""

    def __init__(self) -> None:
        self._last: tuple[datetime | None, str] = (None, "")  # one tuple: swapped atomically

    def __call__(self, fill: _Fill) -> str:
        date, line = self._last
        if fill.date is not date:
            line = date_line(fill.date)
            self._last = (fill.date, line)
        return line


def _render_message_id(fill: _Fill) -> str:
    return fold_message_id(fill.message_id)


@dataclass(frozen=True)
class _MergedHeader:
    """Subject or a custom header with merge fields (a per-recipient List-Unsubscribe URL)."""

    name: str
    field: CompiledField

    def __call__(self, fill: _Fill) -> str:
        value = self.field.fill(fill.values)
        if self.name == "Subject":
            check_subject(value)
        else:
            check_header_text(value, label=f"Header {self.name}", what="the value", field="headers")
        return fold_unstructured(self.name, value)


def _static_or_merged(name: str, field: CompiledField) -> object:
    return FoldedHeader(name, field.fill({})) if field.is_static else _MergedHeader(name, field)


def _fold_static(name: str, value: object) -> str:
    # Exactly what the generator writes for `msg[name] = value` (the package folds it, or
    # FoldedHeader.fold for Subject and custom headers, as in build_message).
    stored_name, stored = POLICY.header_store_parse(name, value)
    return POLICY.fold_binary(stored_name, stored).decode("ascii")


def _part_headers(subtype: str, cte: str) -> str:
    part = MIMEPart(policy=POLICY)
    part.set_content("x", subtype=subtype, cte=cte)
    return "".join(POLICY.fold(name, value) for name, value in part.raw_items())


# ---------------------------------------------------------------------------------------------
# The template
# ---------------------------------------------------------------------------------------------


class CompiledTemplate:
    """A bulk template with everything recipient-independent rendered; see `render`.

    `content_hash` (sha256 of the template, also the source of the boundary), `boundary`
    (multipart/alternative, or None for a single part), `envelope_from`, `needs_smtputf8`
    (the template's own addresses need SMTPUTF8; a recipient's own need is
    `normalize_address(...).needs_smtputf8`), `field_names` (the merge fields it uses).
    """

    def __init__(
        self,
        *,
        from_: Address,
        reply_to: Sequence[Address],
        subject: CompiledField,
        text: CompiledField | None,
        html: CompiledField | None,
        headers: list[tuple[str, CompiledField]],
        content_hash: str,
    ) -> None:
        self.content_hash = content_hash
        self._from = from_
        self._reply_to = list(reply_to)
        self._subject = subject
        self._headers = headers
        sender = normalize_address(from_.addr_spec, label="From", field="from")
        replies = [
            normalize_address(a.addr_spec, label=f"Reply-To {i}", field="reply_to")
            for i, a in enumerate(reply_to, start=1)
        ]
        self.envelope_from = sender.addr_spec
        self.needs_smtputf8 = sender.needs_smtputf8 or any(r.needs_smtputf8 for r in replies)
        parts = [(s, f) for s, f in (("plain", text), ("html", html)) if f is not None]
        self._parts = parts or [("plain", MERGE_FILLER.compile("", is_html=False))]
        self.boundary = boundaries_from_hash(content_hash)[0] if len(self._parts) > 1 else None
        names = set(subject.names)
        for _, field in [*headers, *self._parts]:
            names |= field.names
        self.field_names = frozenset(names)
        if self.needs_smtputf8:
            return  # every render takes the exact path: its headers are SMTPUTF8
        self._segments = self._compile_headers(
            [header_address(self._from, sender.addr_spec)],
            [header_address(a, r.addr_spec) for a, r in zip(reply_to, replies, strict=True)],
        )
        enclosing = (self.boundary,) if self.boundary else ()
        self._bodies = [(s, CompiledBody(f, enclosing)) for s, f in self._parts]
        self._compile_mime()

    def _compile_mime(self) -> None:
        """The MIME skeleton around the bodies: the same for every recipient."""
        mime_version = _fold_static("MIME-Version", "1.0")
        if self.boundary is None:
            # A single part: its Content-Type and Content-Transfer-Encoding are top-level.
            subtype = self._parts[0][0]
            self._single_heads = {
                cte: (mime_version + _part_headers(subtype, cte) + CRLF).encode("ascii")
                for cte in _CTES
            }
        else:
            content_type = multipart_content_type("alternative", self.boundary)
            self._multipart_head = (
                mime_version
                + _fold_static("Content-Type", content_type)
                + CRLF
                + f"--{self.boundary}{CRLF}"
            ).encode("ascii")
            self._part_heads = {
                (s, cte): (_part_headers(s, cte) + CRLF).encode("ascii")
                for s, _ in self._parts
                for cte in _CTES
            }
            self._between = f"{CRLF}--{self.boundary}{CRLF}".encode("ascii")
            self._close = f"{CRLF}--{self.boundary}--{CRLF}".encode("ascii")

    def _compile_headers(self, from_: object, reply_to: list[object]) -> list[_Segment]:
        fields = ordered_headers(
            from_=from_,
            to=_render_to,
            cc=None,
            reply_to=reply_to,
            subject=_static_or_merged("Subject", self._subject),
            date=_DateLine(),
            message_id=_render_message_id,
            headers=[(n, _static_or_merged(n, f)) for n, f in self._headers],
        )
        self._field_count = len(fields)
        segments: list[_Segment] = []
        for name, value in fields:
            segment: _Segment = value if callable(value) else _fold_static(name, value)
            if isinstance(segment, str) and segments and isinstance(segments[-1], str):
                segments[-1] += segment  # runs of static headers become one string
            else:
                segments.append(segment)
        return segments

    def render(
        self,
        *,
        to: Address,
        message_id: str,
        date: datetime,
        values: Mapping[str, object],
    ) -> bytes:
        """Return the message for one recipient: the same bytes as `build_message` of the
        merged fields with `boundary=self.boundary`.

        `to` should come from `parse_address` (validated at enqueue); an `Address` cannot hold
        control characters, so the To header cannot be split. Merged subject and header values
        are checked here: a value with a line break raises ValidationError.
        """
        check_message_id(message_id)
        check_date(date)
        addr_spec = to.addr_spec
        if self.needs_smtputf8 or not addr_spec.isascii():
            normalized = normalize_address(addr_spec, label="Recipient 1 (To)", field="to")
            if normalized.needs_smtputf8 or self.needs_smtputf8:
                return self._render_exact(to, message_id, date, values)
            addr_spec = normalized.addr_spec  # an IDN domain, in punycode
        else:
            # What email-validator does to an ASCII address: lower-case the domain.
            local, _, domain = addr_spec.rpartition("@")
            addr_spec = f"{local}@{domain.lower()}"
        if addr_spec != to.addr_spec:
            to = Address(to.display_name, addr_spec)
        try:
            bodies = [(subtype, *body.render(values)) for subtype, body in self._bodies]
        except MergeFallback:
            return self._render_exact(to, message_id, date, values)
        except UnicodeEncodeError:
            raise ValidationError(
                "A merged value contains an invalid character (a lone surrogate).",
                field="values",
            ) from None
        fill = _Fill(to, message_id, date, values)
        head_text = "".join(
            [s if s.__class__ is str else s(fill) for s in self._segments]  # type: ignore[operator]
        )
        # The MIME heads are fixed strings and the bodies are encoded line by line, so only a
        # header value can start a line of its own: count the fields (postroom.mail.structure).
        check_header_count(head_text, self._field_count)
        head = head_text.encode("ascii")
        if self.boundary is None:
            _, cte, body = bodies[0]
            return b"".join((head, self._single_heads[cte], body))
        out = [head, self._multipart_head]
        for index, (subtype, cte, body) in enumerate(bodies):
            if index:
                out.append(self._between)
            out.append(self._part_heads[subtype, cte])
            out.append(body)
        out.append(self._close)
        return b"".join(out)

    def subject_for(self, values: Mapping[str, object]) -> str:
        """The subject one recipient's message carries (for the pages, not the bytes)."""
        return self._subject.fill(values)

    def merged_email(self, *, to: Address, values: Mapping[str, object]) -> OutgoingEmail:
        """The OutgoingEmail this template and these values stand for (the exact path)."""
        parts = {subtype: field.fill(values) for subtype, field in self._parts}
        return OutgoingEmail(
            from_=self._from,
            to=[to],
            reply_to=self._reply_to,
            subject=self._subject.fill(values),
            text=parts.get("plain"),
            html=parts.get("html"),
            headers={name: field.fill(values) for name, field in self._headers},
        )

    def _render_exact(
        self, to: Address, message_id: str, date: datetime, values: Mapping[str, object]
    ) -> bytes:
        email = self.merged_email(to=to, values=values)
        return build_message(email, message_id=message_id, date=date, boundary=self.boundary).raw


def _normalize_line_ends(source: str | None) -> str | None:
    # Browsers submit textareas with CRLF. Bodies are line-local only on LF-only templates, and
    # the wire format is CRLF whatever the template used (RFC 5322 §2.3).
    if not source:
        return None
    return source.replace("\r\n", "\n").replace("\r", "\n")


def template_content_hash(
    *,
    from_: Address,
    reply_to: Sequence[Address],
    subject_template: str,
    text_template: str | None,
    html_template: str | None,
    headers: Mapping[str, str],
) -> str:
    """sha256 of the template's fields: equal templates can share one stored version."""
    canonical = json.dumps(
        {
            "from": [from_.display_name, from_.addr_spec],
            "reply_to": [[a.display_name, a.addr_spec] for a in reply_to],
            "subject": subject_template,
            "text": _normalize_line_ends(text_template) or "",
            "html": _normalize_line_ends(html_template) or "",
            "headers": list(headers.items()),
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def compile_template(
    *,
    from_: Address,
    reply_to: Sequence[Address] = (),
    subject_template: str,
    text_template: str | None,
    html_template: str | None,
    headers: Mapping[str, str] | None = None,
    filler: FieldFiller = MERGE_FILLER,
) -> CompiledTemplate:
    """Validate a bulk template and render its recipient-independent parts once.

    An empty text or html template (None or "") means no such part, as in `OutgoingEmail`;
    line ends in them are normalised to LF (the merge works on that text). Raises
    ValidationError: bad sender or Reply-To, disallowed header, control characters, bad merge
    field, invalid characters.
    """
    headers = dict(headers or {})
    check_subject(subject_template)
    checked_headers = check_custom_headers(headers)
    text = _normalize_line_ends(text_template)
    html = _normalize_line_ends(html_template)
    for name, source in (("text", text), ("html", html)):
        try:
            (source or "").encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError(
                f"The {name} template contains an invalid character (a lone surrogate).",
                field=name,
            ) from None
    return CompiledTemplate(
        from_=from_,
        reply_to=reply_to,
        subject=filler.compile(subject_template, is_html=False),
        text=filler.compile(text, is_html=False) if text else None,
        html=filler.compile(html, is_html=True) if html else None,
        headers=[(name, filler.compile(value, is_html=False)) for name, value in checked_headers],
        content_hash=template_content_hash(
            from_=from_,
            reply_to=reply_to,
            subject_template=subject_template,
            text_template=text,
            html_template=html,
            headers=headers,
        ),
    )
