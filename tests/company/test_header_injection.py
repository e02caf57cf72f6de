"""The company's sender name and address go into the From line of the company's mail: neither
may hold an encoded word that the email package would rewrite."""

from __future__ import annotations

import pytest

from postroom.company import validation
from postroom.core.errors import ValidationError


def test_a_sender_name_whose_encoded_word_decodes_to_a_line_break_is_refused() -> None:
    with pytest.raises(ValidationError, match="encoded word") as caught:
        validation.sender_name_clean("=?utf-8?q?Acme=0D=0ABcc:_all@corp.example?=")
    assert caught.value.field == "sender_name"


def test_a_sender_address_whose_local_part_is_an_encoded_word_is_refused() -> None:
    with pytest.raises(ValidationError, match="encoded word") as caught:
        validation.sender_email_clean("=?utf-8?q?a=0D=0AX-Evil=3A_1?=@corp.example")
    assert caught.value.field == "sender_email"


def test_an_ordinary_sender_name_is_kept() -> None:
    assert validation.sender_name_clean("  Acme Bücher & Co. (Sales)  ") == (
        "Acme Bücher & Co. (Sales)"
    )
