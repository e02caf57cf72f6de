"""CSV export of contacts, safe to open in a spreadsheet.

A cell that starts with = + - @ (or a tab or carriage return) is a formula to Excel and
LibreOffice, and a contact's name or notes come from anyone (a web form, an import). Such
cells get a leading apostrophe, which spreadsheets show as text (OWASP "CSV Injection").
The import removes that apostrophe again, so an export imports back unchanged.

The header names are the ones the import guesses, so an export maps itself on import.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import datetime

from django.utils import timezone

from postroom.contacts.importing import FORMULA_PREFIXES
from postroom.contacts.models import Contact

EXPORT_HEADERS = [
    "Email",
    "First name",
    "Last name",
    "Phone",
    "Company",
    "Tags",
    "Notes",
    "Marketing consent",
    "Consent date",
    "Consent source",
    "Active",
    "Created at",
    "Updated at",
]
# Contacts fetched per query while streaming: memory stays flat for any list size.
EXPORT_CHUNK = 2000
# Excel reads a CSV as UTF-8 only when it starts with a byte order mark.
BYTE_ORDER_MARK = "\ufeff"


def csv_safe(value: str) -> str:
    """Neutralise a cell a spreadsheet would run as a formula."""
    if value.startswith(FORMULA_PREFIXES):
        return f"'{value}"
    return value


def _when(value: datetime | None, *, timespec: str = "seconds") -> str:
    return timezone.localtime(value).isoformat(timespec=timespec) if value else ""


def contact_export_row(contact: Contact) -> list[str]:
    return [
        contact.email,
        contact.first_name,
        contact.last_name,
        contact.phone,
        contact.organization.name if contact.organization else "",
        ", ".join(tag.name for tag in contact.tags.all()),
        contact.notes,
        "yes" if contact.marketing_consent else "no",
        # To the microsecond, so an export imported back changes nothing.
        _when(contact.marketing_consent_at, timespec="auto"),
        contact.marketing_consent_source,
        "yes" if contact.is_active else "no",
        _when(contact.created_at),
        _when(contact.updated_at),
    ]


class _Line:
    """A file-like object whose write() returns the line, for csv.writer to stream."""

    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[list[str]], *, with_bom: bool = True) -> Iterator[str]:
    """Encode rows as CSV lines, every cell made safe."""
    writer = csv.writer(_Line())
    if with_bom:
        yield BYTE_ORDER_MARK
    for row in rows:
        yield writer.writerow([csv_safe(cell) for cell in row])


def contact_export_lines(contacts: Iterable[Contact]) -> Iterator[str]:
    """The CSV text of `contacts`, line by line, header first."""

    def rows() -> Iterator[list[str]]:
        yield EXPORT_HEADERS
        for contact in contacts:
            yield contact_export_row(contact)

    return csv_lines(rows())
