"""The CSV import's plan: what checked rows create, update or leave alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from postroom.contacts import import_plan
from postroom.contacts.import_plan import ExistingContact
from postroom.contacts.importing import ParsedRow

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def parsed(row: int, email: str, tags: list[str] | None = None, **values: object) -> ParsedRow:
    return ParsedRow(row=row, email=email, key=email.lower(), values=dict(values), tags=tags or [])


def existing(contact_id: int, email: str, tags: set[str] | None = None, **values: object
             ) -> ExistingContact:  # fmt: skip
    return ExistingContact(
        id=contact_id,
        email=email,
        values={**import_plan.CONTACT_DEFAULTS, **values},
        tags=tags or set(),
    )


def test_the_plan_creates_updates_and_leaves_alone_by_address() -> None:
    merged = {
        "new@x.com": parsed(2, "new@x.com", ["t"], first_name="New"),
        "old@x.com": parsed(3, "old@x.com", phone="2", organization="ACME"),
        "same@x.com": parsed(4, "same@x.com", ["vip"], first_name="Sam"),
    }
    current = {
        "old@x.com": existing(10, "Old@x.com", first_name="Olga", phone="1", organization="Acme"),
        "same@x.com": existing(11, "same@x.com", {"vip"}, first_name="Sam"),
    }
    plan = import_plan.plan_make(merged, current, now=NOW, source="import")
    assert [p.email for p, _ in plan.creates] == ["new@x.com"]
    assert plan.creates[0][1]["first_name"] == "New"
    assert plan.creates[0][1]["is_active"] is True
    # The company is the same without regard to case; only the phone changes. The first
    # name the file did not give stays.
    (update,) = plan.updates
    assert update.existing.id == 10 and update.changes == {"phone": "2"}
    assert plan.unchanged == 1
    assert [entry["action"] for entry in plan.preview] == ["new", "update", "unchanged"]
    assert plan.preview[1]["first_name"] == "Olga" and plan.preview[1]["email"] == "Old@x.com"
    assert plan.preview[1]["changed"] == ["Phone"]


def test_new_tags_on_an_existing_contact_are_added_and_none_removed() -> None:
    plan = import_plan.plan_make(
        {"a@x.com": parsed(2, "a@x.com", ["b"])},
        {"a@x.com": existing(1, "a@x.com", {"a"})},
        now=NOW,
        source="import",
    )
    (update,) = plan.updates
    assert update.changes == {} and update.tags_added == ["b"]
    assert plan.preview[0]["tags"] == ["a", "b"]


def test_a_changed_consent_is_dated_now_and_sourced_to_the_import_unless_the_row_says() -> None:
    given_at = NOW - timedelta(days=30)
    plan = import_plan.plan_make(
        {
            "a@x.com": parsed(2, "a@x.com", marketing_consent=True),
            "b@x.com": parsed(
                3, "b@x.com", marketing_consent=True, marketing_consent_at=given_at,
                marketing_consent_source="web form",
            ),
            "c@x.com": parsed(4, "c@x.com", marketing_consent=False),
            "d@x.com": parsed(5, "d@x.com", marketing_consent=False),
        },
        {
            "c@x.com": existing(3, "c@x.com", marketing_consent=True),
            "d@x.com": existing(4, "d@x.com"),
        },
        now=NOW,
        source="CSV import",
    )  # fmt: skip
    created = {p.email: values for p, values in plan.creates}
    assert created["a@x.com"]["marketing_consent_at"] == NOW
    assert created["a@x.com"]["marketing_consent_source"] == "CSV import"
    assert created["b@x.com"]["marketing_consent_at"] == given_at
    assert created["b@x.com"]["marketing_consent_source"] == "web form"
    # A withdrawal is dated; "no" for someone who never consented changes nothing.
    (withdrawn,) = plan.updates
    assert withdrawn.existing.id == 3
    assert withdrawn.changes == {
        "marketing_consent": False,
        "marketing_consent_at": NOW,
        "marketing_consent_source": "CSV import",
    }
    assert plan.unchanged == 1


def test_a_no_for_a_new_contact_is_not_dated() -> None:
    plan = import_plan.plan_make(
        {"a@x.com": parsed(2, "a@x.com", marketing_consent=False)}, {}, now=NOW, source="x"
    )
    assert plan.creates[0][1]["marketing_consent_at"] is None


def test_the_preview_holds_the_first_twenty_contacts() -> None:
    merged = {f"p{i}@x.com": parsed(i + 2, f"p{i}@x.com") for i in range(50)}
    plan = import_plan.plan_make(merged, {}, now=NOW, source="x")
    assert len(plan.preview) == import_plan.PREVIEW_ROWS == 20
    assert plan.preview[0]["row"] == 2 and plan.preview[-1]["row"] == 21
