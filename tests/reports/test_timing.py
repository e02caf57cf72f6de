"""Schedules' times across daylight-saving changes in Europe/Berlin and America/New_York: every
wall time runs once, none is missed (the skipped hour) and none doubled (the repeated hour);
presets mean the cron expressions they say."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from postroom.core.errors import ValidationError
from postroom.reports.timing import (
    cron_clean,
    last_run_until,
    next_run_after,
    preset_cron,
    runs_between,
    schedule_describe,
)


def local(times: list[dt.datetime], zone: str) -> list[str]:
    return [t.astimezone(ZoneInfo(zone)).isoformat(timespec="minutes") for t in times]


def runs(expression: str, zone: str, after: str, until: str) -> list[str]:
    tz = ZoneInfo(zone)
    found = runs_between(
        expression,
        time_zone=zone,
        after=dt.datetime.fromisoformat(after).replace(tzinfo=tz),
        until=dt.datetime.fromisoformat(until).replace(tzinfo=tz),
        limit=100,
    )
    return local(found, zone)


@pytest.mark.parametrize(
    ("zone", "after", "until", "expected"),
    [
        # Berlin jumps 02:00 -> 03:00 on 29 March 2026: 02:30 does not exist that day.
        (
            "Europe/Berlin",
            "2026-03-28T12:00",
            "2026-03-30T12:00",
            ["2026-03-29T03:30+02:00", "2026-03-30T02:30+02:00"],
        ),
        # New York jumps 02:00 -> 03:00 on 8 March 2026.
        (
            "America/New_York",
            "2026-03-07T12:00",
            "2026-03-09T12:00",
            ["2026-03-08T03:30-04:00", "2026-03-09T02:30-04:00"],
        ),
    ],
)
def test_a_daily_time_the_clock_skips_runs_once_just_after_the_jump(
    zone: str, after: str, until: str, expected: list[str]
) -> None:
    assert runs("30 2 * * *", zone, after, until) == expected


@pytest.mark.parametrize(
    ("zone", "after", "until", "expected"),
    [
        # Berlin goes back 03:00 -> 02:00 on 25 October 2026: 02:30 happens twice.
        (
            "Europe/Berlin",
            "2026-10-24T12:00",
            "2026-10-26T12:00",
            ["2026-10-25T02:30+02:00", "2026-10-26T02:30+01:00"],
        ),
        # New York goes back 02:00 -> 01:00 on 1 November 2026: 01:30 happens twice.
        (
            "America/New_York",
            "2026-10-31T12:00",
            "2026-11-02T12:00",
            ["2026-11-01T01:30-04:00", "2026-11-02T01:30-05:00"],
        ),
    ],
)
def test_a_daily_time_the_clock_shows_twice_runs_only_the_first_time(
    zone: str, after: str, until: str, expected: list[str]
) -> None:
    expression = "30 2 * * *" if zone == "Europe/Berlin" else "30 1 * * *"
    assert runs(expression, zone, after, until) == expected


def test_a_time_outside_the_change_keeps_its_wall_clock_time_on_both_sides() -> None:
    assert runs("0 9 * * 1-5", "America/New_York", "2026-03-06T12:00", "2026-03-10T12:00") == [
        "2026-03-09T09:00-04:00",
        "2026-03-10T09:00-04:00",
    ]
    assert runs("0 7 * * *", "Europe/Berlin", "2026-10-24T08:00", "2026-10-26T08:00") == [
        "2026-10-25T07:00+01:00",
        "2026-10-26T07:00+01:00",
    ]


def test_an_hourly_schedule_runs_every_wall_hour_once_through_both_changes() -> None:
    assert runs("0 * * * *", "Europe/Berlin", "2026-10-25T00:30", "2026-10-25T04:30") == [
        "2026-10-25T01:00+02:00",
        "2026-10-25T02:00+02:00",
        "2026-10-25T03:00+01:00",
        "2026-10-25T04:00+01:00",
    ]
    assert runs("0 * * * *", "Europe/Berlin", "2026-03-29T00:30", "2026-03-29T04:30") == [
        "2026-03-29T01:00+01:00",
        "2026-03-29T03:00+02:00",  # the 02:00 the clock skipped, run once at the jump
        "2026-03-29T04:00+02:00",
    ]


def test_the_run_after_a_repeated_time_is_the_next_day_not_the_repeat() -> None:
    tz = ZoneInfo("Europe/Berlin")
    first = dt.datetime(2026, 10, 25, 2, 30, tzinfo=tz)  # fold=0: the first 02:30
    assert local(
        [next_run_after("30 2 * * *", time_zone="Europe/Berlin", after=first)], "Europe/Berlin"
    ) == ["2026-10-26T02:30+01:00"]


@pytest.mark.parametrize(
    ("frequency", "weekday", "month_day", "expected"),
    [
        ("daily", None, None, "15 8 * * *"),
        ("weekdays", None, None, "15 8 * * 1-5"),
        ("weekly", 0, None, "15 8 * * 1"),
        ("weekly", 6, None, "15 8 * * 0"),
        ("monthly", None, 1, "15 8 1 * *"),
        ("monthly", None, 0, "15 8 L * *"),
    ],
)
def test_a_preset_is_the_cron_expression_it_says(
    frequency: str, weekday: int | None, month_day: int | None, expected: str
) -> None:
    assert (
        preset_cron(
            frequency=frequency, time_of_day=dt.time(8, 15), weekday=weekday, month_day=month_day
        )
        == expected
    )


def test_presets_across_the_change_in_new_york() -> None:
    weekly = preset_cron(frequency="weekly", time_of_day=dt.time(2, 30), weekday=6, month_day=None)
    assert runs(weekly, "America/New_York", "2026-03-01T12:00", "2026-03-16T00:00") == [
        "2026-03-08T03:30-04:00",  # Sunday 8 March: 02:30 does not exist
        "2026-03-15T02:30-04:00",
    ]
    monthly = preset_cron(frequency="monthly", time_of_day=dt.time(6, 0), weekday=None, month_day=0)
    assert runs(monthly, "America/New_York", "2026-01-15T00:00", "2026-04-01T00:00") == [
        "2026-01-31T06:00-05:00",
        "2026-02-28T06:00-05:00",
        "2026-03-31T06:00-04:00",
    ]


def test_a_bad_cron_expression_or_zone_is_refused_in_words() -> None:
    with pytest.raises(ValidationError, match="is not a cron expression"):
        cron_clean("61 * * * *")
    with pytest.raises(ValidationError, match="is not a cron expression"):
        cron_clean("0 7 * *")
    with pytest.raises(ValidationError, match="is not a time zone"):
        next_run_after("0 7 * * *", time_zone="Mars/Olympus", after=dt.datetime.now(dt.UTC))
    with pytest.raises(ValidationError, match="day of the month from 1 to 28"):
        preset_cron(frequency="monthly", time_of_day=dt.time(7), weekday=None, month_day=31)


def test_a_schedule_is_described_in_words() -> None:
    assert schedule_describe(
        frequency="weekdays",
        cron="0 7 * * 1-5",
        time_of_day=dt.time(7),
        weekday=None,
        month_day=None,
        time_zone="Europe/Berlin",
    ) == ("Monday to Friday at 07:00 (Europe/Berlin)")


def test_the_latest_run_is_found_walking_back_across_a_change() -> None:
    tz = ZoneInfo("Europe/Berlin")
    latest = last_run_until(
        "30 2 * * *",
        time_zone="Europe/Berlin",
        after=dt.datetime(2026, 3, 1, tzinfo=tz),
        until=dt.datetime(2026, 3, 29, 12, 0, tzinfo=tz),
    )
    assert local([latest], "Europe/Berlin") == ["2026-03-29T03:30+02:00"]  # type: ignore[list-item]
    assert (
        last_run_until(
            "0 7 * * *",
            time_zone="Europe/Berlin",
            after=dt.datetime(2026, 6, 1, 8, tzinfo=tz),
            until=dt.datetime(2026, 6, 2, 6, tzinfo=tz),
        )
        is None
    )
