"""CSV import of contacts, the pure part: read the file, guess the column mapping, check
every row, merge rows that share an address, and plan what changes against the contacts
that exist. Nothing here touches the database; postroom.contacts.import_jobs does that.

Rules a person importing can rely on (the import page says them too):

* A row is one contact, keyed by its email address without regard to case. Rows with the
  same address (in the file, or as an existing contact) are merged: later values win.
* An empty cell changes nothing; it never erases what a contact already has.
* Tags are only ever added by an import, never removed.
* A row with any invalid value is rejected as a whole, with every reason, and the other
  rows are still imported. Blank rows are skipped.
"""

from __future__ import annotations

import contextlib
import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from postroom.contacts import fields
from postroom.core.errors import PostroomError, ValidationError

IGNORE = ""
# The contact fields a CSV column can fill, in the order the mapping page offers them.
FIELD_LABELS: dict[str, str] = {
    "email": "Email address",
    "first_name": "First name",
    "last_name": "Last name",
    "full_name": "Full name (split at the last space)",
    "phone": "Phone",
    "organization": "Company",
    "tags": "Tags (separated by , ; or |)",
    "notes": "Notes",
    "marketing_consent": "Consent to marketing (yes/no)",
    "marketing_consent_at": "Consent date",
    "marketing_consent_source": "Consent source",
    "is_active": "Active (yes/no)",
}
# The fields' short names, for the list of what an update changes.
FIELD_NAMES: dict[str, str] = {
    **{name: label.partition(" (")[0] for name, label in FIELD_LABELS.items()},
    "marketing_consent": "Consent",
    "organization": "Company",
}
# Header names (lower case, letters and digits only) that suggest each field.
_HEADER_SYNONYMS: dict[str, tuple[str, ...]] = {
    "email": ("email", "emailaddress", "mail", "emailid", "courriel", "correo", "emailadresse"),
    "first_name": ("firstname", "first", "givenname", "forename", "vorname", "prenom"),
    "last_name": ("lastname", "last", "surname", "familyname", "nachname", "nom"),
    "full_name": ("name", "fullname", "contactname", "contact", "displayname"),
    "phone": ("phone", "phonenumber", "telephone", "tel", "mobile", "mobilephone", "cell"),
    "organization": (
        "company",
        "companyname",
        "organization",
        "organisation",
        "organizationname",
        "employer",
        "account",
        "firma",
    ),
    "tags": ("tags", "tag", "labels", "label", "groups"),
    "notes": ("notes", "note", "comments", "comment", "remarks", "description"),
    "marketing_consent": (
        "marketingconsent",
        "consent",
        "optin",
        "emailoptin",
        "acceptsmarketing",
        "newsletter",
        "subscribed",
        "gdprconsent",
    ),
    "marketing_consent_at": (
        "consentdate",
        "marketingconsentdate",
        "marketingconsentat",
        "consentat",
        "optindate",
        "subscribedat",
        "subscribeddate",
    ),
    "marketing_consent_source": (
        "consentsource",
        "marketingconsentsource",
        "optinsource",
        "source",
    ),
    "is_active": ("active", "isactive", "enabled"),
}
_BOOLEAN_TRUE = {"yes", "y", "true", "t", "1", "on", "x", "✓", "✔", "ja", "oui", "si", "sí"}
_BOOLEAN_FALSE = {"no", "n", "false", "f", "0", "off", "nein", "non"}

CANDIDATE_DELIMITERS = (",", ";", "\t")
DELIMITER_LABELS = {",": "Comma (,)", ";": "Semicolon (;)", "\t": "Tab"}
# Enough lines to judge the separator; a header and a few dozen rows fit in 64 KiB.
SNIFF_CHARS = 64 * 1024
# A spreadsheet escapes a cell starting with one of these with a leading apostrophe, and
# so does Postroom's export (formula injection, OWASP "CSV Injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# A consent date a little ahead of the server's clock is a time zone, not the future.
_FUTURE_TOLERANCE = timedelta(days=1)


class CsvFileError(ValidationError):
    """The file itself cannot be read as CSV: nothing of it is imported."""

    code = "csv_file"


# Reading the file.


def delimiter_sniff(sample: str) -> str:
    """Pick the separator that splits the first lines into the most columns, equally."""
    lines = sample.splitlines()[:50]
    if len(lines) > 1 and not sample.endswith(("\n", "\r")):
        lines = lines[:-1]  # the sample may cut the last line short
    best, best_score = ",", (0, 0)
    for delimiter in CANDIDATE_DELIMITERS:
        try:
            rows = list(csv.reader(lines, delimiter=delimiter))
        except csv.Error:
            continue
        if not rows:
            continue
        width = len(rows[0])
        score = (sum(1 for row in rows if len(row) == width), width)
        if width > 1 and score > best_score:
            best, best_score = delimiter, score
    return best


