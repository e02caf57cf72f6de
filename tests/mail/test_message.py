"""build_message: exact RFC 5322 bytes from typed fields, and every way in for injection refused."""

from __future__ import annotations

import email
import re
from datetime import UTC, datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage

import pytest

from postroom.core.errors import ValidationError
from postroom.mail.addresses import Address, parse_address
from postroom.mail.message import (
    Attachment,
    BuiltMessage,
    OutgoingEmail,
    build_message,
    new_message_id,
)

DATE = datetime(2025, 7, 1, 9, 30, tzinfo=UTC)
MESSAGE_ID = "<0123456789abcdef@example.com>"
SENDER = Address("Example Trading", "billing@example.com")
JANE = Address("Jane Doe", "jane@example.net")


def build(**fields: object) -> BuiltMessage:
    values: dict[str, object] = {"from_": SENDER, "to": [JANE], "subject": "Hello", "text": "Hi\n"}
    values.update(fields)
    cap = values.pop("max_attachment_bytes", None)
    return build_message(
        OutgoingEmail(**values),  # type: ignore[arg-type]
        message_id=MESSAGE_ID,
        date=DATE,
        max_attachment_bytes=cap,  # type: ignore[arg-type]
    )


def parsed(built: BuiltMessage) -> EmailMessage:
    message = email.message_from_bytes(built.raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def text_of(part: object) -> str:
    # The parser keeps the wire's CRLF inside decoded text; compare with LF.
    return part.get_content().replace("\r\n", "\n")  # type: ignore[attr-defined]


def header_block(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0]


def assert_wire_format(raw: bytes) -> None:
    assert raw.endswith(b"\r\n")
    assert raw.count(b"\n") == raw.count(b"\r\n") == raw.count(b"\r")  # CRLF only
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998  # RFC 5322 §2.1.1


# -- the basic message -------------------------------------------------------------------------


def test_a_text_message_has_the_expected_headers_and_body() -> None:
    built = build()
    assert built.raw == (
        b"From: Example Trading <billing@example.com>\r\n"
        b"To: Jane Doe <jane@example.net>\r\n"
        b"Subject: Hello\r\n"
        b"Date: Tue, 01 Jul 2025 09:30:00 +0000\r\n"
        b"Message-ID: <0123456789abcdef@example.com>\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: text/plain; charset="utf-8"\r\n'
        b"Content-Transfer-Encoding: 7bit\r\n"
        b"\r\n"
        b"Hi\r\n"
    )
    assert built.envelope_from == "billing@example.com"
    assert built.recipients == [("jane@example.net", "to")]
    assert built.needs_smtputf8 is False
    assert built.size == len(built.raw)


def test_building_twice_gives_the_same_bytes() -> None:
    fields = {
        "html": "<p>Hi</p>",
        "attachments": [Attachment("a.pdf", "application/pdf", b"%PDF-1.4")],
    }
    assert build(**fields).raw == build(**fields).raw


def test_the_date_keeps_its_time_zone() -> None:
    paris = timezone(timedelta(hours=2))
    built = build_message(
        OutgoingEmail(from_=SENDER, to=[JANE], text="x"),
        message_id=MESSAGE_ID,
        date=datetime(2025, 7, 1, 11, 30, tzinfo=paris),
    )
    assert b"Date: Tue, 01 Jul 2025 11:30:00 +0200\r\n" in built.raw


def test_a_naive_date_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build_message(
            OutgoingEmail(from_=SENDER, to=[JANE]), message_id=MESSAGE_ID, date=datetime(2025, 7, 1)
        )


def test_new_message_id_is_unique_and_names_the_domain() -> None:
    first, second = new_message_id("example.com"), new_message_id("Example.COM")
    assert re.fullmatch(r"<[0-9a-f]{32}@example\.com>", first)
    assert first != second
    with pytest.raises(ValueError, match="punycode"):
        new_message_id("bücher.example")


def test_a_malformed_message_id_is_refused() -> None:
    for bad in ["no-brackets@example.com", "<two@at@example.com>", "<x@example.com>\r\nBcc: y"]:
        with pytest.raises(ValidationError):
            build_message(OutgoingEmail(from_=SENDER, to=[JANE]), message_id=bad, date=DATE)


# -- recipients --------------------------------------------------------------------------------


def test_bcc_recipients_are_in_the_envelope_and_never_in_the_headers() -> None:
    built = build(
        bcc=[Address("Secret Boss", "boss@example.org")], cc=[Address("", "c@example.org")]
    )
    assert b"boss@example.org" not in built.raw
    assert b"Secret Boss" not in built.raw
    assert b"Bcc" not in built.raw
    assert built.recipients == [
        ("jane@example.net", "to"),
        ("c@example.org", "cc"),
        ("boss@example.org", "bcc"),
    ]
    assert parsed(built)["Cc"] == "c@example.org"


def test_only_bcc_recipients_are_enough() -> None:
    built = build(to=[], bcc=[Address("", "boss@example.org")])
    assert b"To:" not in header_block(built.raw)
    assert built.recipients == [("boss@example.org", "bcc")]


def test_a_message_without_recipients_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least one recipient") as caught:
        build(to=[])
    assert caught.value.field == "to"


def test_the_same_mailbox_twice_is_delivered_once() -> None:
    built = build(cc=[Address("", "JANE@example.net")], bcc=[JANE])
    assert built.recipients == [("jane@example.net", "to")]


def test_an_idn_domain_is_punycode_in_headers_and_envelope() -> None:
    built = build(
        from_=Address("Bücher", "shop@bücher.example"), to=[Address("", "jane@bücher.example")]
    )
    assert b"From: =?utf-8?q?B=C3=BCcher?= <shop@xn--bcher-kva.example>\r\n" in built.raw
    assert b"To: jane@xn--bcher-kva.example\r\n" in built.raw
    assert built.envelope_from == "shop@xn--bcher-kva.example"
    assert built.recipients == [("jane@xn--bcher-kva.example", "to")]
    assert built.needs_smtputf8 is False
    assert built.raw.isascii()


def test_a_utf8_local_part_needs_smtputf8_and_is_written_as_utf8() -> None:
    built = build(to=[Address("Jöhn", "jöhn@example.net")], subject="Grüße")
    assert built.needs_smtputf8 is True
    assert built.recipients == [("jöhn@example.net", "to")]
    # RFC 6532: with SMTPUTF8 the headers carry UTF-8, not encoded words.
    assert "To: Jöhn <jöhn@example.net>\r\n".encode() in built.raw
    assert "Subject: Grüße\r\n".encode() in built.raw


def test_a_utf8_bcc_needs_smtputf8_but_leaves_the_headers_ascii() -> None:
    built = build(bcc=[Address("", "jöhn@example.net")])
    assert built.needs_smtputf8 is True
    assert built.raw.isascii()


def test_recipient_errors_name_the_recipient() -> None:
    with pytest.raises(ValidationError, match=r"^Recipient 2 \(Cc\): ") as caught:
        build(cc=[Address("", "ok@example.org"), Address("", "bad@localhost")])
    assert caught.value.field == "cc"


# -- header injection --------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["Hi\r\nBcc: all@example.com", "Hi\nX: y", "Hi\rthere", "Hi\x00"])
def test_a_subject_with_cr_lf_or_nul_is_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="header injection is not allowed") as caught:
        build(subject=bad)
    assert caught.value.field == "subject"


