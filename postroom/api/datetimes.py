"""Times given to the API: made aware, and kept inside the range a database can store."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from postroom.core.errors import ValidationError

# Dates before 1970 or after 9000 are typing mistakes, and the far ends of the calendar
# cannot be converted between time zones (year 1 minus an offset does not exist).
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)


def aware_datetime(value: dt.datetime | None, *, field: str) -> dt.datetime | None:
    """`value` in UTC; a time without an offset is read in Postroom's time zone (TIME_ZONE)."""
    if value is None:
        return None
    try:
        if timezone.is_naive(value):
            value = timezone.make_aware(value)
        utc: dt.datetime | None = value.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise ValidationError(
            f"{field}: give a time between 1970 and 9000, such as 2030-01-31T09:00:00Z.",
            field=field,
        )
    return utc
