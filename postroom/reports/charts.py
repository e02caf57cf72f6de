"""A report's chart (pure): the chosen columns' values, and where each bar or point goes in
a drawing area. The browser's SVG and the PDF draw the same geometry."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from postroom.reports.table import ReportError, Table

# A chart of more bars than fit a page width is unreadable: the first this many rows.
MAX_POINTS = 60
MAX_SERIES = 4
# Colours of the series (postroom.css's palette), also used in the PDF.
SERIES_COLOURS = ("#2f6f4f", "#c0392b", "#2c5d8f", "#b7791f")


@dataclass(frozen=True)
class Series:
    name: str
    values: list[float]
    colour: str


@dataclass(frozen=True)
class Chart:
    kind: str  # "bar" or "line"
    labels: list[str]
    series: list[Series]
    is_cut: bool  # more rows than MAX_POINTS

    @property
    def top(self) -> float:
        highest = max((max(s.values, default=0.0) for s in self.series), default=0.0)
        return highest if highest > 0 else 1.0


@dataclass(frozen=True)
class Mark:
    """A bar (x, y, width, height) or a point of a line (x, y), in the drawing's units."""

    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


def _number(value: Any, *, column: str, row: int) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float | Decimal):
        return float(value)
    raise ReportError(
        f"The chart needs numbers, and the column “{column}” holds “{str(value)[:40]}” in row "
        f"{row}. Chart a numeric column, or choose no chart."
    )


def chart_make(table: Table, *, kind: str, label_column: str, value_columns: list[str]) -> Chart:
    """The chart of `table`, or ReportError naming a column the result does not have."""
    for column in [label_column, *value_columns]:
        if column not in table.columns:
            raise ReportError(
                f"The chart uses the column “{column}”, which the query does not return (it "
                f"returns {', '.join(table.columns)}). Change the chart's columns."
            )
    rows = table.rows[:MAX_POINTS]
    label_index = table.columns.index(label_column)
    series = []
    for number, column in enumerate(value_columns[:MAX_SERIES]):
        index = table.columns.index(column)
        values = [_number(row[index], column=column, row=n) for n, row in enumerate(rows, 1)]
        series.append(Series(column, values, SERIES_COLOURS[number]))
    labels = ["" if row[label_index] is None else str(row[label_index]) for row in rows]
    return Chart(kind=kind, labels=labels, series=series, is_cut=len(table.rows) > MAX_POINTS)


def chart_marks(chart: Chart, *, width: float, height: float) -> list[Mark]:
    """Bars side by side per label, or line points, scaled to `height` from the top value;
    y grows downwards (SVG and PDF pages both)."""
    if not chart.labels:
        return []
    step = width / len(chart.labels)
    marks: list[Mark] = []
    for number, series in enumerate(chart.series):
        for index, value in enumerate(series.values):
            size = height * max(value, 0.0) / chart.top
            title = f"{chart.labels[index]}: {series.name} {value:g}"
            if chart.kind == "line":
                x = step * index + step / 2
                marks.append(Mark(x, height - size, 0, 0, series.colour, title))
            else:
                bar = step * 0.8 / len(chart.series)
                x = step * index + step * 0.1 + bar * number
                marks.append(Mark(x, height - size, bar, size, series.colour, title))
    return marks
