"""Static lists: create, rename, add and remove members (by id, by address, by a CSV import
into the list), delete; every change audited. And audience_contacts, the campaigns'
interface: lists and segments together, each contact once."""

from __future__ import annotations

from typing import Any

import pytest

from postroom.accounts.models import User
from postroom.audiences import selectors, services
from postroom.audiences.models import ContactList, ListMember
from postroom.audit.models import AuditEntry
from postroom.contacts import import_jobs
from postroom.contacts.models import Contact, ImportStatus
from postroom.core.errors import NotFoundError, ValidationError
from postroom.outbox.suppression import suppression_add
from tests.audiences.conftest import contact_make
from tests.contacts.importer import csv_upload, import_done, job_run_here

pytestmark = pytest.mark.django_db


def members(contact_list: ContactList) -> set[str]:
    return {c.email for c in selectors.list_members(contact_list=contact_list)}


def test_a_list_name_is_unique_without_regard_to_case(marketer: User) -> None:
    services.list_create(actor=marketer, name="Trade  fair 2026")
    with pytest.raises(ValidationError, match="already a list called") as caught:
        services.list_create(actor=marketer, name="trade fair 2026")
    assert caught.value.field == "name"
    assert ContactList.objects.get().name == "Trade fair 2026"


def test_an_empty_or_broken_name_is_refused(marketer: User) -> None:
    with pytest.raises(ValidationError, match="Enter the list's name"):
        services.list_create(actor=marketer, name="  ")
    with pytest.raises(ValidationError, match="control character"):
        services.list_create(actor=marketer, name="a\x00b")


def test_members_join_once_and_leave(marketer: User) -> None:
    ann, bob = contact_make("ann@example.com"), contact_make("bob@example.com")
    fair = services.list_create(actor=marketer, name="Fair")
    assert services.list_members_add(actor=marketer, contact_list=fair, contact_ids=[ann.pk]) == 1
    added = services.list_members_add(
        actor=marketer, contact_list=fair, contact_ids=[ann.pk, bob.pk, bob.pk, 999_999]
    )
    assert added == 1  # bob; ann was in, 999999 is no contact
    assert members(fair) == {"ann@example.com", "bob@example.com"}
    assert selectors.list_list().get().member_count == 2
    removed = services.list_members_remove(
        actor=marketer, contact_list=fair, contact_ids=[ann.pk, ann.pk]
    )
    assert removed == 1
    assert members(fair) == {"bob@example.com"}
    assert Contact.objects.filter(pk=ann.pk).exists()  # still a contact
    actions = list(AuditEntry.objects.order_by("id").values_list("action", "changes"))
    assert [action for action, _ in actions if action.startswith("list.")] == [
        "list.created",
        "list.members_added",
        "list.members_added",
        "list.members_removed",
    ]
    assert actions[-1][1]["Removed"] == 1


def test_members_are_added_by_address_without_regard_to_case(marketer: User) -> None:
    contact_make("ann@example.com")
    fair = services.list_create(actor=marketer, name="Fair")
    outcome = services.list_members_add_by_address(
        actor=marketer, contact_list=fair, addresses=["ANN@example.com", " ", "zed@example.com"]
    )
    assert (outcome.added, outcome.unknown) == (1, ["zed@example.com"])
    assert members(fair) == {"ann@example.com"}


def test_deleting_a_list_keeps_its_contacts(marketer: User) -> None:
    ann = contact_make("ann@example.com")
    fair = services.list_create(actor=marketer, name="Fair")
    services.list_members_add(actor=marketer, contact_list=fair, contact_ids=[ann.pk])
    assert services.list_delete(actor=marketer, contact_list=fair) == 1
    assert not ListMember.objects.exists()
    assert Contact.objects.filter(pk=ann.pk).exists()
    assert AuditEntry.objects.filter(action="list.deleted", changes__Members=1).exists()


def test_deleting_a_contact_takes_it_out_of_its_lists(marketer: User) -> None:
    ann = contact_make("ann@example.com")
    fair = services.list_create(actor=marketer, name="Fair")
    services.list_members_add(actor=marketer, contact_list=fair, contact_ids=[ann.pk])
    ann.delete()
    assert members(fair) == set()


# A CSV import into a list: the contacts import, with the list as its target.

CSV = (
    "Email,First name,Tags\n"
    "ann@example.com,Ann,customer\n"
    "NEW@example.com,Nat,\n"
    "new@example.com,Nathalie,\n"  # merged with the row above
    "not-an-address,X,\n"  # rejected: joins nothing
)


