"""Reading captured mail: pure functions over bytes, so no server and no database here."""

from __future__ import annotations

from email.parser import BytesHeaderParser
from email.policy import default

from postroom.mail.reading import (
    header_texts,
    message_attachment,
    message_read,
    message_source_text,
    message_summarize,
)
from tests.inbox.samples import SCRIPT, multipart_mail, plain_mail


def test_the_summary_has_decoded_headers_and_sees_attachments() -> None:
    summary = message_summarize(multipart_mail())
    assert summary.from_header == "Jörg Müller <joerg@example.com>"
    assert summary.to_header == "Bob <bob@example.net>, carol@example.org"
    assert summary.subject == "Quarterly report ☃"
    assert summary.message_id == "<report-1@example.com>"
    assert summary.has_attachments is True


def test_a_plain_message_has_no_attachments() -> None:
    summary = message_summarize(plain_mail())
    assert summary.has_attachments is False
    content = message_read(plain_mail())
    assert content.text == "Just text.\n"
    assert content.html is None
    assert content.attachments == []


def test_reading_finds_text_html_and_every_attachment() -> None:
    content = message_read(multipart_mail())
    assert content.text == "Hello Bob,\nthe report is attached.\n"
    assert content.html is not None and SCRIPT in content.html
    assert [(a.number, a.filename, a.content_type) for a in content.attachments] == [
        (1, "résumé Q3.pdf", "application/pdf"),
        (2, "evil.html", "text/html"),
    ]
    assert content.attachments[0].size == len(b"%PDF-1.4 fake")
    assert ("Subject", "Quarterly report ☃") in content.headers


def test_an_attachment_comes_back_decoded_and_a_missing_one_is_none() -> None:
    raw = multipart_mail()
    attachment = message_attachment(raw, number=1)
    assert attachment is not None
    assert attachment.filename == "résumé Q3.pdf"
    assert attachment.content == b"%PDF-1.4 fake"
    assert message_attachment(raw, number=0) is None
    assert message_attachment(raw, number=3) is None


def test_file_names_lose_path_separators_and_control_characters() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
        b"--B\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; "
        b'filename="../../etc/pass\\\\wd"\r\n\r\nx\r\n'
        b"--B\r\nContent-Type: image/png\r\nContent-Disposition: attachment; "
        b"filename*=utf-8''a%0D%0ABcc%3A%20x.png\r\n\r\nx\r\n"
        b"--B\r\nContent-Type: image/png\r\n\r\nno name\r\n"
        b"--B--\r\n"
    )
    names = [attachment.filename for attachment in message_read(raw).attachments]
    assert names == ["_.._etc_pass_wd", "a_Bcc: x.png", "attachment-3.png"]


def test_broken_mail_is_read_as_far_as_it_goes() -> None:
    raw = (
        b"From: a@b\r\n"
        b"Subject: =?bogus?q?x?= \xff\xfe broken\r\n"
        b"X-Null: a\x00b\r\n"
        b'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n'
        b"--XX\r\nContent-Type: text/plain; charset=no-such-charset\r\n\r\nhi \xc3\xa9 \xe9\r\n"
        b"--XX\r\nContent-Type: text/html; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n!!!notbase64\r\n"
        b"--XX\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n"
        b"--XX"  # never closed
    )
    summary = message_summarize(raw)
    assert "broken" in summary.subject
    content = message_read(raw)
    assert content.text is not None and content.text.startswith("hi é")
    headers = dict(content.headers)
    assert "\x00" not in headers["X-Null"]
    for text in [summary.subject, *headers.values(), content.text, content.html or ""]:
        text.encode("utf-8")  # no lone surrogates: a page and the database can hold it
    # The unclosed last boundary leaves an empty part too; the attached message comes first.
    assert content.attachments[0].filename == "attachment-1.eml"
    attachment = message_attachment(raw, number=1)
    assert attachment is not None and b"Subject: inner" in attachment.content


def test_the_source_is_the_raw_text_with_invalid_bytes_replaced() -> None:
    assert message_source_text(b"Subject: caf\xc3\xa9 \xff\r\n") == "Subject: café \ufffd\r\n"


def test_header_texts_reads_like_the_default_policy_at_a_tenth_of_the_cost() -> None:
    raw = (
        b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.com>\r\n"
        b"Subject: Gr\xc3\xbc\xc3\x9fe\r\n aus Berlin\r\n"
        b"Message-ID: <a.1@example.com>\r\n"
        b"X-Note: folded\r\n\tline\r\n"
        b"\r\nSubject: not a header, the body\r\n"
    )
    names = ("Subject", "From", "Message-ID", "X-Note", "Reply-To")
    by_default = BytesHeaderParser(policy=default).parsebytes(raw)

    texts = header_texts(raw, names)

    assert texts == {name: str(by_default.get(name, "")).strip() for name in names}
    assert texts["Subject"] == "Grüße aus Berlin"
    assert texts["Reply-To"] == ""


def test_header_texts_keeps_bytes_that_are_not_utf8_storable() -> None:
    texts = header_texts(b"Subject: caf\xe9\r\n\r\nbody", ("Subject",))

    assert texts["Subject"] == "caf\ufffd"
    texts["Subject"].encode("utf-8")  # a page and every database can hold it
