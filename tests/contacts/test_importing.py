"""The CSV import's pure part: separator, mapping guess, each row's checks, merging, plan."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from postroom.contacts import importing
from postroom.contacts.importing import ParsedRow, Rejection, RowContext, row_parse
from postroom.core.errors import ValidationError

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def context(*names: str) -> RowContext:
    return RowContext(mapping=dict(enumerate(names)), column_count=len(names), tz=BERLIN, now=NOW)


# Reading the file.


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("email,name\na@x.com,A\nb@x.com,B\n", ","),
        ("email;name;phone\na@x.com;Smith, Ann;1\n", ";"),
        ("email\tname\na@x.com\tA, B; C\n", "\t"),
        ('"email";"note"\n"a@x.com";"one, two, three"\n', ";"),
        ("email\na@x.com\n", ","),  # one column: nothing to tell, comma is fine
    ],
)
def test_the_separator_is_the_one_that_splits_the_lines_evenly(sample: str, expected: str) -> None:
    assert importing.delimiter_sniff(sample) == expected


def test_a_byte_order_mark_is_not_part_of_the_first_header(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffEmail,Name\r\na@x.com,A\r\n".encode())
    assert importing.header_read(path, delimiter=",") == ["Email", "Name"]
    assert list(importing.rows_read(path, delimiter=",")) == [(2, ["a@x.com", "A"])]


def test_a_file_with_an_empty_first_row_is_refused_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "blank.csv"
    path.write_text(",,\na@x.com,A,B\n")
    with pytest.raises(importing.CsvFileError, match="first row is empty"):
        importing.header_read(path, delimiter=",")


def test_a_quote_left_open_refuses_the_file_instead_of_swallowing_its_rest(
    tmp_path: Path,
) -> None:
    path = tmp_path / "quote.csv"
    path.write_text('email,name\na@x.com,"Ann\nb@x.com,Bob\nc@x.com,Cy\n')
    with pytest.raises(importing.CsvFileError, match="cannot be read as CSV near row"):
        list(importing.rows_read(path, delimiter=","))


def test_a_stray_quote_inside_a_cell_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "inch.csv"
    path.write_text('email,notes\na@x.com,27" screen\n')
    assert list(importing.rows_read(path, delimiter=",")) == [(2, ["a@x.com", '27" screen'])]


# The mapping.


def test_the_mapping_is_guessed_from_common_header_names() -> None:
    headers = ["E-Mail Address", "First Name", "Surname", "Company", "Mobile", "Tags",
               "Opt-in", "Opt-in date", "Favourite colour", "email"]  # fmt: skip
    assert importing.mapping_guess(headers) == {
        0: "email",
        1: "first_name",
        2: "last_name",
        3: "organization",
        4: "phone",
        5: "tags",
        6: "marketing_consent",
        7: "marketing_consent_at",
        # "Favourite colour" is unknown, and the second email column is not mapped twice.
    }


def test_a_full_name_column_is_guessed_only_without_first_and_last_name_columns() -> None:
    assert importing.mapping_guess(["Name", "Email"]) == {0: "full_name", 1: "email"}
    assert importing.mapping_guess(["Name", "First name", "Email"]) == {
        1: "first_name",
        2: "email",
    }


def test_the_export_headers_map_back_to_the_same_fields() -> None:
    from postroom.contacts.exporting import EXPORT_HEADERS

    guessed = importing.mapping_guess(EXPORT_HEADERS)
    assert set(guessed.values()) == set(importing.FIELD_LABELS) - {"full_name"}


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({0: "first_name"}, "Map a column to Email address"),
        ({0: "email", 1: "email"}, "Several columns are mapped to Email address"),
        ({0: "email", 1: "full_name", 2: "last_name"}, "either Full name"),
        ({0: "email", 1: "marketing_consent_at"}, "needs a consent column"),
        ({0: "email", 1: "password"}, "Unknown contact field"),
    ],
)
def test_a_mapping_that_cannot_work_is_refused(mapping: dict[int, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        importing.mapping_check(mapping)


# One row.


def test_a_valid_row_gives_only_the_fields_its_cells_fill() -> None:
    parsed = row_parse(
        ["  Ann@Example.COM ", "Ann", "", "Acme  Inc", "VIP; customer", "yes"],
        row=2,
        context=context(
            "email", "first_name", "last_name", "organization", "tags", "marketing_consent"
        ),
    )
    assert isinstance(parsed, ParsedRow)
    assert parsed.email == "Ann@example.com"  # email-validator lowercases the domain only
    assert parsed.key == "ann@example.com"
    assert parsed.values == {
        "first_name": "Ann",
        "organization": "Acme Inc",
        "marketing_consent": True,
    }
    assert parsed.tags == ["vip", "customer"]


def test_a_blank_row_is_skipped() -> None:
    assert row_parse([" ", "", ""], row=5, context=context("email", "first_name", "phone")) is None


def test_every_problem_of_a_row_is_reported_with_its_row_number() -> None:
    rejected = row_parse(
        ["not-an-address", "Ann\r\nBcc: victim@example.com", "maybe", "31/02/2024"],
        row=7,
        context=context("email", "first_name", "marketing_consent", "marketing_consent_at"),
    )
    assert isinstance(rejected, Rejection)
    assert rejected.row == 7
    assert "'not-an-address' is not valid" in rejected.reason
    assert "line break" in rejected.reason
    assert "'maybe' is not yes or no" in rejected.reason
    assert "'31/02/2024' is not a real date" in rejected.reason
    assert rejected.cells[0] == "not-an-address"
    assert rejected.reason.endswith(".") and ".;" not in rejected.reason


def test_a_row_without_an_address_is_rejected() -> None:
    rejected = row_parse(["", "Ann"], row=3, context=context("email", "first_name"))
    assert isinstance(rejected, Rejection)
    assert rejected.reason == "no email address (contacts are matched by address)."


def test_extra_cells_beyond_the_header_reject_the_row_but_empty_ones_do_not() -> None:
    ctx = context("email", "first_name")
    assert isinstance(row_parse(["a@x.com", "Ann", "", ""], row=2, context=ctx), ParsedRow)
    rejected = row_parse(["a@x.com", "Smith", " Ann"], row=3, context=ctx)
    assert isinstance(rejected, Rejection)
    assert "3 cells but the header has 2" in rejected.reason


def test_a_consent_date_without_a_consent_value_is_rejected() -> None:
    rejected = row_parse(
        ["a@x.com", "", "2024-01-01"],
        row=2,
        context=context("email", "marketing_consent", "marketing_consent_at"),
    )
    assert isinstance(rejected, Rejection)
    assert "without a consent value" in rejected.reason


def test_a_full_name_is_split_at_the_last_space_or_at_a_comma() -> None:
    ctx = context("email", "full_name")
    for cell, first, last in [
        ("Mary Ann Smith", "Mary Ann", "Smith"),
        ("Smith, Mary Ann", "Mary Ann", "Smith"),
        ("Cher", "Cher", None),
    ]:
        parsed = row_parse(["a@x.com", cell], row=2, context=ctx)
        assert isinstance(parsed, ParsedRow)
        assert parsed.values.get("first_name") == first
        assert parsed.values.get("last_name") == last


def test_a_spreadsheet_formula_escape_is_undone() -> None:
    parsed = row_parse(
        ["a@x.com", "'+49 30 1234", "'=not a formula"],
        row=2,
        context=context("email", "phone", "notes"),
    )
    assert isinstance(parsed, ParsedRow)
    assert parsed.values == {"phone": "+49 30 1234", "notes": "=not a formula"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("yes", True), ("Y", True), ("TRUE", True), ("1", True), ("x", True), ("oui", True),
        ("no", False), ("N", False), ("false", False), ("0", False), ("nein", False),
    ],
)  # fmt: skip
def test_yes_and_no_are_read_in_their_usual_spellings(value: str, expected: bool) -> None:
    assert importing.boolean_parse(value, label="Consent") is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-03-25", datetime(2024, 3, 25, tzinfo=BERLIN)),
        ("2024-03-25T14:30:00+00:00", datetime(2024, 3, 25, 14, 30, tzinfo=UTC)),
        ("2024-03-25 14:30", datetime(2024, 3, 25, 14, 30, tzinfo=BERLIN)),
        ("25.03.2024", datetime(2024, 3, 25, tzinfo=BERLIN)),
        ("25.03.2024 08:05", datetime(2024, 3, 25, 8, 5, tzinfo=BERLIN)),
        ("2024/03/25", datetime(2024, 3, 25, tzinfo=BERLIN)),
        ("25/03/2024", datetime(2024, 3, 25, tzinfo=BERLIN)),
        ("03/25/2024", datetime(2024, 3, 25, tzinfo=BERLIN)),
        ("04/04/2024", datetime(2024, 4, 4, tzinfo=BERLIN)),
    ],
)
def test_dates_are_read_in_unambiguous_forms(value: str, expected: datetime) -> None:
    assert importing.datetime_parse(value, tz=BERLIN, now=NOW, label="Date") == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("03/04/2024", "could be day/month or month/day"),
        ("2024-02-30", "not a date"),
        ("30.02.2024", "not a real date"),
        ("yesterday", "not a date"),
        ("2025-07-01", "in the future"),
    ],
)
def test_ambiguous_impossible_and_future_dates_are_refused(value: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        importing.datetime_parse(value, tz=BERLIN, now=NOW, label="Date")


# Merging and planning.


def parsed(row: int, email: str, tags: list[str] | None = None, **values: object) -> ParsedRow:
    return ParsedRow(row=row, email=email, key=email.lower(), values=dict(values), tags=tags or [])


def test_rows_sharing_an_address_are_merged_later_values_winning_and_tags_adding_up() -> None:
    merged, count = importing.rows_merge(
        [
            parsed(2, "ann@x.com", ["a"], first_name="Ann", phone="1"),
            parsed(3, "bob@x.com", first_name="Bob"),
            parsed(4, "ANN@x.com", ["b", "a"], phone="2"),
        ]
    )
    assert count == 1
    assert list(merged) == ["ann@x.com", "bob@x.com"]
    ann = merged["ann@x.com"]
    assert ann.row == 2 and ann.email == "ann@x.com"
    assert ann.values == {"first_name": "Ann", "phone": "2"}
    assert ann.tags == ["a", "b"]


def test_a_later_consent_decision_drops_the_earlier_ones_date() -> None:
    early = datetime(2020, 1, 1, tzinfo=UTC)
    merged, _ = importing.rows_merge(
        [
            parsed(2, "a@x.com", marketing_consent=True, marketing_consent_at=early),
            parsed(3, "a@x.com", marketing_consent=False),
        ]
    )
    assert merged["a@x.com"].values == {"marketing_consent": False}