def test_a_custom_header_value_with_a_line_break_is_refused() -> None:
    with pytest.raises(
        ValidationError, match="X-Campaign: the value contains a line break"
    ) as caught:
        build(headers={"X-Campaign": "spring\r\nBcc: all@example.com"})
    assert caught.value.field == "headers"


def test_a_display_name_with_a_line_break_cannot_be_built() -> None:
    with pytest.raises(ValidationError, match="line break"):
        build(to=[Address("Jane\r\nBcc: all@example.com", "jane@example.net")])


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("Bcc", "never appear in the headers"),
        ("bcc", "never appear in the headers"),
        ("From", "sender field"),
        ("To", "To recipients"),
        ("Cc", "Cc recipients"),
        ("Reply-To", "Reply-To field"),
        ("Subject", "subject field"),
        ("Date", "set when the message is built"),
        ("Message-ID", "assigned at enqueue"),
        ("MIME-Version", "message builder"),
        ("Content-Type", "MIME structure"),
        ("Content-Transfer-Encoding", "MIME structure"),
        ("Sender", "not allowed"),
        ("Received", "not allowed"),
        ("Return-Path", "not allowed"),
        ("DKIM-Signature", "not allowed"),
        ("ARC-Seal", "not allowed"),
        ("Authentication-Results", "not allowed"),
        ("Resent-From", "not allowed"),
        ("X-MS-Exchange-Organization-SCL", "trust it as set by themselves"),
        ("X-Spam-Status", "trust it as set by themselves"),
        ("X-Postroom-Lane", "trust it as set by themselves"),
    ],
)
def test_a_disallowed_custom_header_is_refused_with_the_reason(name: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason) as caught:
        build(headers={name: "x"})
    assert caught.value.field == "headers"
    assert repr(name) in str(caught.value)


