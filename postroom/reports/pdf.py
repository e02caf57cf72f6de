"""A report as a PDF (fpdf2, pure: bytes out): the title, the parameters, an optional chart
and the table, paginated with its header row repeated on every page and "page N of M".

fpdf2 rather than reportlab: it is pure Python, small, maintained, and its table layout
(repeated headings, wrapping cells, page breaks) is what a report needs, without a layout
language to learn (docs/reports.md). Text uses DejaVu Sans when the system has it (any
language); without it, the PDF core font Helvetica, which holds only Latin-1, and
characters outside it print as "?".
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from fpdf import FPDF, FontFace

from postroom.reports.charts import Chart, chart_marks
from postroom.reports.table import Table, plain_value, truncation_note

# Debian's fonts-dejavu-core, and where other systems keep it.
FONT_PATHS = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/TTF/DejaVuSans.ttf"),
)
# A PDF past this many rows (some 250 pages) serves nobody: a spreadsheet does.
PDF_MAX_ROWS = 10_000
# A cell's text is cut here: one value should not fill a page.
CELL_MAX_CHARS = 300
_CHART_HEIGHT_MM = 60
_FONT_SIZE = 8


def _font_path() -> Path | None:
    return next((path for path in FONT_PATHS if path.exists()), None)


class _Document(FPDF):
    def __init__(self, *, title: str, orientation: str) -> None:
        super().__init__(orientation=orientation, unit="mm", format="A4")
        self.report_title = title
        path = _font_path()
        if path is not None:
            self.add_font("DejaVu", "", str(path))
            bold = path.with_name("DejaVuSans-Bold.ttf")
            self.add_font("DejaVu", "B", str(bold if bold.exists() else path))
            self.family = "DejaVu"
            self.is_unicode = True
        else:
            self.family = "Helvetica"
            self.is_unicode = False
        self.set_auto_page_break(auto=True, margin=15)
        self.alias_nb_pages()

    def text_of(self, value: str) -> str:
        if self.is_unicode:
            return value
        return value.encode("latin-1", "replace").decode("latin-1")

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(self.family, "", 7)
        self.cell(
            0, 5, self.text_of(f"{self.report_title} · page {self.page_no()} of {{nb}}"), align="C"
        )


def _text(value: Any, *, column: str, tz: dt.tzinfo) -> str:
    value = plain_value(value, column=column, form="PDF")
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(tz)
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    text = str(value)
    return text if len(text) <= CELL_MAX_CHARS else text[: CELL_MAX_CHARS - 1] + "…"


def pdf_render(table: Table, *, tz: dt.tzinfo, chart: Chart | None = None) -> bytes:
    rows = [
        [_text(v, column=c, tz=tz) for c, v in zip(table.columns, row, strict=True)]
        for row in table.rows[:PDF_MAX_ROWS]
    ]
    wide = len(table.columns) > 5
    pdf = _Document(title=table.title, orientation="L" if wide else "P")
    pdf.add_page()
    pdf.set_font(pdf.family, "B", 16)
    pdf.multi_cell(0, 8, pdf.text_of(table.title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(pdf.family, "", 9)
    for label, value in table.notes:
        pdf.multi_cell(0, 5, pdf.text_of(f"{label}: {value}"), new_x="LMARGIN", new_y="NEXT")
    notes = _limit_notes(table, shown=len(rows))
    for note in notes:
        pdf.set_text_color(160, 40, 30)
        pdf.multi_cell(0, 5, pdf.text_of(note), new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
    pdf.ln(3)
    if chart is not None and chart.labels:
        _draw_chart(pdf, chart)
    _draw_table(pdf, table.columns, rows)
    return bytes(pdf.output())


def _limit_notes(table: Table, *, shown: int) -> list[str]:
    notes = []
    if table.is_truncated:
        notes.append(truncation_note(table))
    if shown < table.row_count:
        notes.append(
            f"This PDF shows the first {shown:,} of {table.row_count:,} rows; choose CSV or "
            "XLSX for all of them."
        )
    return notes


def _draw_table(pdf: _Document, columns: list[str], rows: list[list[str]]) -> None:
    if not rows:
        pdf.set_font(pdf.family, "", 10)
        pdf.cell(0, 8, "The query returned no rows.", new_x="LMARGIN", new_y="NEXT")
        return
    # Each column's share of the width follows its longest text (within limits).
    weights = [
        min(max(len(name), *(len(row[i]) for row in rows[:200]), 4), 40)
        for i, name in enumerate(columns)
    ]
    pdf.set_font(pdf.family, "", _FONT_SIZE)
    heading = FontFace(emphasis="BOLD", fill_color=(230, 236, 232))
    with pdf.table(
        col_widths=weights,
        headings_style=heading,
        text_align="LEFT",
        line_height=pdf.font_size * 1.6,
        repeat_headings=1,
    ) as drawn:
        drawn.row([pdf.text_of(name) for name in columns])
        for row in rows:
            drawn.row([pdf.text_of(cell) for cell in row])


def _draw_chart(pdf: _Document, chart: Chart) -> None:
    left, top = pdf.l_margin, pdf.get_y()
    width = pdf.w - pdf.l_margin - pdf.r_margin
    marks = chart_marks(chart, width=width, height=_CHART_HEIGHT_MM)
    pdf.set_draw_color(120, 120, 120)
    pdf.line(left, top + _CHART_HEIGHT_MM, left + width, top + _CHART_HEIGHT_MM)
    previous: dict[str, tuple[float, float]] = {}
    for mark in marks:
        red, green, blue = (int(mark.colour[i : i + 2], 16) for i in (1, 3, 5))
        pdf.set_fill_color(red, green, blue)
        pdf.set_draw_color(red, green, blue)
        x, y = left + mark.x, top + mark.y
        if chart.kind == "line":
            if mark.colour in previous:
                pdf.line(*previous[mark.colour], x, y)
            previous[mark.colour] = (x, y)
            pdf.circle(x=x, y=y, radius=0.8, style="F")
        elif mark.height > 0:
            pdf.rect(x, y, mark.width, mark.height, style="F")
    pdf.set_y(top + _CHART_HEIGHT_MM + 1)
    pdf.set_font(pdf.family, "", 7)
    pdf.set_text_color(0, 0, 0)
    step = width / len(chart.labels)
    if len(chart.labels) <= 31:  # labels of more bars than this overlap
        for index, label in enumerate(chart.labels):
            pdf.set_xy(left + step * index, top + _CHART_HEIGHT_MM + 1)
            pdf.cell(step, 4, pdf.text_of(label[:12]), align="C")
    pdf.set_xy(left, top + _CHART_HEIGHT_MM + 6)
    for series in chart.series:
        red, green, blue = (int(series.colour[i : i + 2], 16) for i in (1, 3, 5))
        pdf.set_text_color(red, green, blue)
        pdf.cell(pdf.get_string_width("■ "), 5, pdf.text_of("■"))
        pdf.set_text_color(0, 0, 0)
        label = pdf.text_of(f" {series.name}   ")
        pdf.cell(pdf.get_string_width(label), 5, label)
    if chart.is_cut:
        pdf.cell(0, 5, pdf.text_of(f"(the first {len(chart.labels)} rows)"))
    pdf.ln(5)
    # The table after the chart draws in its own colours, not the last series'.
    pdf.set_fill_color(255, 255, 255)
    pdf.set_draw_color(0, 0, 0)
    pdf.ln(4)
