"""The Audiences pages: who may use them, lists (members by address, removal, a CSV import
into a list through the contact import's pages), segments (the rule rows, the live count and
sample htmx asks for as the conditions are typed, saving)."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from postroom.accounts.models import Role
from postroom.audiences import services
from postroom.audiences.models import ContactList, ListImport, Segment
from postroom.audit.models import AuditEntry
from postroom.contacts.models import ImportJob
from postroom.outbox.suppression import suppression_add
from tests.accounts.factories import user_make
from tests.audiences.conftest import contact_make

pytestmark = pytest.mark.django_db


def client_for(role: str, username: str) -> Client:
    client = Client()
    client.force_login(user_make(username, role=role))
    return client


@pytest.fixture
def mia() -> Client:
    return client_for(Role.MARKETER, "mia")


PAGES = [
    "/audiences/",
    "/audiences/lists/",
    "/audiences/lists/new/",
    "/audiences/segments/",
    "/audiences/segments/new/",
    "/audiences/suppression/",
    "/audiences/suppression/import/",
    "/audiences/suppression/export.csv",
]


@pytest.mark.parametrize("url", PAGES)
def test_staff_may_not_manage_audiences(url: str) -> None:
    staff = client_for(Role.STAFF, "sam")
    response = staff.get(url)
    assert response.status_code == 403
    assert b"for marketers and administrators" in response.content


@pytest.mark.parametrize("role", [Role.MARKETER, Role.ADMINISTRATOR])
@pytest.mark.parametrize("url", PAGES)
def test_marketers_and_administrators_may(role: str, url: str) -> None:
    response = client_for(role, "someone").get(url, follow=True)
    assert response.status_code == 200


def test_staff_see_contacts_but_no_audiences_entry_in_the_menu() -> None:
    staff = client_for(Role.STAFF, "sam")
    page = staff.get("/contacts/").content.decode()
    assert 'href="/audiences/"' not in page
    marketer_page = client_for(Role.MARKETER, "mia").get("/contacts/").content.decode()
    assert 'href="/audiences/"' in marketer_page


def test_a_staff_post_changes_nothing() -> None:
    staff = client_for(Role.STAFF, "sam")
    assert staff.post("/audiences/lists/new/", {"name": "Mine"}).status_code == 403
    assert staff.post("/audiences/suppression/", {"address": "a@example.com"}).status_code == 403
    assert not ContactList.objects.exists()


# Lists.


def test_a_list_is_created_filled_by_address_and_thinned(mia: Client) -> None:
    ann, bob = contact_make("ann@example.com"), contact_make("bob@example.com")
    response = mia.post("/audiences/lists/new/", {"name": "Trade fair", "description": ""})
    fair = ContactList.objects.get()
    assert response["Location"] == f"/audiences/lists/{fair.pk}/"
    response = mia.post(
        f"/audiences/lists/{fair.pk}/members/add/",
        {"addresses": "ANN@example.com, bob@example.com\nnobody@example.com"},
        follow=True,
    )
    page = response.content.decode()
    assert "2 contacts added." in page
    assert "1 address is no contact&#x27;s, so not added: nobody@example.com" in page
    assert "2 members" in page
    response = mia.post(
        f"/audiences/lists/{fair.pk}/members/remove/", {"contact": [str(ann.pk)]}, follow=True
    )
    assert "1 member removed from the list" in response.content.decode()
    assert list(fair.members.all()) == [bob]
    assert AuditEntry.objects.filter(action="list.members_removed", actor__username="mia").exists()


def test_a_second_list_of_the_same_name_is_refused_next_to_the_field(mia: Client) -> None:
    mia.post("/audiences/lists/new/", {"name": "Fair"})
    response = mia.post("/audiences/lists/new/", {"name": "FAIR"})
    assert response.status_code == 200
    assert "already a list called" in response.content.decode()


def test_deleting_a_list_asks_first_and_keeps_the_contacts(mia: Client) -> None:
    ann = contact_make("ann@example.com")
    fair = services.list_create(actor=None, name="Fair")
    services.list_members_add(actor=None, contact_list=fair, contact_ids=[ann.pk])
    assert "stay</strong>" in mia.get(f"/audiences/lists/{fair.pk}/delete/").content.decode()
    mia.post(f"/audiences/lists/{fair.pk}/delete/")
    assert not ContactList.objects.exists()
    ann.refresh_from_db()


def test_an_upload_into_a_list_is_a_contact_import_that_targets_it(mia: Client) -> None:
    fair = services.list_create(actor=None, name="Fair")
    upload = SimpleUploadedFile("fair.csv", b"Email,First name\nann@example.com,Ann\n")
    response = mia.post(f"/audiences/lists/{fair.pk}/import/", {"file": upload})
    job = ImportJob.objects.get()
    assert response["Location"] == f"/contacts/import/{job.pk}/mapping/"
    assert ListImport.objects.get().contact_list == fair
    assert "fair.csv" in mia.get(f"/audiences/lists/{fair.pk}/").content.decode()


def test_an_oversized_upload_into_a_list_is_refused_by_the_cap(
    mia: Client, settings: object
) -> None:
    fair = services.list_create(actor=None, name="Fair")
    settings.POSTROOM_IMPORT_MAX_BYTES = 100  # type: ignore[attr-defined]
    upload = SimpleUploadedFile("big.csv", b"Email\n" + b"a@example.com\n" * 50)
    response = mia.post(f"/audiences/lists/{fair.pk}/import/", {"file": upload})
    assert response.status_code == 200
    assert "larger than" in response.content.decode()
    assert not ImportJob.objects.exists()


# Segments.

ISSUE_EXAMPLE = {
    "name": "Customers to wake",
    "description": "",
    "match": "all",
    "rule-count": "3",
    "rule-0-field": "tag",
    "rule-0-op": "has",
    "rule-0-value": "customer",
    "rule-1-field": "consent",
    "rule-1-op": "is_true",
    "rule-2-field": "emailed",
    "rule-2-op": "not_within_days",
    "rule-2-value": "30",
}


def test_the_preview_counts_and_samples_as_the_conditions_are_typed(mia: Client) -> None:
    contact_make("ann@example.com", first_name="Ann", tags=["customer"], marketing_consent=True)
    contact_make("bob@example.com", first_name="Bob", tags=["customer"])
    contact_make("cy@example.com", tags=["customer"], marketing_consent=True)
    suppression_add(actor=None, address="cy@example.com")
    response = mia.post(
        "/audiences/segments/preview/", {**ISSUE_EXAMPLE, "rule-count": "1"}, HTTP_HX_REQUEST="true"
    )
    page = response.content.decode()
    assert re.search(r'id="segment-count">3<', page)
    assert (
        "<strong>1</strong> of them can receive campaigns" in page
    )  # ann: bob no consent, cy suppressed
    assert "ann@example.com" in page and "bob@example.com" in page
    response = mia.post("/audiences/segments/preview/", ISSUE_EXAMPLE)
    assert re.search(r'id="segment-count">2<', response.content.decode())


def test_the_preview_says_what_is_missing_instead_of_counting(mia: Client) -> None:
    data = {**ISSUE_EXAMPLE, "rule-0-value": ""}
    page = mia.post("/audiences/segments/preview/", data).content.decode()
    assert "Condition 1: enter a value." in page
    assert 'segment-count"' not in page


def test_changing_a_field_gives_its_operators_and_value(mia: Client) -> None:
    data = {**ISSUE_EXAMPLE, "rule-count": "1", "rule-0-field": "emailed"}  # op "has" is stale
    response = mia.post("/audiences/segments/rules/", data)
    page = response.content.decode()
    assert response["HX-Trigger"] == "rules-changed"
    assert '<option value="within_days" selected>' in page
    assert 'type="number"' in page
    assert '<option value="has"' not in page


def test_rows_are_added_and_removed(mia: Client) -> None:
    added = mia.post("/audiences/segments/rules/", {**ISSUE_EXAMPLE, "action": "add"})
    assert 'name="rule-count" value="4"' in added.content.decode()
    removed = mia.post("/audiences/segments/rules/", {**ISSUE_EXAMPLE, "action": "remove-0"})
    page = removed.content.decode()
    assert 'name="rule-count" value="2"' in page
    assert 'value="customer"' not in page


def test_without_javascript_add_a_condition_comes_back_to_the_form(mia: Client) -> None:
    response = mia.post("/audiences/segments/new/", {**ISSUE_EXAMPLE, "action": "add"})
    assert response.status_code == 200
    assert 'name="rule-count" value="4"' in response.content.decode()
    assert not Segment.objects.exists()


def test_a_segment_is_saved_and_shown_in_words(mia: Client) -> None:
    response = mia.post("/audiences/segments/new/", {**ISSUE_EXAMPLE, "action": "save"})
    segment = Segment.objects.get()
    assert response["Location"] == f"/audiences/segments/{segment.pk}/"
    assert segment.rules == [
        {"field": "tag", "op": "has", "value": "customer"},
        {"field": "consent", "op": "is_true"},
        {"field": "emailed", "op": "not_within_days", "value": 30},
    ]
    listing = mia.get("/audiences/segments/").content.decode()
    assert "emailed not in the last 30 days" in listing
    page = mia.get(f"/audiences/segments/{segment.pk}/").content.decode()
    assert 'value="customer"' in page and 'id="segment-count">0<' in page
    mia.post(
        f"/audiences/segments/{segment.pk}/",
        {**ISSUE_EXAMPLE, "rule-2-value": "60", "action": "save"},
    )
    segment.refresh_from_db()
    assert segment.rules[2]["value"] == 60
    entry = AuditEntry.objects.get(action="segment.updated")
    assert "60 days" in entry.changes["Conditions"]["to"]


def test_a_segment_with_a_bad_condition_is_not_saved(mia: Client) -> None:
    response = mia.post(
        "/audiences/segments/new/", {**ISSUE_EXAMPLE, "rule-2-value": "0", "action": "save"}
    )
    assert response.status_code == 200
    assert "Condition 3: enter a number of days from 1 to 3650." in response.content.decode()
    assert not Segment.objects.exists()


def test_enter_in_a_field_saves_rather_than_removing_a_row(mia: Client) -> None:
    page = mia.get("/audiences/segments/new/").content.decode()
    first_submit = re.search(r'<button type="submit" name="action" value="([^"]+)"', page)
    assert first_submit is not None and first_submit.group(1) == "save"


def test_deleting_a_segment(mia: Client) -> None:
    segment = services.segment_create(
        actor=None, name="All", rules=[{"field": "email", "op": "is_not_empty"}]
    )
    mia.post(f"/audiences/segments/{segment.pk}/delete/")
    assert not Segment.objects.exists()
