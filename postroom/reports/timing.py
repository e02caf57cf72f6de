"""When a schedule is due: presets and cron expressions in a time zone (pure).

A cron expression names times on the wall clock of the schedule's time zone, and each wall
time runs once, across daylight-saving changes too:
- a time the clock skips (02:30 on the night it jumps from 02:00 to 03:00) runs as soon as
  the clock is past it, at the same distance after the jump (03:30): no run is missed;
- a time the clock shows twice (02:30 on the night it goes back from 03:00 to 02:00) runs
  the first time only: no run is doubled.
croniter iterates the wall times; this module places each one on the real time line, which
croniter alone gets wrong in the hour that repeats (it runs such a time twice).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterator

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

from postroom.core.errors import ValidationError

WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# Cron counts Sunday as 0 and Monday as 1; Python's weekday() counts Monday as 0.
_CRON_WEEKDAY = (1, 2, 3, 4, 5, 6, 0)
# A monthly run on day 29-31 would skip the months without it: offer 1-28 and "last day".
MAX_MONTH_DAY = 28
# The wall times one search looks at, at most: a next run from three hours back (an
# every-minute expression passes 180 before `after`), or the first 1,000 missed times and
# an hour more (the scheduler's count). Past it a search ends, never hangs.
_MAX_STEPS = 10_000
# See runs_between: the wall times of one skipped hour, minute by minute.
_REORDER_MARGIN = 60
# Daylight-saving shifts are an hour at most (30 minutes on Lord Howe Island).
_LOOK_BACK = dt.timedelta(hours=3)


def zone_get(name: str, *, field: str = "time_zone") -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"“{name}” is not a time zone; use a name such as Europe/Berlin or America/New_York.",
            field=field,
        ) from None


def preset_cron(
    *, frequency: str, time_of_day: dt.time | None, weekday: int | None, month_day: int | None
) -> str:
    """The cron expression of a preset (daily, weekdays, weekly, monthly)."""
    if time_of_day is None:
        raise ValidationError("Choose the time of day.", field="time_of_day")
    at = f"{time_of_day.minute} {time_of_day.hour}"
    if frequency == "daily":
        return f"{at} * * *"
    if frequency == "weekdays":
        return f"{at} * * 1-5"
    if frequency == "weekly":
        if weekday is None or not 0 <= weekday <= 6:
            raise ValidationError("Choose the day of the week.", field="weekday")
        return f"{at} * * {_CRON_WEEKDAY[weekday]}"
    if frequency == "monthly":
        if month_day is None or not 0 <= month_day <= MAX_MONTH_DAY:
            raise ValidationError(
                f"Choose a day of the month from 1 to {MAX_MONTH_DAY}, or the last day.",
                field="month_day",
            )
        return f"{at} {'L' if month_day == 0 else month_day} * *"
    raise ValidationError("Choose how often the report is sent.", field="frequency")


def cron_clean(expression: str, *, field: str = "cron") -> str:
    """A five-field cron expression, checked: `minute hour day-of-month month day-of-week`."""
    text = " ".join(expression.split())
    if len(text.split(" ")) != 5 or not croniter.is_valid(text):
        raise ValidationError(
            f"“{expression}” is not a cron expression. Write five fields: minute, hour, day of "
            "the month, month, day of the week; “0 7 * * 1-5” is 07:00 Monday to Friday.",
            field=field,
        )
    return text


def _wall_times(
    expression: str, start_wall: dt.datetime, *, backwards: bool = False
) -> Iterator[dt.datetime]:
    """The naive wall times of `expression` after (or before) `start_wall`, in order."""
    iterator = croniter(expression, start_wall)
    step = iterator.get_prev if backwards else iterator.get_next
    for _ in range(_MAX_STEPS):
        try:
            yield step(dt.datetime)
        except (CroniterBadDateError, CroniterBadCronError):
            raise ValidationError(
                f"“{expression}” names no time that exists (such as 30 February); correct it.",
                field="cron",
            ) from None


def _placed(wall: dt.datetime, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """A wall time on the time line: a repeated one at its first occurrence, a skipped one
    after the jump (both are what fold=0 means to zoneinfo)."""
    return wall.replace(tzinfo=tz, fold=0).astimezone(dt.UTC)


def _wall(moment: dt.datetime, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    return moment.astimezone(tz).replace(tzinfo=None)


def next_run_after(expression: str, *, time_zone: str, after: dt.datetime) -> dt.datetime:
    """The first time (UTC) after `after` that `expression` names in `time_zone`."""
    tz = zone_get(time_zone)
    # From a few hours back on the wall clock: a wall time the jump skipped places after
    # the jump, later than wall times that come after it, so starting at `after`'s own wall
    # time could pass it by. The loop drops every time not after `after`.
    for wall in _wall_times(expression, _wall(after, tz) - _LOOK_BACK):
        placed = _placed(wall, tz)
        if placed > after:
            return placed
    raise ValidationError(f"“{expression}” names no time after {after:%Y-%m-%d %H:%M}.")


def runs_between(
    expression: str, *, time_zone: str, after: dt.datetime, until: dt.datetime, limit: int
) -> list[dt.datetime]:
    """The first `limit` run times after `after` and at or before `until`, in one pass."""
    tz = zone_get(time_zone)
    stop = _wall(until, tz) + _LOOK_BACK
    found: set[dt.datetime] = set()
    for wall in _wall_times(expression, _wall(after, tz) - _LOOK_BACK):
        # Wall times in a skipped hour place after the ones that follow them: collecting an
        # hour of minutes more than asked keeps the first `limit` exact.
        if wall > stop or len(found) >= limit + _REORDER_MARGIN:
            break
        placed = _placed(wall, tz)
        if after < placed <= until:
            found.add(placed)
    return sorted(found)[:limit]


def last_run_until(
    expression: str, *, time_zone: str, after: dt.datetime, until: dt.datetime
) -> dt.datetime | None:
    """The latest run time after `after` and at or before `until`, walking back from
    `until` (however many came before it)."""
    tz = zone_get(time_zone)
    floor = _wall(after, tz) - _LOOK_BACK
    best: dt.datetime | None = None
    for wall in _wall_times(expression, _wall(until, tz) + _LOOK_BACK, backwards=True):
        if wall < floor or (best is not None and wall < _wall(best, tz) - _LOOK_BACK):
            break
        placed = _placed(wall, tz)
        if after < placed <= until and (best is None or placed > best):
            best = placed
    return best


def schedule_describe(
    *,
    frequency: str,
    cron: str,
    time_of_day: dt.time | None,
    weekday: int | None,
    month_day: int | None,
    time_zone: str,
) -> str:
    """The schedule in words: “Monday to Friday at 07:00 (Europe/Berlin)”."""
    at = f"{time_of_day:%H:%M}" if time_of_day else ""
    if frequency == "daily":
        words = f"Every day at {at}"
    elif frequency == "weekdays":
        words = f"Monday to Friday at {at}"
    elif frequency == "weekly" and weekday is not None:
        words = f"Every {WEEKDAY_NAMES[weekday]} at {at}"
    elif frequency == "monthly":
        day = "the last day" if month_day == 0 else f"day {month_day}"
        words = f"Monthly on {day} at {at}"
    else:
        words = f"Cron “{cron}”"
    return f"{words} ({time_zone})"
