"""Contacts through the API: create, read, change, delete, search; scope `contacts`."""

from __future__ import annotations

from typing import Any

import pytest

from postroom.accounts.models import ApiScope
from postroom.audit.models import AuditEntry
from postroom.contacts.models import Contact
from tests.api.conftest import ApiClient, KeyMaker

pytestmark = pytest.mark.django_db

CONTACTS = "/api/v1/contacts"


@pytest.fixture
def client(key_make: KeyMaker) -> ApiClient:
    _, key = key_make(scopes=[ApiScope.CONTACTS])
    return ApiClient(key)


def bob(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "email": "Bob@Example.org",
        "first_name": "Bob",
        "last_name": "Jones",
        "company": "Initech",
        "tags": ["Customer", "vip"],
    }
    body.update(overrides)
    return body


def test_a_contact_is_created_read_changed_and_deleted(client: ApiClient) -> None:
    created = client.post(CONTACTS, bob())
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["email"], body["name"], body["company"]) == (
        "Bob@example.org",
        "Bob Jones",
        "Initech",
    )
    assert body["tags"] == ["customer", "vip"]
    url = f"{CONTACTS}/{body['id']}"
    assert client.get(url).json() == body

    changed = client.client.patch(
        url,
        '{"phone": "+1 555 0100", "tags": ["lead"], "marketing_consent": true}',
        content_type="application/json",
        headers={"Authorization": f"Bearer {client.key}"},
    )
    assert changed.status_code == 200, changed.content
    after = changed.json()
    assert (after["phone"], after["tags"], after["first_name"]) == ("+1 555 0100", ["lead"], "Bob")
    assert after["marketing_consent"] is True
    assert after["marketing_consent_at"] is not None

    deleted = client.client.delete(url, headers={"Authorization": f"Bearer {client.key}"})
    assert deleted.status_code == 204
    assert not Contact.objects.exists()
    assert client.get(url).status_code == 404
    actions = list(
        AuditEntry.objects.filter(action__startswith="contact.").values_list("action", flat=True)
    )
    assert sorted(actions) == ["contact.created", "contact.deleted", "contact.updated"]


def test_an_address_another_contact_has_is_400_on_email(client: ApiClient) -> None:
    client.post(CONTACTS, bob())
    response = client.post(CONTACTS, bob(email="bob@EXAMPLE.org"))
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid", "email")
    assert Contact.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (bob(email="not an address"), "email"),
        (bob(first_name="Bob\r\nBcc: x@y.z"), "first_name"),
        (bob(tags=["a,b"]), "tags"),
        (
            bob(marketing_consent=True, marketing_consent_at="2999-01-01T00:00:00Z"),
            "marketing_consent_at",
        ),
        (
            bob(marketing_consent=True, marketing_consent_at="0001-01-01T00:00:00"),
            "marketing_consent_at",
        ),
        (bob(nickname="Bobby"), "nickname"),
        ({"first_name": "Bob"}, "email"),
    ],
)
def test_bad_contact_input_is_400_with_the_field(
    client: ApiClient, body: dict[str, Any], field: str
) -> None:
    response = client.post(CONTACTS, body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["field"] == field
    assert not Contact.objects.exists()


def test_search_and_filters_find_contacts(client: ApiClient) -> None:
    client.post(CONTACTS, bob())
    client.post(
        CONTACTS,
        bob(
            email="carol@example.org",
            first_name="Carol",
            company="Acme",
            tags=["lead"],
            marketing_consent=True,
        ),
    )
    client.post(
        CONTACTS, bob(email="dave@example.org", first_name="Dave", is_active=False, tags=[])
    )

    def emails(**params: Any) -> list[str]:
        response = client.get(CONTACTS, params)
        assert response.status_code == 200, response.content
        return [item["email"] for item in response.json()["items"]]

    assert emails(search="carol") == ["carol@example.org"]
    assert emails(search="jones initech") == ["Bob@example.org", "dave@example.org"]
    assert emails(email="BOB@example.org") == ["Bob@example.org"]
    assert emails(tag="VIP") == ["Bob@example.org"]
    assert emails(marketing_consent="true") == ["carol@example.org"]
    assert emails(is_active="false") == ["dave@example.org"]
    acme = Contact.objects.get(email="carol@example.org").organization
    assert acme is not None
    assert emails(company_id=acme.pk) == ["carol@example.org"]


def test_the_contact_list_pages_with_a_cursor(client: ApiClient) -> None:
    for index in range(5):
        client.post(CONTACTS, {"email": f"p{index}@example.org"})
    first = client.get(CONTACTS, {"limit": 2}).json()
    second = client.get(CONTACTS, {"limit": 2, "cursor": first["next_cursor"]}).json()
    third = client.get(CONTACTS, {"limit": 2, "cursor": second["next_cursor"]}).json()
    pages = [first, second, third]
    assert [[i["email"] for i in page["items"]] for page in pages] == [
        ["p0@example.org", "p1@example.org"],
        ["p2@example.org", "p3@example.org"],
        ["p4@example.org"],
    ]
    assert third["next_cursor"] is None
    wrong_kind = client.get(CONTACTS, {"cursor": "bTE6MQ"})  # a message list's cursor
    assert wrong_kind.json()["error"]["code"] == "invalid_cursor"


def test_contacts_need_the_contacts_scope(key_make: KeyMaker) -> None:
    _, key = key_make(scopes=[ApiScope.SEND, ApiScope.READ])
    response = ApiClient(key).get(CONTACTS)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "missing_scope"
    _, admin_key = key_make(scopes=[ApiScope.ADMIN])
    assert ApiClient(admin_key).get(CONTACTS).status_code == 200


def test_an_unknown_contact_is_404(client: ApiClient) -> None:
    for method in ("get", "patch", "delete"):
        response = getattr(client.client, method)(
            f"{CONTACTS}/9999",
            **({"data": "{}", "content_type": "application/json"} if method == "patch" else {}),
            headers={"Authorization": f"Bearer {client.key}"},
        )
        assert response.status_code == 404, method
        assert response.json()["error"]["code"] == "not_found"
