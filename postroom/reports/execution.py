"""Run a report's query and get its table: parameters bound, read-only, timed, capped.

The one place a report's data is read, for a scheduled run, Run now and the preview alike.
Every failure of the database (syntax, timeout, a write refused, a lost connection, a login
refused) becomes a ReportError in plain words (postroom.reports.sources), never an
exception that would end the worker's job thread unexplained.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from sqlalchemy import exc, text

from postroom.core.errors import PostroomError
from postroom.reports import builtins
from postroom.reports.models import Report
from postroom.reports.parameters import Resolved, parameters_resolve
from postroom.reports.sources import (
    database_error_explain,
    engine_make,
    read_only_begin,
    source_target,
)
from postroom.reports.sqltext import sql_clean
from postroom.reports.table import ReportError, Table, columns_check

# Rows fetched from the driver at a time while reading up to the cap.
_FETCH_ROWS = 1000


@dataclass(frozen=True)
class ReportResult:
    table: Table
    resolved: Resolved


def query_run(
    report: Report, *, binds: dict[str, Any], max_rows: int, timeout_seconds: int
) -> tuple[list[str], list[tuple[Any, ...]], bool]:
    """The columns, the first `max_rows` rows, and whether there were more."""
    assert report.data_source is not None
    target = source_target(report.data_source)
    sql = sql_clean(report.sql, is_mysql=target.dialect == "mysql")
    engine = engine_make(target, timeout_seconds=timeout_seconds)
    try:
        with engine.connect() as connection:
            read_only_begin(connection, dialect=target.dialect, timeout_seconds=timeout_seconds)
            result = connection.execute(text(sql), binds)
            if not result.returns_rows:
                raise ReportError(
                    "The query returned no table of rows. A report runs one SELECT (or another "
                    "statement that returns rows)."
                )
            columns = list(result.keys())
            rows: list[tuple[Any, ...]] = []
            while len(rows) <= max_rows and (batch := result.fetchmany(_FETCH_ROWS)):
                rows.extend(tuple(row) for row in batch)
            connection.rollback()
    except PostroomError:
        raise
    except (exc.SQLAlchemyError, OSError, UnicodeError, ValueError) as error:
        raise ReportError(database_error_explain(error)) from None
    finally:
        engine.dispose()
    return columns, rows[:max_rows], len(rows) > max_rows


def report_result(
    report: Report,
    *,
    now: dt.datetime,
    tz: dt.tzinfo,
    max_rows: int | None = None,
    timeout_seconds: int | None = None,
) -> ReportResult:
    """The report's table at `now` in `tz` (where its relative dates are resolved)."""
    cap = max_rows if max_rows is not None else settings.POSTROOM_REPORT_MAX_ROWS
    timeout = timeout_seconds or settings.POSTROOM_REPORT_TIMEOUT_SECONDS
    resolved = parameters_resolve(report.parameters, now=now, tz=tz)
    if report.is_builtin:
        columns, rows, is_truncated = builtins.builtin_run(
            report.builtin, binds=resolved.binds, tz=tz, max_rows=cap
        )
    else:
        columns, rows, is_truncated = query_run(
            report, binds=resolved.binds, max_rows=cap, timeout_seconds=timeout
        )
    notes = [(name, shown) for name, shown in resolved.shown.items()]
    notes.append(("Run", f"{now.astimezone(tz):%Y-%m-%d %H:%M} ({tz})"))
    table = Table(
        columns=columns_check(columns),
        rows=rows,
        is_truncated=is_truncated,
        cap=cap,
        title=report.name,
        notes=notes,
    )
    return ReportResult(table=table, resolved=resolved)
