"""Addresses: strict parsing, IDN to punycode, SMTPUTF8 flagging, and no control characters."""

from __future__ import annotations

import pytest

from postroom.core.errors import ValidationError
from postroom.mail.addresses import (
    Address,
    normalize_address,
    parse_address,
    parse_address_list,
)


def test_a_bare_address_is_parsed_with_an_empty_name() -> None:
    assert parse_address("  jane@example.com ") == Address("", "jane@example.com")


def test_a_name_addr_is_parsed_into_name_and_address() -> None:
    assert parse_address("Jane Doe <jane@example.com>") == Address("Jane Doe", "jane@example.com")
    assert parse_address("<jane@example.com>") == Address("", "jane@example.com")


def test_a_quoted_name_with_a_comma_keeps_the_comma_and_is_quoted_in_headers() -> None:
    address = parse_address('"Doe, Jane" <jane@example.com>')
    assert address.display_name == "Doe, Jane"
    assert address.formatted == '"Doe, Jane" <jane@example.com>'


def test_an_encoded_word_name_is_decoded() -> None:
    assert parse_address("=?utf-8?q?Zo=C3=AB?= <zoe@example.com>").display_name == "Zoë"


def test_the_domain_is_lower_cased_and_the_local_part_kept() -> None:
    assert parse_address("Jane.Doe@Example.COM").addr_spec == "Jane.Doe@example.com"


def test_an_idn_domain_becomes_punycode_for_headers_and_envelope() -> None:
    normalized = normalize_address("jane@bücher.example")
    assert normalized.addr_spec == "jane@xn--bcher-kva.example"
    assert normalized.envelope == "jane@xn--bcher-kva.example"
    assert normalized.domain == "bücher.example"
    assert normalized.needs_smtputf8 is False
    assert parse_address("Jane <jane@bücher.example>").addr_spec == "jane@xn--bcher-kva.example"


def test_a_utf8_local_part_is_accepted_but_flagged_as_needing_smtputf8() -> None:
    normalized = normalize_address("jöhn@bücher.example")
    assert normalized.needs_smtputf8 is True
    assert normalized.addr_spec == "jöhn@xn--bcher-kva.example"


def test_a_utf8_local_part_is_refused_with_an_explanation_when_smtputf8_is_not_allowed() -> None:
    with pytest.raises(ValidationError, match="SMTPUTF8") as caught:
        normalize_address("jöhn@example.com", allow_smtputf8=False, field="to")
    assert caught.value.field == "to"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("jane@example.com\r\nBcc: all@example.com", "line break"),
        ("jane@exa\nmple.com", "line break"),
        ("jane\r@example.com", "line break"),
        ("jane\x00@example.com", "NUL"),
        ("jane@example.com\u2028", "line break"),
        ("ja\x07ne@example.com", r"control character U\+0007"),
        ("jane\ud800@example.com", "lone surrogate"),
    ],
)
def test_control_characters_in_an_address_are_refused(value: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        parse_address(value)


def test_a_line_break_in_a_display_name_is_refused_as_header_injection() -> None:
    with pytest.raises(ValidationError, match="header injection is not allowed"):
        parse_address("Jane\r\nBcc: x@example.com <jane@example.com>")


def test_errors_name_the_recipient_and_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_address_list(
            ["a@example.com", "b@example.com\nBcc: c@example.com"], kind="To", field="to"
        )
    assert str(caught.value) == (
        "Recipient 2 (To): the address contains a line break; header injection is not allowed."
    )
    assert caught.value.field == "to"


@pytest.mark.parametrize(
    "value",
    [
        "Jane Doe jane@example.com",
        "<jane@example.com>>",
        "a@example.com, b@example.com",
        "Jane <jane@example.com> trailing",
        '"unterminated <jane@example.com>',
        "undisclosed-recipients:;",
        "Jane <>",
        "Jane <jane@example.com",
        "jane@@example.com",
        "jane..doe@example.com",
        "",
        "   ",
        "jane@localhost",
    ],
)
def test_garbage_is_refused_rather_than_guessed_at(value: str) -> None:
    with pytest.raises(ValidationError):
        parse_address(value)


def test_a_hand_built_address_cannot_carry_a_line_break_either() -> None:
    with pytest.raises(ValidationError, match="line break"):
        Address("Jane\nBcc: x", "jane@example.com")
    with pytest.raises(ValidationError, match="not an email address"):
        Address("Jane", "jane@example.com> , <evil@example.com")


def test_a_hand_built_address_with_a_utf8_local_part_formats() -> None:
    assert Address("Jöhn", "jöhn@example.com").formatted == "Jöhn <jöhn@example.com>"
