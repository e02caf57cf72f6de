"""A report's parameters, and relative dates resolved in a time zone (pure).

A parameter has a name, a type and a value, and is always bound as a query parameter
(`:name` in the SQL), never pasted into it:

- `date`: a day, `2026-05-31` or a relative one: today, yesterday, tomorrow, N days ago,
  start of this/last week, month, quarter or year, end of last week, month, quarter or year;
- `period`: a span of days, bound as two parameters, `:name_start` (its first day) and
  `:name_end` (the day after its last, so `created_at < :name_end` takes the whole last
  day): today, yesterday, this/last week, month, quarter or year, last N days, or
  `2026-05-01..2026-05-31`;
- `text` and `number`: the value as written.

Relative dates are resolved at a moment in a time zone, the schedule's: "yesterday" for a
Berlin schedule at 00:30 on 1 June is 31 May, whatever the server's clock says.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from postroom.core.errors import ValidationError

PARAMETER_TYPES = ("date", "period", "text", "number")
# A name SQLAlchemy's text() reads as a bind parameter, and short enough to read.
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,39}$")
_DAYS_AGO = re.compile(r"^(\d{1,4}) days? ago$")
_LAST_DAYS = re.compile(r"^last (\d{1,4}) days$")
_EDGE = re.compile(r"^(start|end) of (this|last) (week|month|quarter|year)$")
_SPAN = re.compile(r"^(this|last) (week|month|quarter|year)$")
_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})\s*\.\.\s*(\d{4}-\d{2}-\d{2})$")
MAX_PARAMETERS = 20
MAX_TEXT = 1000

DATE_HELP = (
    "a date (2026-05-31), today, yesterday, tomorrow, N days ago, start of this/last "
    "week/month/quarter/year, or end of last week/month/quarter/year"
)
PERIOD_HELP = (
    "today, yesterday, this/last week, month, quarter or year, last N days, or "
    "2026-05-01..2026-05-31"
)


@dataclass(frozen=True)
class Period:
    start: dt.date  # the first day
    end: dt.date  # the day after the last

    @property
    def last_day(self) -> dt.date:
        return self.end - dt.timedelta(days=1)

    def describe(self) -> str:
        start, last = self.start, self.last_day
        if start == last:
            return day_words(start)
        if start.year != last.year:
            return f"{day_words(start)} – {day_words(last)}"
        if start.month != last.month:
            return f"{start.day} {start:%B} – {day_words(last)}"
        return f"{start.day}–{day_words(last)}"


def day_words(day: dt.date) -> str:
    """31 May 2026."""
    return f"{day.day} {day:%B %Y}"


@dataclass(frozen=True)
class Resolved:
    binds: dict[str, Any]  # what the query gets: name -> date, text, number
    shown: dict[str, str]  # what the run's history and the PDF say: name -> text
    period: str  # the first period parameter in words, or the day of the run


def _span(unit: str, day: dt.date, *, back: int) -> Period:
    """The week (from Monday), month, quarter or year containing `day`, `back` of them ago."""
    if unit == "week":
        start = day - dt.timedelta(days=day.weekday()) - dt.timedelta(weeks=back)
        return Period(start, start + dt.timedelta(days=7))
    months = {"month": 1, "quarter": 3, "year": 12}[unit]
    index = (day.year * 12 + day.month - 1) // months * months - back * months
    start = dt.date(index // 12, index % 12 + 1, 1)
    after = index + months
    return Period(start, dt.date(after // 12, after % 12 + 1, 1))


def _parse_iso(text: str, *, field: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValidationError(
            f"“{text}” is not a date; write it as 2026-05-31.", field=field
        ) from None


def date_resolve(value: str, *, today: dt.date, field: str = "parameters") -> dt.date:
    """The day `value` names, `today` being today in the schedule's time zone."""
    text = " ".join(value.lower().split())
    simple = {"today": 0, "yesterday": 1, "tomorrow": -1}
    if text in simple:
        return today - dt.timedelta(days=simple[text])
    if match := _DAYS_AGO.match(text):
        return today - dt.timedelta(days=int(match[1]))
    if match := _EDGE.match(text):
        edge, which, unit = match.groups()
        if edge == "end" and which == "this":
            raise ValidationError(
                f"“{value}” has not happened yet; use end of last {unit}, or a period.",
                field=field,
            )
        span = _span(unit, today, back=1 if which == "last" else 0)
        return span.start if edge == "start" else span.last_day
    if re.match(r"^\d{4}-\d{2}-\d{2}$", text):
        return _parse_iso(text, field=field)
    raise ValidationError(
        f"“{value}” is not a date Postroom knows. Write {DATE_HELP}.", field=field
    )


