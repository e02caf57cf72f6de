"""Header and MIME injection through RFC 2047 encoded words (CVE-2024-6923) and address parsing
that could send the envelope elsewhere than the header says (CVE-2023-27043).

The attacks hold no literal CR or LF: the `email` package decodes the encoded word and, on an
unpatched Python such as 3.11.7, writes the decoded line break into the header. Whatever the
Python, Postroom must refuse them before a message is built, and must not let one through
even if a check is forgotten (postroom.mail.structure reads every built message back).
"""

from __future__ import annotations

import datetime as dt
import logging
from email import policy
from email.parser import BytesParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postroom.core.errors import UnsafeMessageError, ValidationError
from postroom.mail.addresses import Address, normalize_address, parse_address
from postroom.mail.bulk import compile_template
from postroom.mail.header_text import check_header_phrase, check_header_text
from postroom.mail.message import Attachment, OutgoingEmail, build_message
from postroom.mail.structure import (
    check_header_count,
    check_message_shape,
    count_header_fields,
    message_shape,
)

# The finding's own value: a Reply-To and a header of the attacker's in a To name.
REPLY_TO_INJECTION = "=?utf-8?q?x=0D=0AReply-To:_attacker@evil.example=0D=0AX-J:_?="
# The same line break hidden in other ways readers decode.
ENCODED_LINE_BREAKS = [
    REPLY_TO_INJECTION,
    "=?UTF-8?Q?x=0d=0aBcc:_a@evil.example?=",  # lower-case hex, upper-case markers
    "=?utf-8?b?eA0KQmNjOiBhQGV2aWwuZXhhbXBsZQ==?=",  # base64
    "=?utf-8?b?eA0KQmNjOiBhQGV2aWwuZXhhbXBsZQ?=",  # base64 without its padding
    "=?utf-16-le?b?eAANAAoA?=",  # UTF-16: CR and LF are two bytes each
    "=?x-unknown?q?x=0A?=",  # a charset nobody knows: the bytes still count
    "=?utf-8*en?q?x=0D=0A?=",  # RFC 2231 language tag
    "=?utf-8?q?x=0D=0A X-Evil:_1?=",  # a blank inside the word: the package still decodes it
    "=?utf-8?q?x=00?=",  # NUL
    "=?utf-8?q?x=E2=80=A8y?=",  # U+2028 LINE SEPARATOR: str.splitlines() breaks on it
    "Dear =?utf-8?q?=0D=0A?= friend",  # in the middle of other text
]
NOW = dt.datetime(2026, 12, 7, 9, 30, tzinfo=dt.UTC)


def build(email: OutgoingEmail) -> bytes:
    return build_message(email, message_id="<m@example.com>", date=NOW).raw


def email_to(**fields: object) -> OutgoingEmail:
    values: dict[str, object] = {
        "from_": Address("Shop", "shop@example.com"),
        "to": [Address("Customer", "customer@example.net")],
        "subject": "Invoice 2026-0042",
        "text": "Hello",
    }
    values.update(fields)
    return OutgoingEmail(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ENCODED_LINE_BREAKS)
def test_a_name_whose_encoded_word_decodes_to_a_line_break_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="encoded word|line break|NUL|control") as caught:
        Address(value, "customer@example.net")
    assert caught.value.field == "address"


@pytest.mark.parametrize("kind", ["to", "cc", "reply_to"])
def test_the_finding_in_a_recipient_name_never_reaches_the_wire(kind: str) -> None:
    with pytest.raises(ValidationError):
        build(email_to(**{kind: [Address(REPLY_TO_INJECTION, "customer@example.net")]}))


def test_the_finding_in_a_sender_name_never_reaches_the_wire() -> None:
    with pytest.raises(ValidationError):
        build(email_to(from_=Address(REPLY_TO_INJECTION, "alice@example.com")))


