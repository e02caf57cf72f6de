"""A query's result as the formats read it (pure): column names, rows, and whether the row
cap cut it short."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from postroom.core.errors import PostroomError


class ReportError(PostroomError):
    """A run cannot give its report: a query the database refused, a timeout, a value a
    format cannot hold. The message says what happened and what to do; the run is marked
    failed with it and nothing is sent."""

    code = "report_failed"
    http_status = 422


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    is_truncated: bool = False  # more rows than the cap: `rows` holds the first `cap`
    cap: int = 0
    title: str = ""
    # What the PDF prints under the title: the parameters as resolved, the time of the run.
    notes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def row_count(self) -> int:
        return len(self.rows)


def truncation_note(table: Table) -> str:
    return (
        f"Truncated: the query returned more than {table.cap:,} rows; this report holds the "
        f"first {table.cap:,}. Narrow the query (a shorter period, a WHERE clause) to get "
        "every row."
    )


def binary_refused(column: str, form: str) -> ReportError:
    return ReportError(
        f"The column “{column}” holds binary data (such as bytea or BLOB), which a {form} "
        "report cannot show. Leave it out of the query, or convert it to text there "
        "(encode(column, 'hex') in PostgreSQL, HEX(column) in MariaDB)."
    )


def plain_value(value: Any, *, column: str, form: str) -> Any:
    """A value of a type every format knows: None, bool, int, float, Decimal, str, date,
    datetime, time; anything else (UUID, JSON, intervals, network addresses) as its text.
    Binary data is refused (see `binary_refused`)."""
    if value is None or isinstance(value, bool | int | float | Decimal | str):
        return value
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        raise binary_refused(column, form)
    if isinstance(value, dt.timedelta):
        return str(value)
    return str(value)


def columns_check(columns: Sequence[str]) -> list[str]:
    """Names for the header: a blank one (an unnamed expression) becomes “column N”."""
    return [name if str(name).strip() else f"column {n}" for n, name in enumerate(columns, 1)]