@pytest.mark.parametrize("name", ["X Space", "X:Colon", "X-Ümlaut", "", "X-Tab\t"])
def test_a_header_name_outside_rfc_5322_ftext_is_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="RFC 5322"):
        build(headers={name: "x"})


def test_allowed_custom_headers_are_written_in_order() -> None:
    built = build(
        headers={
            "List-Unsubscribe": "<https://example.com/u/1>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "X-Campaign": "Été 2025",
            "Auto-Submitted": "auto-generated",
        }
    )
    block = header_block(built.raw)
    assert block.index(b"List-Unsubscribe:") < block.index(b"X-Campaign:")
    assert parsed(built)["X-Campaign"] == "Été 2025"
    assert b"X-Campaign: =?utf-8?b?w4l0w6k=?= 2025\r\n" in block


def test_the_same_header_twice_in_different_case_is_refused() -> None:
    with pytest.raises(ValidationError, match="given twice"):
        build(headers={"X-A": "1", "x-a": "2"})


# -- line lengths and line ends ------------------------------------------------------------------


def test_every_line_stays_within_998_octets_whatever_the_input() -> None:
    built = build(
        subject="Ünïcode " * 300 + "x" * 2000,
        text=("word " * 1000) + "\n" + "y" * 5000 + "\n",
        html="<p>" + "z" * 5000 + "</p>",
        headers={
            "X-Long": "a" * 3000,
            "References": " ".join(f"<{i}@example.com>" for i in range(80)),
        },
    )
    assert_wire_format(built.raw)
    assert max(len(line) for line in built.raw.split(b"\r\n")) <= 78
    message = parsed(built)
    assert message["Subject"] == "Ünïcode " * 300 + "x" * 2000
    assert message["X-Long"] == "a" * 3000
    assert text_of(message.get_body(("plain",))) == ("word " * 1000) + "\n" + "y" * 5000 + "\n"


def test_lone_cr_and_lone_lf_become_crlf() -> None:
    built = build(text="one\rtwo\nthree\r\nfour")
    assert built.raw.endswith(b"\r\n\r\none\r\ntwo\r\nthree\r\nfour\r\n")
    assert_wire_format(built.raw)


def test_lines_starting_with_a_dot_and_a_lone_dot_line_survive_unstuffed() -> None:
    text = ".leading dot\n.\nmiddle\n.\r\nend\n..two dots\n"
    built = build(text=text)
    # Not dot-stuffed here: the transport does that (RFC 5321 §4.5.2).
    assert b"\r\n.leading dot\r\n.\r\nmiddle\r\n.\r\nend\r\n..two dots\r\n" in built.raw
    body = text_of(parsed(built).get_body(("plain",)))
    assert body == ".leading dot\n.\nmiddle\n.\nend\n..two dots\n"


def test_non_ascii_text_is_quoted_printable_and_decodes_back() -> None:
    built = build(text="Bonjour Zoë, voilà votre facture.\n")
    assert b"Content-Transfer-Encoding: quoted-printable" in built.raw
    assert b"Bonjour Zo=C3=AB, voil=C3=A0 votre facture." in built.raw
    assert text_of(parsed(built)) == "Bonjour Zoë, voilà votre facture.\n"


