"""Who a campaign writes to, and what it knows of each of them.

The lists and segments (postroom.audiences.selectors.audience_contacts) give the active
contacts, each once, ordered by id; the campaign leaves out those without marketing consent
and those whose address is suppressed, and counts them. Contacts' addresses are unique
(`email_key`), so each address gets one message.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from postroom.audiences.selectors import audience_contacts
from postroom.contacts.models import Contact
from postroom.outbox.suppression import suppressed_among, suppressed_q

# Read per keyset batch: what a recipient's merge values and the checks need.
ROW_FIELDS = (
    "pk",
    "email",
    "email_key",
    "first_name",
    "last_name",
    "organization__name",
    "marketing_consent",
)


@dataclass(frozen=True)
class AudienceCounts:
    members: int  # active contacts in the lists and segments, each once
    no_consent: int
    suppressed: int  # consenting, but the address is on the suppression list

    @property
    def eligible(self) -> int:
        return self.members - self.no_consent - self.suppressed


@dataclass(frozen=True)
class AudienceRow:
    contact_id: int
    email: str
    first_name: str
    last_name: str
    company: str

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


def audience_members(
    *, list_ids: Sequence[int], segment_ids: Sequence[int], now: dt.datetime
) -> QuerySet[Contact]:
    return audience_contacts(list_ids=list_ids, segment_ids=segment_ids, now=now)


def audience_counts(
    *, list_ids: Sequence[int], segment_ids: Sequence[int], now: dt.datetime
) -> AudienceCounts:
    members = audience_members(list_ids=list_ids, segment_ids=segment_ids, now=now)
    consenting = members.filter(marketing_consent=True)
    return AudienceCounts(
        members=members.count(),
        no_consent=members.filter(marketing_consent=False).count(),
        suppressed=consenting.filter(suppressed_q("email_key")).count(),
    )


def audience_eligible(
    *, list_ids: Sequence[int], segment_ids: Sequence[int], now: dt.datetime
) -> QuerySet[Contact]:
    """The contacts that get the campaign: consenting, not suppressed."""
    members = audience_members(list_ids=list_ids, segment_ids=segment_ids, now=now)
    return members.filter(marketing_consent=True).exclude(suppressed_q("email_key"))


@dataclass(frozen=True)
class AudienceBatch:
    """One keyset batch of members: who gets the campaign, and how many were left out."""

    last_id: int
    rows: list[AudienceRow]
    no_consent: int
    suppressed: int


def audience_batch(members: QuerySet[Contact], *, after: int, size: int) -> AudienceBatch | None:
    """The next `size` members after contact id `after`, or None past the last. Suppression
    is checked for the batch at once (one query), as it is now."""
    found: list[tuple[Any, ...]] = list(
        members.filter(pk__gt=after).order_by("pk").values_list(*ROW_FIELDS)[:size]
    )
    if not found:
        return None
    consenting = [row for row in found if row[6]]
    suppressed = suppressed_among(addresses=[row[2] for row in consenting])
    rows = [
        AudienceRow(
            contact_id=pk,
            email=email,
            first_name=first_name,
            last_name=last_name,
            company=company or "",
        )
        for pk, email, key, first_name, last_name, company, _ in consenting
        if key not in suppressed
    ]
    return AudienceBatch(
        last_id=found[-1][0],
        rows=rows,
        no_consent=len(found) - len(consenting),
        suppressed=len(consenting) - len(rows),
    )
