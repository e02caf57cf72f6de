"""Segments select the contacts their rules describe, on SQLite and on PostgreSQL
(POSTROOM_DATABASE_URL=postgres://… runs this file there): fields, tags, consent, company,
age and activity (mail sent to the contact's address, whatever its case)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from postroom.audiences.models import Segment
from postroom.audiences.selectors import segment_contacts, segment_count, segment_sample
from postroom.contacts.models import Contact
from postroom.core.errors import ValidationError
from postroom.outbox.models import RecipientStatus
from tests.audiences.conftest import contact_make, mail_sent_to

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def matching(*rules: dict[str, Any], match: str = "all") -> set[str]:
    segment = Segment(name="probe", rules=list(rules), match=match)
    return {contact.email for contact in segment_contacts(segment=segment, now=NOW)}


@pytest.fixture
def people() -> dict[str, Contact]:
    return {
        "ann": contact_make(
            "ann@acme.example",
            first_name="Ann",
            last_name="Archer",
            organization_name="Acme",
            tags=["customer", "vip"],
            marketing_consent=True,
        ),
        "bob": contact_make(
            "Bob@beta.example", first_name="Bob", tags=["customer"], phone="+49 30 1"
        ),
        "cy": contact_make("cy@gamma.example", organization_name="Gamma", marketing_consent=True),
    }


def test_text_fields_compare_without_case(people: Any) -> None:
    assert matching({"field": "first_name", "op": "is", "value": "ANN"}) == {"ann@acme.example"}
    assert matching({"field": "email", "op": "ends_with", "value": "@beta.EXAMPLE"}) == {
        "Bob@beta.example"
    }
    assert matching({"field": "email", "op": "starts_with", "value": "c"}) == {"cy@gamma.example"}
    assert matching({"field": "last_name", "op": "contains", "value": "rch"}) == {
        "ann@acme.example"
    }


def test_negations_include_contacts_without_the_value(people: Any) -> None:
    assert matching({"field": "first_name", "op": "is_not", "value": "ann"}) == {
        "Bob@beta.example",
        "cy@gamma.example",
    }
    assert matching({"field": "company", "op": "is_not", "value": "acme"}) == {
        "Bob@beta.example",
        "cy@gamma.example",
    }
    assert matching({"field": "company", "op": "not_contains", "value": "amm"}) == {
        "ann@acme.example",
        "Bob@beta.example",
    }


def test_a_contact_without_a_company_has_an_empty_company(people: Any) -> None:
    assert matching({"field": "company", "op": "is_empty"}) == {"Bob@beta.example"}
    assert matching({"field": "company", "op": "is_not_empty"}) == {
        "ann@acme.example",
        "cy@gamma.example",
    }
    assert matching({"field": "phone", "op": "is_not_empty"}) == {"Bob@beta.example"}


def test_tags_and_consent(people: Any) -> None:
    assert matching({"field": "tag", "op": "has", "value": "Customer"}) == {
        "ann@acme.example",
        "Bob@beta.example",
    }
    assert matching({"field": "tag", "op": "has_not", "value": "customer"}) == {"cy@gamma.example"}
    assert matching({"field": "consent", "op": "is_false"}) == {"Bob@beta.example"}


def test_all_and_any(people: Any) -> None:
    rules = (
        {"field": "tag", "op": "has", "value": "customer"},
        {"field": "consent", "op": "is_true"},
    )
    assert matching(*rules) == {"ann@acme.example"}
    assert matching(*rules, match="any") == {
        "ann@acme.example",
        "Bob@beta.example",
        "cy@gamma.example",
    }


def test_a_contact_with_several_matching_tags_is_one_row(people: Any) -> None:
    segment = Segment(
        rules=[
            {"field": "tag", "op": "has", "value": "customer"},
            {"field": "tag", "op": "has", "value": "vip"},
        ],
        match="any",
    )
    emails = [contact.email for contact in segment_contacts(segment=segment, now=NOW)]
    assert sorted(emails) == ["Bob@beta.example", "ann@acme.example"]
    assert segment_count(segment=segment, now=NOW) == 2


def test_added_to_postroom_counts_days_back_from_now(people: Any) -> None:
    Contact.objects.filter(email_key="cy@gamma.example").update(
        created_at=NOW - dt.timedelta(days=40)
    )
    assert matching({"field": "created", "op": "within_days", "value": 30}) == {
        "ann@acme.example",
        "Bob@beta.example",
    }
    assert matching({"field": "created", "op": "before_days", "value": 30}) == {"cy@gamma.example"}


def test_emailed_is_mail_sent_to_the_address_in_any_case(people: Any) -> None:
    mail_sent_to("ANN@ACME.EXAMPLE", at=NOW - dt.timedelta(days=3))
    mail_sent_to("bob@beta.example", at=NOW - dt.timedelta(days=45))
    assert matching({"field": "emailed", "op": "within_days", "value": 30}) == {"ann@acme.example"}
    assert matching({"field": "emailed", "op": "not_within_days", "value": 30}) == {
        "Bob@beta.example",
        "cy@gamma.example",  # never emailed is not emailed in 30 days either
    }
    assert matching({"field": "emailed", "op": "ever"}) == {
        "ann@acme.example",
        "Bob@beta.example",
    }
    assert matching({"field": "emailed", "op": "never"}) == {"cy@gamma.example"}


def test_mail_that_did_not_reach_the_address_is_not_activity(people: Any) -> None:
    for status in (
        RecipientStatus.QUEUED,
        RecipientStatus.FAILED,
        RecipientStatus.CAPTURED,  # the sandbox capture: nobody received it
        RecipientStatus.SUPPRESSED,
    ):
        mail_sent_to("cy@gamma.example", at=NOW, status=status)
    assert matching({"field": "emailed", "op": "ever"}) == set()


def test_an_address_with_like_wildcards_matches_only_itself() -> None:
    contact_make("a_b@x.example")
    mail_sent_to("axb@x.example", at=NOW)
    assert matching({"field": "emailed", "op": "ever"}) == set()


def test_the_issue_example(people: Any) -> None:
    """tag = customer and consented and not emailed in 30 days."""
    mail_sent_to("ann@acme.example", at=NOW - dt.timedelta(days=40))
    contact_make("dee@delta.example", tags=["customer"], marketing_consent=True)
    mail_sent_to("dee@delta.example", at=NOW - dt.timedelta(days=1))
    assert matching(
        {"field": "tag", "op": "has", "value": "customer"},
        {"field": "consent", "op": "is_true"},
        {"field": "emailed", "op": "not_within_days", "value": 30},
    ) == {"ann@acme.example"}


def test_inactive_contacts_match_no_segment(people: Any) -> None:
    Contact.objects.filter(email_key="ann@acme.example").update(is_active=False)
    assert matching({"field": "consent", "op": "is_true"}) == {"cy@gamma.example"}


def test_the_sample_is_by_name_and_limited(people: Any) -> None:
    segment = Segment(rules=[{"field": "email", "op": "contains", "value": "example"}])
    sample = segment_sample(segment=segment, size=2, now=NOW)
    assert [contact.email for contact in sample] == ["cy@gamma.example", "Bob@beta.example"]


def test_a_stored_rule_that_no_longer_means_anything_raises_instead_of_matching() -> None:
    contact_make("ann@acme.example")
    segment = Segment(rules=[{"field": "shoe_size", "op": "is", "value": "9"}])
    with pytest.raises(ValidationError, match="Condition 1"):
        segment_count(segment=segment)
