"""The tagged return path (postroom.mail.verp): pure encode and decode, and a forged or
altered tag refused."""

from __future__ import annotations

from postroom.mail.verp import return_path_message, return_path_tagged

KEY = b"k" * 32
BOUNCES = "bounces@example.com"


def test_a_tag_names_its_message_and_reads_back() -> None:
    tagged = return_path_tagged(BOUNCES, message_pk=4711, key=KEY)
    assert tagged.startswith("bounces+m4711-") and tagged.endswith("@example.com")
    assert return_path_message(tagged, bounce_address=BOUNCES, key=KEY) == 4711


def test_a_tag_survives_a_server_that_changes_case() -> None:
    tagged = return_path_tagged(BOUNCES, message_pk=12, key=KEY)
    assert return_path_message(tagged.upper(), bounce_address=BOUNCES, key=KEY) == 12


def test_a_forged_tag_is_refused() -> None:
    tagged = return_path_tagged(BOUNCES, message_pk=12, key=KEY)
    forged = tagged.replace("+m12-", "+m13-")
    assert return_path_message(forged, bounce_address=BOUNCES, key=KEY) is None
    assert (
        return_path_message("bounces+m13-000000000000@example.com", bounce_address=BOUNCES, key=KEY)
        is None
    )


def test_a_tag_made_with_another_key_is_refused() -> None:
    tagged = return_path_tagged(BOUNCES, message_pk=12, key=b"other" * 8)
    assert return_path_message(tagged, bounce_address=BOUNCES, key=KEY) is None


def test_other_addresses_are_not_tags() -> None:
    tagged = return_path_tagged(BOUNCES, message_pk=12, key=KEY)
    for address in (
        BOUNCES,
        tagged.replace("@example.com", "@example.org"),
        tagged.replace("bounces+", "other+"),
        "",
        "not an address",
    ):
        assert return_path_message(address, bounce_address=BOUNCES, key=KEY) is None


def test_a_bounce_address_too_long_for_a_tag_is_used_untagged() -> None:
    long_address = f"{'b' * 60}@example.com"
    assert return_path_tagged(long_address, message_pk=1, key=KEY) == long_address