def test_mostly_non_latin_text_is_base64() -> None:
    built = build(text="日本語のテキストです。\n" * 5)
    assert b"Content-Transfer-Encoding: base64" in built.raw
    assert text_of(parsed(built)) == "日本語のテキストです。\n" * 5


def test_a_nul_in_the_body_is_never_sent_as_7bit() -> None:
    built = build(text="a\x00b\n")
    assert b"Content-Transfer-Encoding: 7bit" not in built.raw  # RFC 2045 §2.7
    assert text_of(parsed(built)) == "a\x00b\n"


# -- structure -----------------------------------------------------------------------------------


def test_text_and_html_make_a_multipart_alternative_with_plain_first() -> None:
    message = parsed(build(text="plain", html="<p>rich</p>"))
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert text_of(message.get_body(("html",))) == "<p>rich</p>\n"


def test_html_only_is_a_single_html_part() -> None:
    message = parsed(build(text=None, html="<p>rich</p>"))
    assert message.get_content_type() == "text/html"


def test_empty_text_and_html_give_an_empty_plain_body() -> None:
    built = build(text="", html=None)
    assert parsed(built).get_content_type() == "text/plain"
    assert built.raw.endswith(b"\r\n\r\n\r\n")


def test_attachments_make_a_multipart_mixed_with_the_body_first() -> None:
    pdf = bytes(range(256)) * 10
    built = build(
        text="See attached.",
        html="<p>See attached.</p>",
        attachments=[
            Attachment("résumé année.pdf", "application/pdf", pdf),
            Attachment("notes.txt", "text/plain", b"line\n.\n"),
        ],
    )
    message = parsed(built)
    assert message.get_content_type() == "multipart/mixed"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == [
        "multipart/alternative",
        "application/pdf",
        "text/plain",
    ]
    assert parts[1].get_filename() == "résumé année.pdf"
    assert parts[1].get_content() == pdf
    assert text_of(parts[2]) == "line\n.\n"
    # RFC 2231 for the non-ASCII file name.
    assert b"filename*=utf-8''r%C3%A9sum%C3%A9%20ann%C3%A9e.pdf" in built.raw
    assert_wire_format(built.raw)


def test_the_attachment_cap_counts_all_attachments_and_names_the_limit() -> None:
    files = [Attachment(f"f{i}.bin", "application/octet-stream", b"x" * 600_000) for i in range(2)]
    assert build(attachments=files[:1], max_attachment_bytes=1_000_000).size > 600_000
    with pytest.raises(
        ValidationError, match=r"total 1\.2 MB, over the limit of 1\.0 MB"
    ) as caught:
        build(attachments=files, max_attachment_bytes=1_000_000)
    assert caught.value.field == "attachments"


@pytest.mark.parametrize(
    ("attachment", "problem"),
    [
        (Attachment("a\r\nb.pdf", "application/pdf", b""), "line break"),
        (Attachment("../etc/passwd", "text/plain", b""), "must not contain"),
        (Attachment("", "text/plain", b""), "empty"),
        (Attachment("a.eml", "message/rfc822", b""), "not a content type"),
        (Attachment("a.pdf", "pdf", b""), "not a content type"),
        (Attachment("a.pdf", "application/pdf\r\nX: y", b""), "not a content type"),
    ],
)
def test_bad_attachments_are_refused(attachment: Attachment, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        build(attachments=[attachment])


def test_a_text_containing_the_boundary_is_not_sent_as_7bit() -> None:
    first = build(text="plain", html="<p>x</p>")
    boundary = parsed(first).get_boundary()
    assert boundary is not None
    tricky = f"--{boundary}\nContent-Type: text/html\n\n<script>\n--{boundary}--\n"
    built = build_message(
        OutgoingEmail(from_=SENDER, to=[JANE], text=tricky, html="<p>x</p>"),
        message_id=MESSAGE_ID,
        date=DATE,
        boundary=boundary,
    )
    message = parsed(built)
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert text_of(message.get_body(("plain",))) == tricky


def test_parse_address_output_builds() -> None:
    built = build(to=[parse_address('"Doe, Jane" <Jane@Example.NET>')])
    assert b'To: "Doe, Jane" <Jane@example.net>\r\n' in built.raw
