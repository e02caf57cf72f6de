"""Keyset pages over a real table: forwards, backwards, both orders, with rows changing."""

from __future__ import annotations

import pytest
from django.db.models import QuerySet

from postroom.contacts.models import Contact, Tag
from postroom.queue.keyset import KeysetPage, keyset_page

pytestmark = pytest.mark.django_db


def tags(count: int) -> list[int]:
    return [Tag.objects.create(name=f"t{n:03}").pk for n in range(count)]


def keys(page: KeysetPage[Tag]) -> list[int]:
    return [row.pk for row in page.rows]


def every_tag() -> QuerySet[Tag]:
    return Tag.objects.all()


def test_newest_first_pages_walk_down_and_back_up_to_the_same_pages() -> None:
    ids = tags(7)[::-1]  # newest first
    first = keyset_page(every_tag(), size=3)
    second = keyset_page(every_tag(), size=3, following=first.following)
    third = keyset_page(every_tag(), size=3, following=second.following)
    assert (keys(first), keys(second), keys(third)) == (ids[:3], ids[3:6], ids[6:])
    assert first.preceding is None and third.following is None
    back = keyset_page(every_tag(), size=3, preceding=second.preceding)
    assert keys(back) == ids[:3]
    assert back.preceding is None and back.following == first.following
    middle = keyset_page(every_tag(), size=3, preceding=third.preceding)
    assert keys(middle) == ids[3:6] and middle.preceding is not None


def test_oldest_first_pages_continue_after_the_last_key() -> None:
    ids = tags(5)
    first = keyset_page(every_tag(), size=2, descending=False)
    second = keyset_page(every_tag(), size=2, descending=False, following=first.following)
    last = keyset_page(every_tag(), size=2, descending=False, following=second.following)
    assert (keys(first), keys(second), keys(last)) == (ids[:2], ids[2:4], ids[4:])
    assert last.following is None


def test_a_row_added_or_removed_between_pages_is_neither_repeated_nor_skipped() -> None:
    ids = tags(6)[::-1]
    first = keyset_page(every_tag(), size=3)
    Tag.objects.create(name="newer")  # lands before the first page, not on the second
    Tag.objects.filter(pk=ids[0]).delete()
    second = keyset_page(every_tag(), size=3, following=first.following)
    assert keys(second) == ids[3:]


def test_an_empty_list_has_one_empty_page_without_neighbours() -> None:
    page = keyset_page(every_tag(), size=3)
    assert page == KeysetPage(rows=[], following=None, preceding=None)


def test_prepare_shapes_the_rows_read_but_not_which_rows_they_are() -> None:
    Contact.objects.bulk_create(
        Contact(email=f"c{n}@example.com", email_key=f"c{n}@example.com") for n in range(4)
    )
    page = keyset_page(Contact.objects.all(), size=3, prepare=lambda rows: rows.only("id", "email"))
    assert [contact.email for contact in page.rows] == [
        "c3@example.com",
        "c2@example.com",
        "c1@example.com",
    ]
    assert page.following == page.rows[-1].pk