def test_every_contact_an_import_creates_or_merges_joins_its_list(marketer: User) -> None:
    contact_make("ann@example.com", first_name="Ann")  # unchanged by the import: joins too
    contact_make("other@example.com")
    fair = services.list_create(actor=marketer, name="Fair")
    job = import_jobs.import_job_upload(actor=marketer, upload=csv_upload(CSV))
    services.list_import_attach(contact_list=fair, job=job)
    import_jobs.import_job_check_start(job=job, mapping=import_jobs.import_job_mapping(job))
    job_run_here(job)
    assert import_jobs.import_job_run_start(job=job)
    job_run_here(job)
    assert job.status == ImportStatus.DONE, job.error
    assert members(fair) == {"ann@example.com", "NEW@example.com"}
    assert selectors.list_imports(contact_list=fair, limit=5) == [job]
    entry = AuditEntry.objects.get(action="list.members_added")
    assert entry.changes == {"Added": 2, "How": "CSV import of contacts.csv"}
    assert entry.actor == marketer


def test_an_import_without_a_list_adds_to_none(marketer: User) -> None:
    fair = services.list_create(actor=marketer, name="Fair")
    job = import_done(marketer, CSV)
    assert job.status == ImportStatus.DONE
    assert members(fair) == set()


def test_an_import_whose_list_cannot_take_them_imports_nothing(
    marketer: User, monkeypatch: Any
) -> None:
    """All or nothing: the list's part runs in the import's transaction."""
    fair = services.list_create(actor=marketer, name="Fair")
    job = import_jobs.import_job_upload(actor=marketer, upload=csv_upload(CSV))
    services.list_import_attach(contact_list=fair, job=job)
    import_jobs.import_job_check_start(job=job, mapping=import_jobs.import_job_mapping(job))
    job_run_here(job)
    assert import_jobs.import_job_run_start(job=job)

    def broken(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("the list's table is gone")

    monkeypatch.setattr("postroom.audiences.list_imports.list_members_insert", broken)
    job_run_here(job)
    assert job.status == ImportStatus.FAILED
    assert "the list's table is gone" in job.error
    assert not Contact.objects.exists()
    assert members(fair) == set()


# The audience: what campaigns call.


@pytest.fixture
def audience_world(marketer: User) -> dict[str, Any]:
    ann = contact_make("ann@example.com", tags=["customer"])
    bob = contact_make("bob@example.com", tags=["customer"])
    cy = contact_make("cy@example.com")
    dee = contact_make("dee@example.com", tags=["customer"], is_active=False)
    fair = services.list_create(actor=marketer, name="Fair")
    services.list_members_add(
        actor=marketer, contact_list=fair, contact_ids=[ann.pk, cy.pk, dee.pk]
    )
    customers = services.segment_create(
        actor=marketer, name="Customers", rules=[{"field": "tag", "op": "has", "value": "customer"}]
    )
    return {"fair": fair, "customers": customers, "ann": ann, "bob": bob, "cy": cy}


def test_an_audience_is_the_union_each_contact_once_active_only(audience_world: Any) -> None:
    contacts = selectors.audience_contacts(
        list_ids=[audience_world["fair"].pk], segment_ids=[audience_world["customers"].pk]
    )
    # ann is in both, dee is inactive.
    assert [c.email for c in contacts] == ["ann@example.com", "bob@example.com", "cy@example.com"]
    assert contacts.count() == 3


def test_an_audience_of_lists_only_or_segments_only_or_nothing(audience_world: Any) -> None:
    by_list = selectors.audience_contacts(list_ids=[audience_world["fair"].pk], segment_ids=[])
    assert {c.email for c in by_list} == {"ann@example.com", "cy@example.com"}
    by_segment = selectors.audience_contacts(
        list_ids=[], segment_ids=[audience_world["customers"].pk]
    )
    assert {c.email for c in by_segment} == {"ann@example.com", "bob@example.com"}
    assert list(selectors.audience_contacts(list_ids=[], segment_ids=[])) == []


def test_an_audience_does_not_apply_suppression_or_consent(audience_world: Any) -> None:
    suppression_add(actor=None, address="ANN@example.com")
    contacts = selectors.audience_contacts(list_ids=[audience_world["fair"].pk], segment_ids=[])
    assert {c.email for c in contacts} == {"ann@example.com", "cy@example.com"}


def test_an_audience_naming_a_deleted_list_or_segment_raises(audience_world: Any) -> None:
    with pytest.raises(NotFoundError, match="no list #999"):
        selectors.audience_contacts(list_ids=[999], segment_ids=[])
    with pytest.raises(NotFoundError, match="no segment #998"):
        selectors.audience_contacts(list_ids=[], segment_ids=[998])


def test_an_audience_walks_in_keyset_batches_by_id(audience_world: Any) -> None:
    contacts = selectors.audience_contacts(
        list_ids=[audience_world["fair"].pk], segment_ids=[audience_world["customers"].pk]
    )
    first = list(contacts[:2])
    rest = list(contacts.filter(pk__gt=first[-1].pk)[:2])
    assert [c.email for c in first + rest] == [
        "ann@example.com",
        "bob@example.com",
        "cy@example.com",
    ]