def test_a_parsed_name_addr_with_an_encoded_line_break_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="Recipient 1 \\(To\\)") as caught:
        parse_address(
            f"{REPLY_TO_INJECTION} <customer@example.net>", label="Recipient 1 (To)", field="to"
        )
    assert caught.value.field == "to"


@pytest.mark.parametrize("value", ENCODED_LINE_BREAKS)
def test_an_attachment_name_with_an_encoded_line_break_is_refused(value: str) -> None:
    attachment = Attachment(value, "application/pdf", b"%PDF-1.7")
    with pytest.raises(ValidationError, match="Attachment 1") as caught:
        build(email_to(attachments=[attachment]))
    assert caught.value.field == "attachments"


@pytest.mark.parametrize("value", ENCODED_LINE_BREAKS)
def test_a_subject_or_custom_header_whose_encoded_word_decodes_to_a_line_break_is_refused(
    value: str,
) -> None:
    with pytest.raises(ValidationError, match="Subject") as caught:
        build(email_to(subject=value))
    assert caught.value.field == "subject"
    with pytest.raises(ValidationError, match="X-Order") as caught:
        build(email_to(headers={"X-Order": value}))
    assert caught.value.field == "headers"


def test_an_address_whose_local_part_is_an_encoded_word_is_refused() -> None:
    # RFC 5321 allows "=" and "?" in a local part; the package decoded this one into the To line
    # ("To: a\r\nX-Evil: 1@example.com") while the envelope went to the literal address.
    attack = "=?utf-8?q?a=0D=0AX-Evil=3A_1?=@example.com"
    with pytest.raises(ValidationError, match="encoded word"):
        normalize_address(attack)
    with pytest.raises(ValidationError, match="encoded word"):
        parse_address(attack)
    with pytest.raises(ValidationError, match="encoded word"):
        Address("", attack)


def test_a_harmless_encoded_word_in_a_name_is_refused_rather_than_shown_as_other_text() -> None:
    # The package would write "Zoë" for this name: not what the person typed.
    with pytest.raises(ValidationError, match="=\\?"):
        check_header_phrase("=?utf-8?q?Zo=C3=AB?=", label="First name", what="it", field="name")


def test_a_subject_with_a_harmless_encoded_word_is_written_as_typed() -> None:
    raw = build(email_to(subject="=?utf-8?q?looks_encoded?= but is not"))
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert parsed["Subject"] == "=?utf-8?q?looks_encoded?= but is not"


def test_plain_text_with_equals_and_question_marks_is_header_text() -> None:
    check_header_text("What is 2+2=? Four.", label="Subject", what="it", field="subject")
    check_header_phrase("Ünïcode O'Neil (Sales) 100%", label="Name", what="it", field="name")


def test_a_bulk_recipient_name_with_an_encoded_line_break_is_refused() -> None:
    template = compile_template(
        from_=Address("Shop", "shop@example.com"),
        subject_template="Hello {{ first }}",
        text_template="Hi {{ first }}",
        html_template=None,
    )
    with pytest.raises(ValidationError):
        template.render(
            to=Address(REPLY_TO_INJECTION, "customer@example.net"),
            message_id="<m@example.com>",
            date=NOW,
            values={"first": "Jo"},
        )
    with pytest.raises(ValidationError, match="Subject"):
        template.render(
            to=Address("Jo", "customer@example.net"),
            message_id="<m@example.com>",
            date=NOW,
            values={"first": REPLY_TO_INJECTION},
        )


# --- defence in depth: every built message is read back --------------------------------


