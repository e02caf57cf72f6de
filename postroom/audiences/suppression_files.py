"""The suppression list as a CSV file: read one to import, write one to export.

The file is read with the contact import's rules (postroom.contacts.importing: UTF-8 with
or without a BOM, comma, semicolon or tab, a spreadsheet's formula escape undone) and
written with the contact export's (postroom.contacts.exporting: cells a spreadsheet would
run as formulas are escaped), so an exported list imports back unchanged. The outbox owns
the list itself (postroom.outbox.suppression); it sits below contacts and cannot read CSV
files with their rules, hence this module.

A file is checked and written within the request: it is a list of addresses, far smaller
than a contact file, and the page answers with what was added.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.core.files.uploadedfile import UploadedFile

from postroom.contacts.exporting import csv_lines
from postroom.contacts.importing import SNIFF_CHARS, cell_unescape, delimiter_sniff
from postroom.core.errors import PostroomError, ValidationError
from postroom.outbox.models import Suppression
from postroom.outbox.suppression import Entry, entry_make, suppression_export_rows

# Checked and written in the request: 100,000 addresses take a few seconds on a 2-core
# machine (email-validator's syntax check is most of it). A larger list: split the file.
MAX_ROWS = 100_000
# Header names of the address column (lower case, without blanks and punctuation).
_ADDRESS_HEADERS = {"address", "email", "emailaddress", "mail", "recipient"}


@dataclass(frozen=True)
class Rejected:
    row: int  # as a spreadsheet numbers it
    value: str
    reason: str


@dataclass(frozen=True)
class FileRead:
    entries: list[Entry]
    rejected: list[Rejected]


def suppression_file_read(upload: UploadedFile, *, reason: str, note: str, source: str) -> FileRead:
    """The addresses of a CSV file: its column named Address or Email (or its only or
    first column), with a Reason and a Note column when it has them (else `reason` and
    `note` for every row). A first row that holds no address is a header. Bad rows are
    rejected with why; the others are kept."""
    text = _text(upload)
    delimiter = delimiter_sniff(text[:SNIFF_CHARS])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        rows = list(reader)
    except csv.Error as error:
        raise ValidationError(
            f"The file cannot be read as CSV near row {reader.line_num}: {error}. Check the "
            "quotes in that row, or save the file again from the spreadsheet.",
            field="file",
        ) from None
    if not any(any(cell.strip() for cell in row) for row in rows):
        raise ValidationError("The file is empty.", field="file")
    columns, first = _columns(rows[0])
    if len(rows) - first > MAX_ROWS:
        raise ValidationError(
            f"The file has {len(rows) - first:,} rows; import at most {MAX_ROWS:,} at once. "
            "Split it into smaller files.",
            field="file",
        )
    entries: list[Entry] = []
    rejected: list[Rejected] = []
    for number, row in enumerate(rows[first:], start=first + 1):
        cells = [cell_unescape(cell.strip()) for cell in row]
        value = _cell(cells, columns["address"])
        if not any(cells):
            continue  # a blank row
        try:
            entries.append(
                entry_make(
                    value,
                    reason=_cell(cells, columns.get("reason")).lower() or reason,
                    note=_cell(cells, columns.get("note")) or note,
                    source=source,
                )
            )
        except PostroomError as error:
            rejected.append(Rejected(number, value, error.message))
    return FileRead(entries, rejected)


def _text(upload: UploadedFile) -> str:
    try:
        return upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError(
            'The file is not UTF-8 text. Save it as "CSV UTF-8" and upload it again.',
            field="file",
        ) from None


def _columns(first_row: list[str]) -> tuple[dict[str, int], int]:
    """Where the address, reason and note are, and the index of the first data row."""
    keys = ["".join(ch for ch in cell.lower() if ch.isalnum()) for cell in first_row]
    address = next((i for i, key in enumerate(keys) if key in _ADDRESS_HEADERS), None)
    if address is None:
        # No header naming the address: a plain list of addresses, from its first row.
        return {"address": 0}, 0
    columns = {"address": address}
    for name in ("reason", "note"):
        if name in keys:
            columns[name] = keys.index(name)
    return columns, 1


def _cell(cells: list[str], index: int | None) -> str:
    if index is None or index >= len(cells):
        return ""
    return cells[index]


def suppression_export_lines(entries: Iterable[Suppression]) -> Iterator[str]:
    """The entries as CSV text, line by line, safe to open in a spreadsheet."""
    return csv_lines(suppression_export_rows(entries))
