"""A report's table as the file its format makes: CSV, XLSX or PDF with its chart."""

from __future__ import annotations

import datetime as dt

from django.utils.text import slugify

from postroom.reports.charts import chart_make
from postroom.reports.mailing import Document
from postroom.reports.models import Report, ReportFormat
from postroom.reports.pdf import pdf_render
from postroom.reports.spreadsheets import csv_render, xlsx_render
from postroom.reports.table import Table

CONTENT_TYPES = {
    ReportFormat.CSV: "text/csv",
    ReportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ReportFormat.PDF: "application/pdf",
}


def document_filename(report: Report, *, day: dt.date) -> str:
    return f"{slugify(report.name)[:80] or 'report'}-{day.isoformat()}.{report.format}"


def document_make(report: Report, table: Table, *, tz: dt.tzinfo, day: dt.date) -> Document:
    """The file; ReportError for a value the format cannot hold or a chart it cannot draw."""
    if report.format == ReportFormat.XLSX:
        data = xlsx_render(table, tz=tz)
    elif report.format == ReportFormat.PDF:
        chart = None
        if report.chart and report.chart_label_column and report.chart_value_columns:
            chart = chart_make(
                table,
                kind=report.chart,
                label_column=report.chart_label_column,
                value_columns=list(report.chart_value_columns),
            )
        data = pdf_render(table, tz=tz, chart=chart)
    else:
        data = csv_render(table)
    return Document(
        filename=document_filename(report, day=day),
        content_type=CONTENT_TYPES[ReportFormat(report.format)],
        data=data,
    )