def test_a_built_message_reads_back_as_its_shape() -> None:
    from email.message import EmailMessage

    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = "Shop <shop@example.com>"
    msg["To"] = "Customer <customer@example.net>"
    msg["Subject"] = "Invoice"
    msg.set_content("Hello")
    shape = message_shape(
        msg,
        addresses={"To": msg["To"].addresses, "From": msg["From"].addresses},
        subject="Invoice",
        filenames=[],
    )
    raw = msg.as_bytes()
    check_message_shape(raw, shape)

    injected = raw.replace(b"Subject: Invoice\r\n", b"Subject: Invoice\r\nBcc: x@evil.example\r\n")
    with pytest.raises(UnsafeMessageError, match="fields"):
        check_message_shape(injected, shape)
    renamed = raw.replace(b"customer@example.net", b"attacker@evil.example")
    with pytest.raises(UnsafeMessageError, match="To field"):
        check_message_shape(renamed, shape)
    split_body = raw.replace(b"\r\n\r\nHello", b"\r\n\r\n--x\r\nContent-Type: text/html\r\n\r\nHi")
    check_message_shape(split_body, shape)  # a body is text, not structure, in a single part


def test_a_message_that_does_not_read_back_is_refused_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with (
        caplog.at_level(logging.ERROR, logger="postroom.mail.structure"),
        pytest.raises(UnsafeMessageError) as caught,
    ):
        check_header_count("To: a@example.net\r\nX-Evil: 1\r\n", expected=1)
    assert caught.value.http_status == 422  # an answer, not a crash
    assert "2 fields, 1 were written" in caplog.text


def test_header_fields_are_counted_with_their_folded_lines() -> None:
    assert count_header_fields("Subject: a\r\n b\r\n\tc\r\nTo: x@example.net\r\n") == 2


# --- CVE-2023-27043: the envelope goes where the header says ---------------------------


@pytest.mark.parametrize(
    "value",
    [
        "alice@example.org)<bob@example.org>",
        "alice@example.org <bob@example.org>",
        "alice@example.org<bob@example.org>",
        "<alice@example.org>bob@example.org",
        "bob@example.org, alice@example.org",
        "Alice <alice@example.org> <bob@evil.example>",
        "@evil.example:alice@example.org",
        "alice@example.org@evil.example",
        '"a@b"@example.org',
    ],
)
def test_an_ambiguous_address_is_refused_rather_than_guessed(value: str) -> None:
    with pytest.raises(ValidationError):
        parse_address(value)


@pytest.mark.parametrize(
    ("value", "mailbox"),
    [
        ('"alice@example.org" <bob@example.org>', "bob@example.org"),
        ('"<alice@example.org>" <bob@example.org>', "bob@example.org"),
        ('"alice@example.org)" <bob@example.org>', "bob@example.org"),
        ("alice@example.org (bob@example.org)", "alice@example.org"),
    ],
)
def test_a_name_holding_an_address_does_not_change_the_mailbox(value: str, mailbox: str) -> None:
    address = parse_address(value)
    assert address.addr_spec == mailbox
    built = build_message(email_to(to=[address]), message_id="<m@example.com>", date=NOW)
    assert built.recipients == [(mailbox, "to")]
    parsed = BytesParser(policy=policy.default).parsebytes(built.raw)
    assert [a.addr_spec for a in parsed["To"].addresses] == [mailbox]


_TRICKY = st.text(alphabet='ab@.<>"(),:;=?_ \\\t', max_size=24)


@settings(max_examples=400, deadline=None)
@given(name=_TRICKY, local=st.text(alphabet="ab.=?_-+", min_size=1, max_size=16))
def test_whatever_is_accepted_is_sent_to_the_mailbox_its_header_shows(
    name: str, local: str
) -> None:
    try:
        address = parse_address(f'"{name}" <{local}@example.org>')
        built = build_message(email_to(to=[address]), message_id="<m@example.com>", date=NOW)
    except ValidationError:
        return
    parsed = BytesParser(policy=policy.default).parsebytes(built.raw)
    header_mailboxes = [a.addr_spec for a in parsed["To"].addresses]
    assert header_mailboxes == [recipient for recipient, _ in built.recipients]


@pytest.mark.parametrize("value", ["x:; <a@example.org>", '"":;" <a@example.org>'])
def test_an_address_the_email_package_cannot_parse_is_an_error_not_a_crash(value: str) -> None:
    with pytest.raises(ValidationError, match="is not an address"):
        parse_address(value)
