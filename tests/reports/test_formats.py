"""Each format is opened by its own reader and checked for its headers and values: csv,
openpyxl (types, frozen bold header, widths) and pypdf (title, parameters, every row over
several pages, the chart's legend, the truncation note)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from pypdf import PdfReader

from postroom.reports.charts import chart_make, chart_marks
from postroom.reports.pdf import pdf_render
from postroom.reports.spreadsheets import csv_render, xlsx_render
from postroom.reports.table import ReportError, Table

BERLIN = ZoneInfo("Europe/Berlin")
MOMENT = dt.datetime(2026, 5, 31, 22, 15, tzinfo=dt.UTC)


def table(**fields: object) -> Table:
    values: dict[str, object] = {
        "columns": ["day", "region", "amount", "count", "at", "seller"],
        "rows": [
            (dt.date(2026, 5, 1), "North", Decimal("120.50"), 3, MOMENT, "Ann Müller"),
            (dt.date(2026, 5, 2), "South", Decimal("80.00"), 1, None, "=cmd|' /C calc'!A0"),
        ],
        "title": "Sales by day",
        "notes": [("period", "1–31 May 2026 (last month)")],
    }
    values.update(fields)
    return Table(**values)  # type: ignore[arg-type]


def test_csv_reads_back_with_its_header_and_values() -> None:
    data = csv_render(table())
    assert data.startswith(b"\xef\xbb\xbf")  # Excel reads UTF-8 only after a BOM
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["day", "region", "amount", "count", "at", "seller"]
    assert rows[1] == [
        "2026-05-01",
        "North",
        "120.50",
        "3",
        "2026-05-31T22:15:00+00:00",
        "Ann Müller",
    ]
    assert rows[2][5] == "'=cmd|' /C calc'!A0"  # a formula neutralised, as the contact export does
    assert rows[2][4] == ""


def test_xlsx_has_typed_columns_a_frozen_bold_header_and_widths() -> None:
    book = openpyxl.load_workbook(io.BytesIO(xlsx_render(table(), tz=BERLIN)))
    sheet = book.active
    assert sheet.freeze_panes == "A2"
    assert [cell.value for cell in sheet[1]] == ["day", "region", "amount", "count", "at", "seller"]
    assert all(cell.font.b for cell in sheet[1])
    day, region, amount, count, at, seller = (cell.value for cell in sheet[2])
    assert day == dt.datetime(2026, 5, 1) and sheet["A2"].number_format == "yyyy-mm-dd"
    assert amount == 120.5 and isinstance(count, int)
    assert at == dt.datetime(2026, 6, 1, 0, 15)  # shown in the report's zone
    assert sheet["F3"].value == "=cmd|' /C calc'!A0" and sheet["F3"].data_type == "s"
    assert sheet.column_dimensions["F"].width > sheet.column_dimensions["D"].width >= 8


def test_xlsx_keeps_large_integers_exact_as_text() -> None:
    book = openpyxl.load_workbook(
        io.BytesIO(xlsx_render(Table(columns=["id"], rows=[(2**60,)]), tz=BERLIN))
    )
    assert book.active["A2"].value == str(2**60)


def test_a_truncated_xlsx_says_so_under_its_rows() -> None:
    data = xlsx_render(table(is_truncated=True, cap=2), tz=BERLIN)
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    assert sheet["A5"].value.startswith("Truncated: the query returned more than 2 rows")


@pytest.mark.parametrize("render", ["csv", "xlsx", "pdf"])
def test_binary_data_is_refused_in_words_by_every_format(render: str) -> None:
    binary = Table(columns=["id", "photo"], rows=[(1, b"\x89PNG")])
    with pytest.raises(ReportError, match="The column “photo” holds binary data"):
        if render == "csv":
            csv_render(binary)
        elif render == "xlsx":
            xlsx_render(binary, tz=BERLIN)
        else:
            pdf_render(binary, tz=BERLIN)


def test_a_control_character_excel_cannot_hold_is_said_in_words() -> None:
    with pytest.raises(ReportError, match="control character"):
        xlsx_render(Table(columns=["note"], rows=[("bell\x07",)]), tz=BERLIN)


def pdf_text(data: bytes) -> tuple[int, str]:
    reader = PdfReader(io.BytesIO(data))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


def test_pdf_has_its_title_parameters_header_and_every_row_over_several_pages() -> None:
    rows = [
        (
            dt.date(2026, 5, 1) + dt.timedelta(days=n % 31),
            f"Region {n}",
            Decimal(n),
            n,
            None,
            "Ann Müller",
        )
        for n in range(150)
    ]
    pages, text = pdf_text(pdf_render(table(rows=rows), tz=BERLIN))
    assert pages > 2
    assert text.startswith("Sales by day")
    assert "period: 1–31 May 2026 (last month)" in text
    assert "Ann Müller" in text
    for n in (0, 75, 149):
        assert f"Region {n} " in text
    assert text.count("day region amount count at seller") == pages  # the header on each page
    assert f"page {pages} of {pages}" in text


def test_pdf_draws_its_chart_and_says_when_it_was_truncated() -> None:
    data = table(is_truncated=True, cap=2)
    chart = chart_make(data, kind="bar", label_column="region", value_columns=["amount", "count"])
    pages, text = pdf_text(pdf_render(data, tz=BERLIN, chart=chart))
    assert "Truncated: the query returned more than 2 rows" in text
    assert re.search(r"■\s+amount\s+■\s+count", text)


def test_chart_bars_scale_to_the_largest_value() -> None:
    chart = chart_make(table(), kind="bar", label_column="region", value_columns=["amount"])
    north, south = chart_marks(chart, width=200, height=100)
    assert north.height == 100 and round(south.height, 2) == round(100 * 80 / 120.5, 2)
    assert north.y == 0 and south.x > north.x


def test_a_chart_of_text_is_refused_in_words() -> None:
    with pytest.raises(ReportError, match="The chart needs numbers"):
        chart_make(table(), kind="bar", label_column="day", value_columns=["seller"])
    with pytest.raises(ReportError, match="which the query does not return"):
        chart_make(table(), kind="line", label_column="day", value_columns=["profit"])
