"""/api/v1/segments: rules as data checked against the vocabulary, the live count."""

from __future__ import annotations

import pytest

from postroom.accounts.models import ApiScope
from postroom.audiences.models import Segment
from postroom.contacts import services as contact_services
from postroom.outbox.suppression import suppression_add
from tests.api.conftest import KeyMaker
from tests.api.test_lists import MarketingClient

pytestmark = pytest.mark.django_db

EXAMPLE = {
    "name": "Customers to wake",
    "rules": [
        {"field": "tag", "op": "has", "value": "customer"},
        {"field": "consent", "op": "is_true"},
        {"field": "emailed", "op": "not_within_days", "value": 30},
    ],
}


@pytest.fixture
def marketing(key_make: KeyMaker) -> MarketingClient:
    _, key = key_make(scopes=[ApiScope.MARKETING])
    return MarketingClient(key)


def test_a_segment_is_created_counted_changed_and_deleted(marketing: MarketingClient) -> None:
    for email, consent in (("ann@example.org", True), ("bob@example.org", True)):
        contact_services.contact_create(
            actor=None, email=email, tags=["customer"], marketing_consent=consent
        )
    suppression_add(actor=None, address="bob@example.org")
    created = marketing.post("/api/v1/segments", EXAMPLE)
    assert created.status_code == 201
    body = created.json()
    assert body["match"] == "all"
    assert body["rules"] == EXAMPLE["rules"]
    assert "emailed not in the last 30 days" in body["conditions"]
    url = f"/api/v1/segments/{body['id']}"
    assert marketing.get(f"{url}/count").json() == {"count": 2, "consented_not_suppressed": 1}
    changed = marketing.patch(
        url, {"match": "any", "rules": [{"field": "consent", "op": "is_false"}]}
    )
    assert changed.json()["rules"] == [{"field": "consent", "op": "is_false"}]
    assert marketing.get(f"{url}/count").json()["count"] == 0
    assert marketing.delete(url).status_code == 204
    assert not Segment.objects.exists()


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([], "Add at least one condition."),
        ([{"field": "salary", "op": "is", "value": "x"}], "Condition 1: choose a field"),
        ([{"field": "emailed", "op": "within_days", "value": 0}], "from 1 to 3650"),
        ([{"field": "tag", "op": "has"}], "Condition 1: enter a value."),
    ],
)
def test_a_rule_outside_the_vocabulary_is_a_400_on_rules(
    marketing: MarketingClient, rules: list[dict[str, object]], message: str
) -> None:
    response = marketing.post("/api/v1/segments", {"name": "X", "rules": rules})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["field"], message in error["message"]) == ("rules", True)
    assert not Segment.objects.exists()


def test_a_rule_with_an_unknown_key_is_refused_by_the_schema(marketing: MarketingClient) -> None:
    rules = [{"field": "tag", "op": "has", "value": "x", "sql": "1=1"}]
    response = marketing.post("/api/v1/segments", {"name": "X", "rules": rules})
    assert response.status_code == 400


def test_segments_are_listed_and_a_missing_one_is_a_404(marketing: MarketingClient) -> None:
    marketing.post("/api/v1/segments", EXAMPLE)
    items = marketing.get("/api/v1/segments").json()["items"]
    assert [item["name"] for item in items] == ["Customers to wake"]
    assert marketing.get("/api/v1/segments/999/count").status_code == 404
