"""CSV and XLSX files of a report's table (pure: bytes out, no I/O).

CSV: UTF-8 with a byte order mark (Excel needs it to read UTF-8), text cells that a
spreadsheet would run as a formula neutralised as the contact export does
(postroom.contacts.exporting.csv_safe), dates and times in ISO 8601.

XLSX (openpyxl): one sheet, the header row bold and frozen, each column as wide as its
longest value (up to a limit), numbers as numbers and dates as dates with a date format, so
that sorting and sums work. Excel keeps no time zones: a time with one is shown in the
report's time zone, without it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from postroom.contacts.exporting import BYTE_ORDER_MARK, csv_safe
from postroom.reports.table import ReportError, Table, plain_value, truncation_note

# Excel's own limits (Microsoft's "Excel specifications and limits").
XLSX_MAX_ROWS = 1_048_576
XLSX_MAX_CELL_CHARS = 32_767
# Excel holds numbers as IEEE doubles: an integer past 2**53 would lose its last digits,
# so it is written as text.
_EXACT_INTEGER = 2**53
# Column widths in characters: a column of long texts stops here and wraps in Excel.
_MIN_WIDTH, _MAX_WIDTH = 8, 60
_FORMATS = {
    dt.datetime: "yyyy-mm-dd hh:mm:ss",
    dt.date: "yyyy-mm-dd",
    dt.time: "hh:mm:ss",
}


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, str):
        return csv_safe(value)
    return str(value)


def csv_render(table: Table) -> bytes:
    out = io.StringIO()
    out.write(BYTE_ORDER_MARK)
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180 §2
    writer.writerow([csv_safe(name) for name in table.columns])
    for row in table.rows:
        writer.writerow(
            [
                _csv_text(plain_value(v, column=c, form="CSV"))
                for c, v in zip(table.columns, row, strict=True)
            ]
        )
    return out.getvalue().encode()


def _xlsx_value(value: Any, *, column: str, tz: dt.tzinfo) -> Any:
    value = plain_value(value, column=column, form="XLSX")
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(tz).replace(tzinfo=None)
    if isinstance(value, dt.time) and value.tzinfo is not None:
        return value.replace(tzinfo=None)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _EXACT_INTEGER:
        return str(value)
    if isinstance(value, Decimal) and not value.is_finite():
        return str(value)
    if isinstance(value, str) and ILLEGAL_CHARACTERS_RE.search(value):
        raise ReportError(
            f"A text in the column “{column}” holds a control character that an Excel cell "
            "cannot hold. Remove it in the query (REPLACE(…)), or choose CSV."
        )
    if isinstance(value, str) and len(value) > XLSX_MAX_CELL_CHARS:
        raise ReportError(
            f"A value in the column “{column}” has {len(value):,} characters; an Excel cell "
            f"holds at most {XLSX_MAX_CELL_CHARS:,}. Shorten it in the query (LEFT(…)), or "
            "choose CSV."
        )
    return value


def _width(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, dt.datetime):
        return 19
    return len(str(value))


def xlsx_render(table: Table, *, tz: dt.tzinfo) -> bytes:
    if table.row_count + 2 > XLSX_MAX_ROWS:
        raise ReportError(
            f"The result has {table.row_count:,} rows; an Excel sheet holds at most "
            f"{XLSX_MAX_ROWS - 1:,} under its header. Choose CSV, or narrow the query."
        )
    rows = [
        [_xlsx_value(v, column=c, tz=tz) for c, v in zip(table.columns, row, strict=True)]
        for row in table.rows
    ]
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title="Report")
    sheet.freeze_panes = "A2"
    for index, name in enumerate(table.columns, 1):
        longest = max([len(name), *(_width(row[index - 1]) for row in rows[:1000])])
        width = min(max(longest + 2, _MIN_WIDTH), _MAX_WIDTH)
        sheet.column_dimensions[get_column_letter(index)].width = width
    bold = Font(bold=True)
    sheet.append([_cell(sheet, name, font=bold) for name in table.columns])
    for row in rows:
        sheet.append([_cell(sheet, value) for value in row])
    if table.is_truncated:
        sheet.append([])
        sheet.append([_cell(sheet, truncation_note(table), font=bold)])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _cell(sheet: Any, value: Any, *, font: Font | None = None) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value=value)
    if isinstance(value, str):
        # openpyxl takes a text starting with "=" for a formula; a report's text is data.
        cell.data_type = "s"
    for kind, number_format in _FORMATS.items():
        if isinstance(value, kind):
            cell.number_format = number_format
            break
    if font is not None:
        cell.font = font
    return cell
