"""Reading bounce mail: DSNs (RFC 3464) from Postfix, Microsoft 365 and Gmail, a non-standard
Yahoo bounce through flufl.bounce, an ARF complaint (RFC 5965), a delay notice, a soft
bounce and an auto-reply; and addresses from a bounce checked before they are used."""

from __future__ import annotations

from pathlib import Path

from postroom.bounces.parsing import Kind, mail_parse

SAMPLES = Path(__file__).parent / "samples"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def test_the_real_postfix_dsn_is_a_hard_bounce_of_the_unknown_user() -> None:
    parsed = mail_parse(sample("postfix_unknown_user.eml"))
    assert (parsed.kind, parsed.format) == (Kind.HARD, "DSN (RFC 3464)")
    assert parsed.original_message_id == "<5f1c0e7a9b2d4c3e8f6a7b1c2d3e4f50@example.com>"
    assert parsed.report_message_id == "<20261207103423.4A48C20C193@localhost>"
    (recipient,) = parsed.recipients
    assert (recipient.address, recipient.action, recipient.status) == (
        "nosuchuser@example.net",
        "failed",
        "5.1.1",
    )
    assert recipient.diagnostic == 'unknown user: "nosuchuser@example.net"'
    assert parsed.sent_to == ("bounces@example.com",)


def test_a_microsoft_365_ndr_gives_final_and_original_recipient_and_the_code() -> None:
    parsed = mail_parse(sample("microsoft365_recipient_not_found.eml"))
    assert parsed.kind == Kind.HARD
    assert parsed.original_message_id == "<0d3f9a6c2b1e4d5f8a7b6c5d4e3f2a1b@example.com>"
    (recipient,) = parsed.recipients
    assert (recipient.address, recipient.original) == ("J.Doe@contoso.com", "j.doe@contoso.com")
    assert recipient.status == "5.1.10"
    assert recipient.diagnostic.startswith("550 5.1.10 RESOLVER.ADR.RecipientNotFound")


def test_a_gmail_dsn_finds_the_original_in_its_returned_headers() -> None:
    parsed = mail_parse(sample("gmail_no_such_user.eml"))
    assert parsed.kind == Kind.HARD
    assert parsed.original_message_id == "<7c2e9b1a4d3f4e6a8b5c9d0e1f2a3b4c@example.com>"
    (recipient,) = parsed.recipients
    assert (recipient.address, recipient.status) == ("no.such.person@gmail.com", "5.1.1")
    assert "does not exist" in recipient.diagnostic


def test_a_non_standard_yahoo_bounce_is_read_by_flufl_bounce() -> None:
    parsed = mail_parse(sample("yahoo_nonstandard.eml"))
    assert (parsed.kind, parsed.format) == (Kind.HARD, "flufl.bounce")
    (recipient,) = parsed.recipients
    assert (recipient.address, recipient.status) == ("gone.away@yahoo.com", "5.0.0")
    assert recipient.diagnostic.startswith("554 delivery error: dd This user doesn't have")
    # Quoted in the text, not a MIME part.
    assert parsed.original_message_id == "<3e8d7c6b5a4f4e3d2c1b0a9f8e7d6c5b@example.com>"


def test_an_arf_report_is_a_complaint_by_its_original_recipient() -> None:
    parsed = mail_parse(sample("yahoo_arf_complaint.eml"))
    assert (parsed.kind, parsed.format, parsed.feedback_type) == (
        Kind.COMPLAINT,
        "ARF (RFC 5965)",
        "abuse",
    )
    assert [recipient.address for recipient in parsed.recipients] == ["happy.reader@yahoo.com"]
    assert parsed.original_message_id == "<9a8b7c6d5e4f4a3b2c1d0e9f8a7b6c5d@example.com>"


def test_a_complaint_without_original_rcpt_to_names_the_original_to() -> None:
    raw = sample("yahoo_arf_complaint.eml").replace(
        b"Original-Rcpt-To: <happy.reader@yahoo.com>\n", b""
    )
    parsed = mail_parse(raw)
    assert [recipient.address for recipient in parsed.recipients] == ["happy.reader@yahoo.com"]


def test_a_failed_action_with_a_4xx_status_is_a_soft_bounce() -> None:
    parsed = mail_parse(sample("soft_mailbox_full.eml"))
    assert parsed.kind == Kind.SOFT
    assert parsed.recipients[0].status == "4.2.2"


def test_a_delay_notice_is_neither_hard_nor_soft() -> None:
    parsed = mail_parse(sample("delay_notice.eml"))
    assert parsed.kind == Kind.DELAY
    assert parsed.recipients[0].action == "delayed"


def test_an_out_of_office_reply_is_not_a_bounce() -> None:
    parsed = mail_parse(sample("out_of_office.eml"))
    assert (parsed.kind, parsed.recipients) == (Kind.OTHER, ())


def test_garbage_is_not_a_bounce_and_does_not_raise() -> None:
    for raw in (b"", b"\x00\xff\xfe", b"Content-Type: multipart/report\n\n--x--\n"):
        assert mail_parse(raw).kind == Kind.OTHER


def test_a_crafted_recipient_address_is_dropped_not_trusted() -> None:
    # What CVE-2023-27043's parser bug turns into another address, and a header-splitting
    # attempt: neither passes postroom.mail.addresses, so the recipient is left out.
    raw = sample("postfix_unknown_user.eml").replace(
        b"Final-Recipient: rfc822; nosuchuser@example.net\nOriginal-Recipient: "
        b"rfc822;nosuchuser@example.net",
        b'Final-Recipient: rfc822; "alice@example.org<bob@example.com>"@example.net',
    )
    parsed = mail_parse(raw)
    assert parsed.recipients == ()
    assert parsed.kind == Kind.OTHER


def test_an_address_is_read_with_its_case_and_checked() -> None:
    raw = sample("postfix_unknown_user.eml").replace(
        b"Final-Recipient: rfc822; nosuchuser@example.net",
        b"Final-Recipient: rfc822; <NoSuchUser@Example.NET>",
    )
    (recipient,) = mail_parse(raw).recipients
    assert recipient.address == "NoSuchUser@example.net"


def test_an_encoded_subject_is_decoded_for_people() -> None:
    raw = sample("out_of_office.eml").replace(
        b"Subject: Automatic reply: Your order has shipped",
        b"Subject: =?utf-8?q?R=C3=A9ponse_automatique=0D=0A?=",
    )
    assert mail_parse(raw).subject == "Réponse automatique"
