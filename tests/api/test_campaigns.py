"""/api/v1/campaigns and /api/v1/campaign-templates: the marketing scope, a template with its
preview, a campaign created, changed, sent, paused, resumed, cancelled, and its statistics."""

from __future__ import annotations

import json
from typing import Any

import pytest

from postroom.accounts.models import ApiScope
from postroom.audiences import services as audience_services
from postroom.campaigns.models import Campaign
from postroom.contacts import services as contact_services
from tests.api.conftest import ApiClient, KeyMaker
from tests.campaigns.conftest import job_run_here

pytestmark = pytest.mark.django_db


class MarketingClient(ApiClient):
    def patch(self, path: str, body: Any) -> Any:
        return self.client.patch(
            path, json.dumps(body), content_type="application/json", headers=self._headers(None)
        )

    def delete(self, path: str) -> Any:
        return self.client.delete(path, headers=self._headers(None))


@pytest.fixture
def marketing(key_make: KeyMaker, company: Any) -> MarketingClient:
    _, key = key_make(scopes=[ApiScope.MARKETING])
    return MarketingClient(key)


@pytest.fixture
def list_id() -> int:
    contact_list = audience_services.list_create(actor=None, name="Customers")
    ids = [
        contact_services.contact_create(
            actor=None, email=f"c{n}@example.net", first_name=f"C{n}", marketing_consent=True
        ).pk
        for n in range(3)
    ]
    audience_services.list_members_add(actor=None, contact_list=contact_list, contact_ids=ids)
    return contact_list.pk


def test_a_key_without_the_marketing_scope_is_refused(key_make: KeyMaker) -> None:
    _, key = key_make(scopes=[ApiScope.SEND, ApiScope.READ])
    answer = ApiClient(key).get("/api/v1/campaigns")
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "missing_scope"


def test_a_template_is_created_checked_and_previewed_as_a_contact(
    marketing: MarketingClient,
) -> None:
    bad = marketing.post("/api/v1/campaign-templates", {"name": "X", "html": "{{ secret }}"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "html"
    made = marketing.post(
        "/api/v1/campaign-templates",
        {"name": "News", "html": "<style>p{color:red}</style><p>Hi {{ contact.first_name }}</p>"},
    )
    assert made.status_code == 201
    ann = contact_services.contact_create(actor=None, email="ann@example.net", first_name="Ann")
    preview = marketing.post(
        f"/api/v1/campaign-templates/{made.json()['id']}/preview", {"contact_id": ann.pk}
    ).json()
    assert '<p style="color: red;">Hi Ann</p>' in preview["html"]
    assert "Hi Ann" in preview["text"]
    names = {name for name, _ in preview["headers"]}
    assert {"List-Unsubscribe", "List-Unsubscribe-Post"} <= names
    assert any("plain-text part" in warning for warning in preview["warnings"])


def test_a_campaign_goes_from_draft_to_cancelled_through_the_api(
    marketing: MarketingClient, list_id: int
) -> None:
    template = marketing.post("/api/v1/campaign-templates", {"name": "T", "text": "Hi"}).json()
    made = marketing.post(
        "/api/v1/campaigns",
        {"name": "Autumn", "template_id": template["id"], "list_ids": [list_id]},
    )
    assert made.status_code == 201, made.json()
    campaign_id = made.json()["id"]
    assert made.json()["status"] == "draft"
    no_subject = marketing.post(f"/api/v1/campaigns/{campaign_id}/send")
    assert no_subject.status_code == 400 and no_subject.json()["error"]["field"] == "subject"
    changed = marketing.patch(
        f"/api/v1/campaigns/{campaign_id}",
        {"subject": "Autumn for {{ contact.first_name }}", "throttle_per_hour": 600},
    )
    assert changed.status_code == 200 and changed.json()["throttle_per_hour"] == 600
    test = marketing.post(f"/api/v1/campaigns/{campaign_id}/test", {"to": ["me@example.org"]})
    assert test.status_code == 202 and len(test.json()["messages"]) == 1

    sent = marketing.post(f"/api/v1/campaigns/{campaign_id}/send")
    assert sent.status_code == 202 and sent.json()["status"] == "sending"
    job_run_here(Campaign.objects.get(pk=campaign_id))
    stats = marketing.get(f"/api/v1/campaigns/{campaign_id}/stats").json()
    assert (stats["written"], stats["queued"], stats["opened"]) == (3, 3, None)
    assert marketing.post(f"/api/v1/campaigns/{campaign_id}/pause").json()["status"] == "paused"
    assert marketing.post(f"/api/v1/campaigns/{campaign_id}/resume").json()["status"] == "sending"
    cancelled = marketing.post(f"/api/v1/campaigns/{campaign_id}/cancel").json()
    assert cancelled["status"] == "cancelled"
    assert marketing.get(f"/api/v1/campaigns/{campaign_id}/stats").json()["cancelled"] == 3
    refused = marketing.patch(f"/api/v1/campaigns/{campaign_id}", {"name": "Again"})
    assert refused.status_code == 400
    listed = marketing.get("/api/v1/campaigns", {"status": "cancelled"}).json()
    assert [item["id"] for item in listed["items"]] == [campaign_id]
