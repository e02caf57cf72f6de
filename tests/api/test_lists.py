"""/api/v1/lists: the marketing scope, lists, members by id and by address, pages."""

from __future__ import annotations

import json
from typing import Any

import pytest

from postroom.accounts.models import ApiScope
from postroom.audiences.models import ContactList
from postroom.audit.models import AuditEntry
from postroom.contacts import services as contact_services
from postroom.contacts.models import Contact
from tests.api.conftest import ApiClient, KeyMaker

pytestmark = pytest.mark.django_db


class MarketingClient(ApiClient):
    def patch(self, path: str, body: Any) -> Any:
        return self.client.patch(
            path, json.dumps(body), content_type="application/json", headers=self._headers(None)
        )

    def delete(self, path: str) -> Any:
        return self.client.delete(path, headers=self._headers(None))


@pytest.fixture
def marketing(key_make: KeyMaker) -> MarketingClient:
    _, key = key_make(scopes=[ApiScope.MARKETING])
    return MarketingClient(key)


def contact(email: str, **fields: Any) -> Contact:
    return contact_services.contact_create(actor=None, email=email, **fields)


def test_a_key_without_the_marketing_scope_is_refused(key_make: KeyMaker) -> None:
    _, key = key_make(scopes=[ApiScope.CONTACTS, ApiScope.SEND, ApiScope.READ])
    response = ApiClient(key).get("/api/v1/lists")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "missing_scope"
    _, admin_key = key_make(scopes=[ApiScope.ADMIN], name="all")
    assert ApiClient(admin_key).get("/api/v1/lists").status_code == 200


def test_a_list_is_created_read_renamed_and_deleted(marketing: MarketingClient) -> None:
    created = marketing.post("/api/v1/lists", {"name": "Trade fair", "description": "Booth 4"})
    assert created.status_code == 201
    body = created.json()
    assert (body["name"], body["member_count"]) == ("Trade fair", 0)
    url = f"/api/v1/lists/{body['id']}"
    assert marketing.get(url).json()["description"] == "Booth 4"
    renamed = marketing.patch(url, {"name": "Trade fair 2026"})
    assert renamed.json()["name"] == "Trade fair 2026"
    assert renamed.json()["description"] == "Booth 4"
    assert marketing.delete(url).status_code == 204
    assert marketing.get(url).status_code == 404
    assert AuditEntry.objects.filter(action="list.deleted", actor=None).exists()


def test_a_duplicate_name_or_an_unknown_field_is_a_400(marketing: MarketingClient) -> None:
    marketing.post("/api/v1/lists", {"name": "Fair"})
    duplicate = marketing.post("/api/v1/lists", {"name": "FAIR"})
    assert duplicate.status_code == 400
    assert duplicate.json()["error"]["field"] == "name"
    typo = marketing.post("/api/v1/lists", {"name": "Other", "descripton": "x"})
    assert typo.status_code == 400


def test_members_are_added_by_id_and_address_listed_and_removed(
    marketing: MarketingClient,
) -> None:
    ann, bob = contact("ann@example.org"), contact("bob@example.org", is_active=False)
    fair = marketing.post("/api/v1/lists", {"name": "Fair"}).json()
    url = f"/api/v1/lists/{fair['id']}/members"
    added = marketing.post(
        url, {"contact_ids": [ann.pk, 99_999], "emails": ["BOB@example.org", "zed@example.org"]}
    )
    assert added.status_code == 200
    assert added.json() == {"added": 2, "unknown_emails": ["zed@example.org"]}
    again = marketing.post(url, {"contact_ids": [ann.pk]})
    assert again.json()["added"] == 0
    page = marketing.get(url, {"limit": 1}).json()
    assert [item["email"] for item in page["items"]] == ["ann@example.org"]
    rest = marketing.get(url, {"cursor": page["next_cursor"]}).json()
    assert [(i["email"], i["is_active"]) for i in rest["items"]] == [("bob@example.org", False)]
    assert rest["next_cursor"] is None
    assert marketing.get(f"/api/v1/lists/{fair['id']}").json()["member_count"] == 2
    removed = marketing.post(f"{url}/remove", {"contact_ids": [ann.pk, ann.pk]})
    assert removed.json() == {"removed": 1}
    assert list(ContactList.objects.get().members.all()) == [bob]


def test_lists_page_by_id_with_a_cursor_of_their_own(marketing: MarketingClient) -> None:
    for name in ("C", "A", "B"):
        marketing.post("/api/v1/lists", {"name": name})
    first = marketing.get("/api/v1/lists", {"limit": 2}).json()
    assert [item["name"] for item in first["items"]] == ["C", "A"]
    second = marketing.get("/api/v1/lists", {"cursor": first["next_cursor"]}).json()
    assert [item["name"] for item in second["items"]] == ["B"]
    wrong = marketing.get("/api/v1/segments", {"cursor": first["next_cursor"]})
    assert wrong.json()["error"]["code"] == "invalid_cursor"
    assert marketing.get("/api/v1/lists", {"search": "b"}).json()["items"][0]["name"] == "B"


def test_members_of_a_missing_list_are_a_404(marketing: MarketingClient) -> None:
    response = marketing.post("/api/v1/lists/12345/members", {"contact_ids": [1]})
    assert response.status_code == 404
    assert "no list #12345" in response.json()["error"]["message"]
