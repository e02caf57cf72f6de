"""Who may read /metrics: the bearer token, compared in constant time; a weak token stops
the start."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from postroom.ops.access import bearer_token_matches, metrics_token_check

TOKEN = "0123456789abcdef" * 4


@pytest.mark.parametrize(
    "header", [f"Bearer {TOKEN}", f"bearer {TOKEN}", f"  Bearer   {TOKEN}  ", f"BEARER {TOKEN}"]
)
def test_the_token_in_a_bearer_header_matches(header: str) -> None:
    assert bearer_token_matches(header, token=TOKEN)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Bearer",
        f"Bearer {TOKEN[:-1]}",
        f"Bearer {TOKEN}x",
        f"Basic {TOKEN}",
        f"Token {TOKEN}",
        TOKEN,
        "Bearer é",
    ],
)
def test_anything_else_does_not(header: str) -> None:
    assert not bearer_token_matches(header, token=TOKEN)


def test_no_header_matches_an_empty_token() -> None:
    assert not bearer_token_matches("Bearer ", token="")


def test_an_empty_token_turns_metrics_off_and_a_long_one_is_kept() -> None:
    assert metrics_token_check("") == ""
    assert metrics_token_check(TOKEN) == TOKEN


def test_a_short_token_stops_the_start_saying_how_to_make_a_good_one() -> None:
    with pytest.raises(ImproperlyConfigured, match="openssl rand -hex 32"):
        metrics_token_check("secret")


def test_a_token_a_header_cannot_carry_stops_the_start() -> None:
    with pytest.raises(ImproperlyConfigured, match="ASCII"):
        metrics_token_check("é" * 40)