def _records(path: Path, *, delimiter: str) -> Iterator[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as stream:
        # strict: a quote left open would otherwise swallow the rest of the file into one
        # cell, silently; refusing the file says where the quotes went wrong instead.
        reader = csv.reader(stream, delimiter=delimiter, strict=True)
        try:
            yield from reader
        except csv.Error as error:
            raise CsvFileError(
                f"The file cannot be read as CSV near row {reader.line_num}: {error}. Check "
                "the quotes in that row, or save the file again from the spreadsheet.",
                field="file",
            ) from None
        except UnicodeDecodeError:
            raise CsvFileError(
                f"The file is not UTF-8 text near row {reader.line_num + 1}. Save it as "
                '"CSV UTF-8" and upload it again.',
                field="file",
            ) from None


def header_read(path: Path, *, delimiter: str) -> list[str]:
    for record in _records(path, delimiter=delimiter):
        headers = [cell.strip() for cell in record]
        if any(headers):
            return headers
        break
    raise CsvFileError(
        "The file's first row is empty. The first row must name the columns "
        "(such as Email, First name, Last name).",
        field="file",
    )


def rows_read(path: Path, *, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """The data rows with their row number as a spreadsheet shows it (the header is 1)."""
    records = _records(path, delimiter=delimiter)
    next(records, None)
    yield from enumerate(records, start=2)


def rows_count(path: Path, *, delimiter: str) -> int:
    return sum(1 for _ in rows_read(path, delimiter=delimiter))


# The mapping.


def _header_key(header: str) -> str:
    return re.sub(r"[^0-9a-z]", "", header.lower())


def mapping_guess(headers: list[str]) -> dict[int, str]:
    """Map each column whose header names a field to that field; each field at most once."""
    mapping: dict[int, str] = {}
    for index, header in enumerate(headers):
        key = _header_key(header)
        for name, synonyms in _HEADER_SYNONYMS.items():
            if key in synonyms and name not in mapping.values():
                mapping[index] = name
                break
    if "full_name" in mapping.values() and {"first_name", "last_name"} & set(mapping.values()):
        mapping = {index: name for index, name in mapping.items() if name != "full_name"}
    return mapping


def mapping_check(mapping: dict[int, str]) -> None:
    """Refuse a mapping that cannot work, saying how to fix it."""
    names = [name for name in mapping.values() if name != IGNORE]
    unknown = [name for name in names if name not in FIELD_LABELS]
    if unknown:
        raise ValidationError(f"Unknown contact field {unknown[0]!r}.", field="mapping")
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        labels = ", ".join(FIELD_LABELS[name] for name in twice)
        raise ValidationError(
            f"Several columns are mapped to {labels}. Map one column to each field.",
            field="mapping",
        )
    if "email" not in names:
        raise ValidationError(
            "Map a column to Email address: contacts are matched by their address.",
            field="mapping",
        )
    if "full_name" in names and {"first_name", "last_name"} & set(names):
        raise ValidationError(
            "Map either Full name or First name and Last name, not both.", field="mapping"
        )
    if {"marketing_consent_at", "marketing_consent_source"} & set(names) and (
        "marketing_consent" not in names
    ):
        raise ValidationError(
            "A consent date or source needs a consent column (yes/no) to go with it.",
            field="mapping",
        )


# One row.


@dataclass(slots=True)
class ParsedRow:
    """A valid row: the address, its key, and the fields its cells give (only those)."""

    row: int
    email: str
    key: str
    values: dict[str, Any]
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Rejection:
    row: int
    reason: str
    cells: list[str]


def boolean_parse(value: str, *, label: str) -> bool:
    text = value.strip().lower()
    if text in _BOOLEAN_TRUE:
        return True
    if text in _BOOLEAN_FALSE:
        return False
    raise ValidationError(f"{label}: {value!r} is not yes or no (write yes, no, 1 or 0).")


_DOTTED_DATE = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?")
_SLASHED_DATE = re.compile(r"(\d{1,4})/(\d{1,2})/(\d{1,4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?")


def _date_make(
    year: int, month: int, day: int, clock: tuple[str | None, ...], *, label: str, value: str
) -> datetime:
    hour, minute, second = (int(part) if part else 0 for part in clock)
    try:
        # Naive on purpose: the caller puts it in the import's time zone.
        return datetime(year, month, day, hour, minute, second)  # noqa: DTZ001
    except ValueError:
        raise ValidationError(f"{label}: {value!r} is not a real date.") from None


def datetime_parse(value: str, *, tz: tzinfo, now: datetime, label: str) -> datetime:
    """Read a date or date and time: ISO 8601 (2024-03-25, 2024-03-25T14:30+01:00),
    25.03.2024, 2024/03/25, and 25/03/2024 or 03/25/2024 when the day tells which is which.
    A time without a zone is in `tz`; a date alone is midnight."""
    text = value.strip()
    parsed: datetime | None = None
    with contextlib.suppress(ValueError):
        parsed = datetime.fromisoformat(text)
    if parsed is None and (match := _DOTTED_DATE.fullmatch(text)) is not None:
        day, month, year = (int(part) for part in match.groups()[:3])
        parsed = _date_make(year, month, day, match.groups()[3:], label=label, value=value)
    elif parsed is None and (match := _SLASHED_DATE.fullmatch(text)) is not None:
        first, second, third = (int(part) for part in match.groups()[:3])
        if len(match.group(1)) == 4:
            year, month, day = first, second, third
        elif len(match.group(3)) != 4:
            raise ValidationError(f"{label}: {value!r} is not a date; write YYYY-MM-DD.")
        elif first > 12 or first == second:
            day, month, year = first, second, third
        elif second > 12:
            month, day, year = first, second, third
        else:
            raise ValidationError(
                f"{label}: {value!r} could be day/month or month/day; write it as YYYY-MM-DD."
            )
        parsed = _date_make(year, month, day, match.groups()[3:], label=label, value=value)
    if parsed is None:
        raise ValidationError(f"{label}: {value!r} is not a date; write YYYY-MM-DD.")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    if parsed > now + _FUTURE_TOLERANCE:
        raise ValidationError(f"{label}: {value!r} is in the future.")
    return parsed


def cell_unescape(cell: str) -> str:
    """Undo a spreadsheet's formula escape: "'+49 30 1234" was "+49 30 1234"."""
    if len(cell) > 1 and cell[0] == "'" and cell[1] in FORMULA_PREFIXES:
        return cell[1:]
    return cell


def full_name_split(value: str) -> tuple[str, str]:
    """ "Smith, Mary Ann" and "Mary Ann Smith" are both first "Mary Ann", last "Smith"."""
    text = " ".join(value.split())
    if "," in text:
        last, _, first = text.partition(",")
        return first.strip(), last.strip()
    first, _, last = text.rpartition(" ")
    return (first, last) if first else (last, "")


@dataclass(frozen=True)
class RowContext:
    """What every row of one file is read with."""

    mapping: dict[int, str]
    column_count: int
    tz: tzinfo
    now: datetime


def _field_value(name: str, cell: str, context: RowContext) -> Any:
    if name in ("first_name", "last_name"):
        return fields.contact_name_clean(cell, field=name)
    if name == "phone":
        return fields.contact_phone_clean(cell)
    if name == "notes":
        return fields.contact_notes_clean(cell)
    if name == "organization":
        return fields.organization_name_clean(cell, field="organization")
    if name == "marketing_consent":
        return boolean_parse(cell, label="Consent")
    if name == "is_active":
        return boolean_parse(cell, label="Active")
    if name == "marketing_consent_at":
        return datetime_parse(cell, tz=context.tz, now=context.now, label="Consent date")
    if name == "marketing_consent_source":
        return fields.consent_source_clean(cell)
    raise AssertionError(f"no rule for {name}")  # mapping_check lets only known fields in


def row_parse(cells: list[str], *, row: int, context: RowContext) -> ParsedRow | Rejection | None:  # noqa: C901 - one branch per column kind of a CSV row
    """Check one row; None for a blank row, which is skipped."""
    cells = [cell_unescape(cell.strip()) for cell in cells]
    if not any(cells):
        return None
    problems: list[str] = []
    extra = [cell for cell in cells[context.column_count :] if cell]
    if extra:
        problems.append(
            f"it has {len(cells)} cells but the header has {context.column_count}; check the "
            "separator and the quotes in this row"
        )
    email = key = ""
    values: dict[str, Any] = {}
    tags: list[str] = []
    for index, name in context.mapping.items():
        cell = cells[index] if index < len(cells) else ""
        try:
            if name == "email":
                if not cell:
                    problems.append("no email address (contacts are matched by address)")
                else:
                    email, key = fields.contact_email_clean(cell)
            elif not cell or name == IGNORE:
                continue
            elif name == "tags":
                tags = fields.tag_names_parse(cell)
            elif name == "full_name":
                first, last = full_name_split(cell)
                values["first_name"] = fields.contact_name_clean(first, field="first_name")
                if last:
                    values["last_name"] = fields.contact_name_clean(last, field="last_name")
            else:
                values[name] = _field_value(name, cell, context)
        except PostroomError as error:
            problems.append(error.message)
    if (
        not problems
        and "marketing_consent" not in values
        and ("marketing_consent_at" in values or "marketing_consent_source" in values)
    ):
        problems.append("a consent date or source without a consent value (yes or no)")
    if problems:
        reason = "; ".join(problem.rstrip(".") for problem in problems) + "."
        return Rejection(row=row, reason=reason, cells=cells)
    return ParsedRow(row=row, email=email, key=key, values=values, tags=tags)


def rows_merge(rows: Iterable[ParsedRow]) -> tuple[dict[str, ParsedRow], int]:
    """Merge rows sharing an address: later non-empty values win, tags add up. Returns the
    rows by key, in the order each address first appears, and how many rows were merged."""
    merged: dict[str, ParsedRow] = {}
    merged_count = 0
    for parsed in rows:
        earlier = merged.get(parsed.key)
        if earlier is None:
            merged[parsed.key] = parsed
            continue
        merged_count += 1
        if "marketing_consent" in parsed.values:
            # A later consent decision comes with its own date and source, or none.
            earlier.values.pop("marketing_consent_at", None)
            earlier.values.pop("marketing_consent_source", None)
        earlier.values.update(parsed.values)
        earlier.tags.extend(tag for tag in parsed.tags if tag not in earlier.tags)
    return merged, merged_count
