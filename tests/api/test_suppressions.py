"""/api/v1/suppressions: list (an exact address answers "is it suppressed?"), add, remove."""

from __future__ import annotations

import pytest

from postroom.accounts.models import ApiScope
from postroom.audit.models import AuditEntry
from postroom.outbox.models import Suppression
from tests.api.conftest import KeyMaker
from tests.api.test_lists import MarketingClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketing(key_make: KeyMaker) -> MarketingClient:
    _, key = key_make(scopes=[ApiScope.MARKETING])
    return MarketingClient(key)


def test_an_address_is_added_once_looked_up_and_removed(marketing: MarketingClient) -> None:
    created = marketing.post(
        "/api/v1/suppressions",
        {"address": "Ann@Example.org", "reason": "unsubscribed", "note": "by phone"},
    )
    assert created.status_code == 201
    body = created.json()
    assert (body["address"], body["reason"], body["source"]) == (
        "Ann@example.org",
        "unsubscribed",
        "added through the API",
    )
    again = marketing.post("/api/v1/suppressions", {"address": "ann@example.org"})
    assert again.status_code == 200
    assert again.json()["id"] == body["id"] and again.json()["reason"] == "unsubscribed"
    found = marketing.get("/api/v1/suppressions", {"address": "ANN@example.org"}).json()
    assert [item["id"] for item in found["items"]] == [body["id"]]
    none = marketing.get("/api/v1/suppressions", {"address": "bob@example.org"}).json()
    assert none["items"] == []
    assert marketing.delete(f"/api/v1/suppressions/{body['id']}").status_code == 204
    assert not Suppression.objects.exists()
    assert marketing.delete(f"/api/v1/suppressions/{body['id']}").status_code == 404
    actions = list(AuditEntry.objects.values_list("action", flat=True))
    assert actions.count("suppression.added") == 1 and "suppression.removed" in actions


def test_a_bad_address_or_reason_is_a_400(marketing: MarketingClient) -> None:
    bad = marketing.post("/api/v1/suppressions", {"address": "not an address"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "address"
    reason = marketing.post("/api/v1/suppressions", {"address": "a@example.org", "reason": "x"})
    assert reason.status_code == 400
    assert not Suppression.objects.exists()


def test_the_list_is_newest_first_in_pages_and_filters_by_reason(
    marketing: MarketingClient,
) -> None:
    for index in range(3):
        marketing.post("/api/v1/suppressions", {"address": f"m{index}@example.org"})
    marketing.post("/api/v1/suppressions", {"address": "c@example.org", "reason": "complained"})
    first = marketing.get("/api/v1/suppressions", {"limit": 2}).json()
    assert [item["address"] for item in first["items"]] == ["c@example.org", "m2@example.org"]
    rest = marketing.get("/api/v1/suppressions", {"cursor": first["next_cursor"]}).json()
    assert [item["address"] for item in rest["items"]] == ["m1@example.org", "m0@example.org"]
    complained = marketing.get("/api/v1/suppressions", {"reason": "complained"}).json()
    assert [item["address"] for item in complained["items"]] == ["c@example.org"]
