"""Contacts and companies through their services: the rules, uniqueness, consent, audit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from postroom.accounts.models import Role
from postroom.audit.models import AuditEntry
from postroom.contacts import fields, selectors, services
from postroom.contacts.models import Contact, Organization
from postroom.contacts.selectors import ContactFilters
from postroom.core.errors import PermissionDeniedError, ValidationError
from tests.accounts.factories import user_make

pytestmark = pytest.mark.django_db


def make(email: str = "ann@example.com", **kwargs: object) -> Contact:
    return services.contact_create(actor=None, email=email, **kwargs)  # type: ignore[arg-type]


# The field rules.


@pytest.mark.parametrize("bad", ["ann", "ann@", "@example.com", "ann@exa mple.com", "a@b@c.com"])
def test_a_bad_address_is_refused(bad: str) -> None:
    with pytest.raises(ValidationError) as caught:
        make(email=bad)
    assert caught.value.field == "email"
    assert "is not valid" in caught.value.message
    assert not Contact.objects.exists()


def test_an_empty_address_is_refused() -> None:
    with pytest.raises(ValidationError, match="Enter the contact's email address"):
        make(email="  ")


def test_the_address_is_normalised_and_keyed_without_case() -> None:
    contact = make(email="  Ann.Smith@EXAMPLE.com ")
    assert contact.email == "Ann.Smith@example.com"
    assert contact.email_key == "ann.smith@example.com"
    assert selectors.contact_get_by_email(email="ANN.smith@example.COM") == contact


def test_an_international_domain_is_kept_in_ascii_form() -> None:
    contact = make(email="anna@bücher.example")
    assert contact.email == "anna@xn--bcher-kva.example"


def test_the_same_address_in_another_case_is_a_duplicate() -> None:
    make(email="ann@example.com", first_name="Ann")
    with pytest.raises(ValidationError, match="already has the address") as caught:
        make(email="ANN@Example.com")
    assert caught.value.field == "email"
    assert Contact.objects.count() == 1


def test_a_non_ascii_address_differing_only_in_case_is_a_duplicate_too() -> None:
    # SQLite's LOWER() folds only ASCII: the key column is what makes this one contact.
    make(email="ÄNNE@example.com")
    with pytest.raises(ValidationError, match="already has the address"):
        make(email="änne@example.com")


@pytest.mark.parametrize(
    "name",
    ["Ann\r\nBcc: victim@example.com", "Ann\nSmith", "Ann\x00", "Ann\u2028Smith", "\u202eAnn"],
)
def test_a_name_with_a_line_break_or_control_character_is_refused(name: str) -> None:
    for field in ("first_name", "last_name"):
        with pytest.raises(ValidationError, match="line break or another control") as caught:
            make(**{field: name})
        assert caught.value.field == field
    assert not Contact.objects.exists()


def test_names_over_the_column_length_are_refused() -> None:
    with pytest.raises(ValidationError, match="use at most 150"):
        make(first_name="A" * 151)


def test_notes_may_span_lines_but_hold_no_nul() -> None:
    assert make(notes="line one\nline two\ttab").notes == "line one\nline two\ttab"
    with pytest.raises(ValidationError, match="control character"):
        make(email="bob@example.com", notes="bad\x00")


def test_tags_are_lower_case_single_spaced_and_unique() -> None:
    assert fields.tag_names_parse(" VIP, Trade  Fair ;vip|customer,, ") == [
        "vip",
        "trade fair",
        "customer",
    ]
    contact = make(tags="VIP, customer")
    assert sorted(tag.name for tag in contact.tags.all()) == ["customer", "vip"]


def test_a_website_without_a_scheme_gets_https_and_a_bad_one_is_refused() -> None:
    assert fields.organization_website_clean("acme.example") == "https://acme.example"
    for bad in ("javascript:alert(1)", "ftp://acme.example", "not a site"):
        with pytest.raises(ValidationError, match="not a web address"):
            fields.organization_website_clean(bad)


# Companies.


def test_a_company_named_on_a_contact_is_found_without_case_or_created() -> None:
    first = make(email="a@example.com", organization_name="Acme  Inc")
    second = make(email="b@example.com", organization_name="ACME INC")
    assert first.organization is not None and first.organization.name == "Acme Inc"
    assert second.organization == first.organization
    assert Organization.objects.count() == 1


def test_two_companies_cannot_share_a_name() -> None:
    services.organization_create(actor=None, name="Acme")
    with pytest.raises(ValidationError, match="already a company called") as caught:
        services.organization_create(actor=None, name="acme")
    assert caught.value.field == "name"


def test_deleting_a_company_keeps_its_contacts() -> None:
    contact = make(organization_name="Acme")
    assert contact.organization is not None
    admin = user_make("root", role=Role.ADMINISTRATOR)
    assert services.organization_delete(actor=admin, organization=contact.organization) == 1
    contact.refresh_from_db()
    assert contact.organization is None
    entry = AuditEntry.objects.get(action="company.deleted")
    assert entry.changes == {"Name": "Acme", "Contacts left without a company": 1}


# Consent.


def test_consent_given_without_a_date_is_dated_now_and_sourced_to_the_user() -> None:
    alice = user_make("alice")
    before = timezone.now()
    contact = services.contact_create(actor=alice, email="ann@example.com", marketing_consent=True)
    assert contact.marketing_consent_at is not None and contact.marketing_consent_at >= before
    assert contact.marketing_consent_source == "entered by alice"


def test_withdrawing_consent_records_when_and_keeps_the_given_source() -> None:
    given = timezone.now() - timedelta(days=400)
    contact = make(
        marketing_consent=True, marketing_consent_at=given, marketing_consent_source="web form"
    )
    assert contact.marketing_consent_at == given
    services.contact_update(
        actor=None, contact=contact, marketing_consent=False, marketing_consent_source="phone"
    )
    contact.refresh_from_db()
    assert contact.marketing_consent is False
    assert contact.marketing_consent_at is not None and contact.marketing_consent_at > given
    assert contact.marketing_consent_source == "phone"


def test_an_unchanged_consent_keeps_its_date() -> None:
    given = timezone.now() - timedelta(days=3)
    contact = make(marketing_consent=True, marketing_consent_at=given)
    services.contact_update(actor=None, contact=contact, marketing_consent=True, phone="123")
    contact.refresh_from_db()
    assert contact.marketing_consent_at == given


def test_a_consent_date_in_the_future_is_refused() -> None:
    with pytest.raises(ValidationError, match="in the future") as caught:
        make(marketing_consent=True, marketing_consent_at=timezone.now() + timedelta(days=2))
    assert caught.value.field == "marketing_consent_at"


# Update, delete, audit.


def test_an_update_records_what_changed_from_what() -> None:
    alice = user_make("alice")
    contact = services.contact_create(
        actor=alice, email="ann@example.com", first_name="Ann", tags=["a"]
    )
    created = AuditEntry.objects.get(action="contact.created")
    assert created.actor == alice and created.subject == "contact ann@example.com"
    assert created.changes["First name"] == "Ann" and created.changes["Tags"] == "a"

    services.contact_update(
        actor=alice, contact=contact, first_name="Anne", tags="b, a", email="ANN@example.com"
    )
    updated = AuditEntry.objects.get(action="contact.updated")
    assert updated.changes == {
        "First name": {"from": "Ann", "to": "Anne"},
        "Email address": {"from": "ann@example.com", "to": "ANN@example.com"},
        "Tags": {"from": "a", "to": "a, b"},
    }


def test_saving_without_a_change_records_nothing() -> None:
    contact = make(first_name="Ann", tags="a, b")
    services.contact_update(actor=None, contact=contact, first_name="Ann", tags="b, a")
    assert not AuditEntry.objects.filter(action="contact.updated").exists()


def test_an_update_to_another_contacts_address_is_refused() -> None:
    make(email="ann@example.com")
    bob = make(email="bob@example.com")
    with pytest.raises(ValidationError, match="already has the address"):
        services.contact_update(actor=None, contact=bob, email="Ann@example.com")


def test_staff_and_administrators_delete_contacts_and_marketers_do_not() -> None:
    contact = make()
    marketer = user_make("mia", role=Role.MARKETER)
    with pytest.raises(PermissionDeniedError, match="Only administrators and staff"):
        services.contact_delete(actor=marketer, contact=contact)
    services.contact_delete(actor=user_make("sam", role=Role.STAFF), contact=contact)
    assert not Contact.objects.exists()
    entry = AuditEntry.objects.get(action="contact.deleted")
    assert entry.changes == {"Name": "", "Email address": "ann@example.com"}


# The list.


def test_the_list_searches_every_word_in_names_addresses_and_company() -> None:
    ann = make("ann@acme.example", first_name="Ann", last_name="Smith", organization_name="Acme")
    bob = make("bob@other.example", first_name="Bob", organization_name="Acme")
    make("cy@other.example", first_name="Cy", last_name="Smith")

    def found(**filters: object) -> list[Contact]:
        return list(selectors.contact_list(filters=ContactFilters(**filters)))  # type: ignore[arg-type]

    assert found(search="acme smith") == [ann]
    assert set(found(search="ACME")) == {ann, bob}
    assert found(search="bob@other") == [bob]


def test_the_list_filters_by_tag_company_consent_and_status() -> None:
    ann = make("ann@x.example", tags="vip", marketing_consent=True, organization_name="Acme")
    bob = make("bob@x.example", tags="vip", is_active=False)
    cy = make("cy@x.example")
    assert ann.organization is not None
    listed = lambda **f: set(selectors.contact_list(filters=ContactFilters(**f)))  # noqa: E731
    assert listed(tag="vip") == {ann, bob}
    assert listed(organization_id=ann.organization.pk) == {ann}
    assert listed(has_consent=True) == {ann}
    assert listed(has_consent=False) == {bob, cy}
    assert listed(is_active=False) == {bob}
    assert listed(tag="vip", is_active=True) == {ann}
