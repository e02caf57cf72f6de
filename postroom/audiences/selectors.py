"""Read lists, segments and audiences.

`audience_contacts` is what campaigns call: the contacts a campaign's lists and segments
name, each once. Suppression and consent are the campaign's to apply (with
postroom.outbox.suppression.suppressed_q and `marketing_consent`), because a campaign
must say how many it left out for each reason.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from postroom.audiences.models import ContactList, ListImport, ListMember, Segment
from postroom.audiences.rules import rules_clean, rules_q
from postroom.contacts.models import Contact, ImportJob
from postroom.core.errors import NotFoundError
from postroom.outbox.suppression import suppressed_q

# The sample beside a segment's count: enough to see whether the rules mean what the
# marketer meant, few enough to read at a glance.
SAMPLE_SIZE = 10


def audience_contacts(
    *, list_ids: Sequence[int], segment_ids: Sequence[int], now: dt.datetime | None = None
) -> QuerySet[Contact]:
    """The active contacts that are members of any of the lists or match any of the
    segments, each contact once, ordered by id (walk it in keyset batches by id).

    Inactive contacts are left out here: "inactive" means "do not use this contact", for
    every audience. Consent and suppression are NOT applied: the caller applies them.

    Segments are evaluated when the query runs (a segment's time windows, "emailed in the
    last 30 days", count back from `now`, default: this call), so pass the same `now` to
    each batch of one campaign. Raise NotFoundError naming a list or segment that does not
    exist (any more), rather than quietly reaching fewer people.
    """
    now = now or timezone.now()
    list_ids, segment_ids = list(dict.fromkeys(list_ids)), list(dict.fromkeys(segment_ids))
    found_lists = set(ContactList.objects.filter(pk__in=list_ids).values_list("pk", flat=True))
    missing = [pk for pk in list_ids if pk not in found_lists]
    if missing:
        raise NotFoundError(f"There is no list #{missing[0]}; it may have been deleted.")
    segments = {segment.pk: segment for segment in Segment.objects.filter(pk__in=segment_ids)}
    missing = [pk for pk in segment_ids if pk not in segments]
    if missing:
        raise NotFoundError(f"There is no segment #{missing[0]}; it may have been deleted.")
    # A subquery and Exists tests, never a join over members: each contact stays one row.
    who = Q(pk__in=[])
    if list_ids:
        who |= Q(pk__in=ListMember.objects.filter(contact_list_id__in=list_ids).values("contact"))
    for segment in segments.values():
        who |= segment_q(segment=segment, now=now)
    return Contact.objects.filter(who, is_active=True).order_by("pk")


def segment_q(*, segment: Segment, now: dt.datetime | None = None) -> Q:
    """The segment's rules as a filter on contacts. The stored rules are checked again, so
    a rule written by an older version that no longer means anything raises
    ValidationError instead of matching the wrong people."""
    return rules_q(rules_clean(segment.rules), match=segment.match, now=now or timezone.now())


def segment_contacts(*, segment: Segment, now: dt.datetime | None = None) -> QuerySet[Contact]:
    """The active contacts the segment matches (saved or not: only its rules are read)."""
    return Contact.objects.filter(segment_q(segment=segment, now=now), is_active=True)


def segment_count(*, segment: Segment, now: dt.datetime | None = None) -> int:
    return segment_contacts(segment=segment, now=now).count()


def segment_reachable_count(*, segment: Segment, now: dt.datetime | None = None) -> int:
    """Of the segment's contacts, how many a campaign would mail: consented, with an address
    not on the suppression list."""
    matching = segment_contacts(segment=segment, now=now)
    return matching.filter(marketing_consent=True).exclude(suppressed_q("email_key")).count()


def segment_sample(
    *, segment: Segment, size: int = SAMPLE_SIZE, now: dt.datetime | None = None
) -> list[Contact]:
    """The first `size` matching contacts by name, with their company."""
    contacts = segment_contacts(segment=segment, now=now).select_related("organization")
    return list(contacts.order_by("last_name", "first_name", "email_key")[:size])


def segment_get(*, pk: int) -> Segment:
    try:
        return Segment.objects.get(pk=pk)
    except Segment.DoesNotExist:
        raise NotFoundError(f"There is no segment #{pk}; it may have been deleted.") from None


def segment_list(*, search: str = "") -> QuerySet[Segment]:
    """Segments by name; each word of `search` must appear in the name."""
    segments = Segment.objects.all()
    for word in search.split():
        segments = segments.filter(name__icontains=word)
    return segments.order_by("name", "id")


def list_get(*, pk: int) -> ContactList:
    try:
        return ContactList.objects.get(pk=pk)
    except ContactList.DoesNotExist:
        raise NotFoundError(f"There is no list #{pk}; it may have been deleted.") from None


def list_list(*, search: str = "") -> QuerySet[ContactList]:
    """Lists by name, each with `member_count`; each word of `search` must appear in the
    name."""
    lists = ContactList.objects.annotate(member_count=Count("memberships"))
    for word in search.split():
        lists = lists.filter(name__icontains=word)
    return lists.order_by("name", "id")


def list_members(*, contact_list: ContactList, search: str = "") -> QuerySet[Contact]:
    """The list's members (active or not) by name; each word of `search` must appear in the
    name, address or company."""
    members = Contact.objects.filter(memberships__contact_list=contact_list).select_related(
        "organization"
    )
    for word in search.split():
        members = members.filter(
            Q(first_name__icontains=word)
            | Q(last_name__icontains=word)
            | Q(email__icontains=word)
            | Q(organization__name__icontains=word)
        )
    return members.order_by("last_name", "first_name", "email_key")


def list_imports(*, contact_list: ContactList, limit: int) -> list[ImportJob]:
    """The latest CSV imports into the list, newest first."""
    links = ListImport.objects.filter(contact_list=contact_list).select_related("import_job")
    jobs = [link.import_job for link in links.order_by("-import_job__created_at")[:limit]]
    return jobs
