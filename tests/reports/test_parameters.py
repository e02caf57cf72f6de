"""Parameters and relative dates, resolved in the schedule's time zone (pure)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from postroom.core.errors import ValidationError
from postroom.reports.parameters import (
    date_resolve,
    parameters_clean,
    parameters_resolve,
    period_resolve,
)

WEDNESDAY = dt.date(2026, 6, 3)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("today", dt.date(2026, 6, 3)),
        ("Yesterday", dt.date(2026, 6, 2)),
        ("tomorrow", dt.date(2026, 6, 4)),
        ("10 days ago", dt.date(2026, 5, 24)),
        ("start of this week", dt.date(2026, 6, 1)),
        ("start of last week", dt.date(2026, 5, 25)),
        ("end of last week", dt.date(2026, 5, 31)),
        ("start of last month", dt.date(2026, 5, 1)),
        ("end of last month", dt.date(2026, 5, 31)),
        ("start of this quarter", dt.date(2026, 4, 1)),
        ("end of last quarter", dt.date(2026, 3, 31)),
        ("start of last year", dt.date(2025, 1, 1)),
        ("2026-02-28", dt.date(2026, 2, 28)),
    ],
)
def test_a_relative_date_names_the_day_it_says(text: str, expected: dt.date) -> None:
    assert date_resolve(text, today=WEDNESDAY) == expected


@pytest.mark.parametrize(
    ("text", "start", "last"),
    [
        ("last month", dt.date(2026, 5, 1), dt.date(2026, 5, 31)),
        ("this month", dt.date(2026, 6, 1), dt.date(2026, 6, 30)),
        ("last week", dt.date(2026, 5, 25), dt.date(2026, 5, 31)),
        ("yesterday", dt.date(2026, 6, 2), dt.date(2026, 6, 2)),
        ("last 7 days", dt.date(2026, 5, 27), dt.date(2026, 6, 2)),
        ("last quarter", dt.date(2026, 1, 1), dt.date(2026, 3, 31)),
        ("last year", dt.date(2025, 1, 1), dt.date(2025, 12, 31)),
        ("2026-05-10..2026-05-12", dt.date(2026, 5, 10), dt.date(2026, 5, 12)),
    ],
)
def test_a_period_spans_the_days_it_says(text: str, start: dt.date, last: dt.date) -> None:
    period = period_resolve(text, today=WEDNESDAY)
    assert (period.start, period.last_day, period.end) == (start, last, last + dt.timedelta(days=1))


def test_january_last_month_is_december_of_the_year_before() -> None:
    period = period_resolve("last month", today=dt.date(2026, 1, 15))
    assert (period.start, period.end) == (dt.date(2025, 12, 1), dt.date(2026, 1, 1))


def test_relative_dates_are_resolved_in_the_schedules_time_zone() -> None:
    # 22:30 UTC on 31 May is already 1 June in Berlin (00:30), still 31 May in New York.
    moment = dt.datetime(2026, 5, 31, 22, 30, tzinfo=dt.UTC)
    parameters = [
        {"name": "day", "type": "date", "value": "yesterday"},
        {"name": "p", "type": "period", "value": "last month"},
    ]
    berlin = parameters_resolve(parameters, now=moment, tz=ZoneInfo("Europe/Berlin"))
    new_york = parameters_resolve(parameters, now=moment, tz=ZoneInfo("America/New_York"))
    assert berlin.binds["day"] == dt.date(2026, 5, 31)
    assert new_york.binds["day"] == dt.date(2026, 5, 30)
    assert (berlin.binds["p_start"], berlin.binds["p_end"]) == (
        dt.date(2026, 5, 1),
        dt.date(2026, 6, 1),
    )
    assert new_york.binds["p_start"] == dt.date(2026, 4, 1)
    assert berlin.period == "1–31 May 2026"
    assert berlin.shown["day"] == "2026-05-31 (yesterday)"


def test_numbers_and_texts_are_bound_as_written() -> None:
    resolved = parameters_resolve(
        [
            {"name": "limit", "type": "number", "value": "12.5"},
            {"name": "region", "type": "text", "value": "x'; DROP TABLE sales; --"},
        ],
        now=dt.datetime(2026, 6, 1, tzinfo=dt.UTC),
        tz=dt.UTC,
    )
    assert str(resolved.binds["limit"]) == "12.5"
    assert resolved.binds["region"] == "x'; DROP TABLE sales; --"


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ([{"name": "1x", "type": "text", "value": ""}], "cannot name a parameter"),
        (
            [{"name": "d", "type": "date", "value": "next blue moon"}],
            "is not a date Postroom knows",
        ),
        ([{"name": "p", "type": "period", "value": "someday"}], "is not a period Postroom knows"),
        ([{"name": "d", "type": "when", "value": "today"}], "needs a type"),
        (
            [
                {"name": "a", "type": "text", "value": ""},
                {"name": "A", "type": "text", "value": ""},
            ],
            "given twice",
        ),
        ([{"name": "n", "type": "number", "value": "ten"}], "is not a number"),
    ],
)
def test_bad_parameters_are_refused_in_words(
    parameters: list[dict[str, str]], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        parameters_clean(parameters)
