"""message_build gives what build_message gives: the same bytes, envelope and errors, whether
the bulk renderer (one To recipient, no Cc, no attachment) or build_message itself built it."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from postroom.core.errors import PostroomError
from postroom.mail.addresses import Address
from postroom.mail.message import Attachment, BuiltMessage, OutgoingEmail, build_message
from postroom.outbox.building import message_build

MESSAGE_ID = "<3da5cf6fbf6b462e89ab4bd324cfd155@acme.example>"
DATE = dt.datetime(2030, 1, 30, 16, 2, 11, tzinfo=dt.UTC)
SENDER = Address("Acme Office", "office@acme.example")
BOB = Address("Bob Jones", "bob@Example.org")

# Bodies and subjects that take each encoding and line-end path of the renderer.
TEXTS = {
    "short ASCII": "Hi Bob",
    "lone CR, lone LF, CRLF": "one\rtwo\nthree\r\nfour",
    "long line": "x" * 2000,
    "non-ASCII": "Grüße aus Köln, € 120.00\n" * 40,
    "NUL": "a\0b",
    "Unicode line separators": "one\u2028two\x0cthree\x1cfour",
    "a boundary-like line": "--===============0123456789abcdef0123==\nafter",
    "leading dots and blanks": ".\n..x\n trailing blank \n",
    "empty": "",
}
SUBJECTS = ["Invoice 1042", "Grüße " * 30, "S" * 1200, ""]


def both(email: OutgoingEmail) -> tuple[BuiltMessage, BuiltMessage]:
    fast = message_build(email, message_id=MESSAGE_ID, date=DATE)
    exact = build_message(email, message_id=MESSAGE_ID, date=DATE, boundary=_boundary(fast.raw))
    return fast, exact


def _boundary(raw: bytes) -> str | None:
    # With text and HTML the renderer's boundary comes from the message's shape.
    match = re.search(rb'multipart/alternative;\s+boundary="([^"]+)"', raw)
    return match.group(1).decode() if match else None


@pytest.mark.parametrize("text", TEXTS.values(), ids=TEXTS.keys())
@pytest.mark.parametrize("subject", SUBJECTS, ids=["plain", "non-ASCII", "long", "empty"])
def test_a_text_message_is_byte_for_byte_the_exact_builders(text: str, subject: str) -> None:
    email = OutgoingEmail(from_=SENDER, to=[BOB], subject=subject, text=text)
    fast, exact = both(email)
    assert fast == exact
    assert fast.raw == build_message(email, message_id=MESSAGE_ID, date=DATE).raw


@pytest.mark.parametrize("text", TEXTS.values(), ids=TEXTS.keys())
def test_text_and_html_differ_from_the_exact_builder_by_the_boundary_alone(text: str) -> None:
    email = OutgoingEmail(
        from_=SENDER,
        to=[BOB],
        reply_to=[Address("", "billing@acme.example")],
        subject="Invoice 1042",
        text=text,
        html=f"<p>{text}</p>",
        headers={"X-Invoice": "1042", "Auto-Submitted": "auto-generated"},
    )
    fast, exact = both(email)
    assert fast == exact


def test_bcc_recipients_are_in_the_envelope_once_and_never_in_a_header() -> None:
    email = OutgoingEmail(
        from_=SENDER,
        to=[BOB],
        bcc=[Address("", "audit@acme.example"), Address("", "BOB@example.org")],
        subject="Hi",
        text="Hi",
    )
    fast, exact = both(email)
    assert fast == exact
    assert fast.recipients == [("bob@example.org", "to"), ("audit@acme.example", "bcc")]
    assert b"audit@" not in fast.raw


@pytest.mark.parametrize(
    "email",
    [
        OutgoingEmail(from_=SENDER, to=[BOB, Address("", "carol@example.org")], text="Hi"),
        OutgoingEmail(from_=SENDER, to=[BOB], cc=[Address("", "carol@example.org")], text="Hi"),
        OutgoingEmail(
            from_=SENDER,
            to=[BOB],
            text="Hi",
            attachments=[Attachment("a.pdf", "application/pdf", b"%PDF-1.7")],
        ),
        OutgoingEmail(from_=Address("", "jörg@acme.example"), to=[BOB], text="Hi"),
        OutgoingEmail(from_=SENDER, to=[Address("", "jörg@example.org")], text="Hi"),
    ],
    ids=["two To", "Cc", "attachment", "UTF-8 sender", "UTF-8 recipient"],
)
def test_what_the_renderer_does_not_do_is_built_exactly(email: OutgoingEmail) -> None:
    assert message_build(email, message_id=MESSAGE_ID, date=DATE) == build_message(
        email, message_id=MESSAGE_ID, date=DATE
    )


@pytest.mark.parametrize(
    "email",
    [
        OutgoingEmail(from_=SENDER, to=[BOB], subject="a\r\nBcc: x@example.org", text="Hi"),
        OutgoingEmail(from_=SENDER, to=[BOB], subject="=?utf-8?q?a=0D=0AX:_y?=", text="Hi"),
        OutgoingEmail(from_=SENDER, to=[BOB], text="Hi", headers={"Received": "x"}),
        OutgoingEmail(from_=SENDER, to=[BOB], text="Hi", headers={"X-Empty": "  "}),
        OutgoingEmail(from_=SENDER, to=[BOB], text="Hi", headers={"X-Split": "a\nb"}),
        OutgoingEmail(from_=SENDER, to=[BOB], text="lone \ud800 surrogate"),
        OutgoingEmail(from_=SENDER, to=[Address("", "bob@example..org")], text="Hi"),
    ],
    ids=["CRLF subject", "encoded CRLF", "forbidden header", "empty header", "LF header",
         "surrogate", "bad address"],
)  # fmt: skip
def test_a_refused_message_is_refused_with_the_exact_builders_words(
    email: OutgoingEmail,
) -> None:
    with pytest.raises(PostroomError) as exact:
        build_message(email, message_id=MESSAGE_ID, date=DATE)
    with pytest.raises(PostroomError) as fast:
        message_build(email, message_id=MESSAGE_ID, date=DATE)
    assert (fast.value.code, fast.value.message, fast.value.field) == (
        exact.value.code,
        exact.value.message,
        exact.value.field,
    )