def period_resolve(value: str, *, today: dt.date, field: str = "parameters") -> Period:
    text = " ".join(value.lower().split())
    if text in ("today", "yesterday"):
        day = today - dt.timedelta(days=0 if text == "today" else 1)
        return Period(day, day + dt.timedelta(days=1))
    if match := _SPAN.match(text):
        which, unit = match.groups()
        return _span(unit, today, back=1 if which == "last" else 0)
    if match := _LAST_DAYS.match(text):
        days = int(match[1])
        if days < 1:
            raise ValidationError("A period has at least one day.", field=field)
        return Period(today - dt.timedelta(days=days), today)
    if match := _RANGE.match(text):
        start, last = _parse_iso(match[1], field=field), _parse_iso(match[2], field=field)
        if last < start:
            raise ValidationError(f"In “{value}” the last day comes before the first.", field=field)
        return Period(start, last + dt.timedelta(days=1))
    raise ValidationError(
        f"“{value}” is not a period Postroom knows. Write {PERIOD_HELP}.", field=field
    )


def parameters_clean(raw: Any) -> list[dict[str, str]]:
    """Check a report's parameter list: [{"name", "type", "value"}]. Values are checked
    by resolving them once."""
    if not isinstance(raw, list) or len(raw) > MAX_PARAMETERS:
        raise ValidationError(f"Give at most {MAX_PARAMETERS} parameters.", field="parameters")
    clean: list[dict[str, str]] = []
    names: set[str] = set()
    for item in raw:
        if not isinstance(item, Mapping):
            raise ValidationError(
                "Each parameter has a name, a type and a value.", field="parameters"
            )
        name = str(item.get("name", "")).strip()
        kind = str(item.get("type", "")).strip()
        value = str(item.get("value", "")).strip()
        if not _NAME.match(name):
            raise ValidationError(
                f"“{name}” cannot name a parameter: use letters, digits and _ (up to 40), "
                "starting with a letter, as in :start_date.",
                field="parameters",
            )
        if name.lower() in names:
            raise ValidationError(f"The parameter {name} is given twice.", field="parameters")
        names.add(name.lower())
        if kind not in PARAMETER_TYPES:
            raise ValidationError(
                f"The parameter {name} needs a type: {', '.join(PARAMETER_TYPES)}.",
                field="parameters",
            )
        if len(value) > MAX_TEXT:
            raise ValidationError(f"The value of {name} is too long.", field="parameters")
        clean.append({"name": name, "type": kind, "value": value})
    parameters_resolve(clean, now=dt.datetime.now(dt.UTC), tz=dt.UTC)
    return clean


def parameters_resolve(
    parameters: Sequence[Mapping[str, str]], *, now: dt.datetime, tz: dt.tzinfo
) -> Resolved:
    """Each parameter's value at `now` in `tz`: what to bind, and what to show."""
    today = now.astimezone(tz).date()
    binds: dict[str, Any] = {}
    shown: dict[str, str] = {}
    periods: list[str] = []
    for parameter in parameters:
        name, kind, value = parameter["name"], parameter["type"], parameter["value"]
        field = "parameters"
        if kind == "date":
            day = date_resolve(value, today=today, field=field)
            binds[name] = day
            shown[name] = f"{day.isoformat()} ({value})" if value != day.isoformat() else value
        elif kind == "period":
            period = period_resolve(value, today=today, field=field)
            binds[f"{name}_start"], binds[f"{name}_end"] = period.start, period.end
            shown[name] = f"{period.describe()} ({value})"
            periods.append(period.describe())
        elif kind == "number":
            binds[name] = _number(value, name=name)
            shown[name] = value
        else:
            binds[name] = value
            shown[name] = value
    return Resolved(binds=binds, shown=shown, period=periods[0] if periods else day_words(today))


def _number(value: str, *, name: str) -> int | Decimal:
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return Decimal(value)
    except InvalidOperation:
        raise ValidationError(
            f"The parameter {name} is not a number: “{value}”.", field="parameters"
        ) from None
