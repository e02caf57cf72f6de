"""The campaign pages, with Django's test client: who may open them, templates with their
preview and warnings, a campaign made and sent from its form, and tracking (opens and
clicks) only when the company turned it on."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from django.test import Client

from postroom.accounts.models import Role, User
from postroom.campaigns.models import Campaign, CampaignRecipient, CampaignStatus
from postroom.campaigns.services import campaign_send, campaign_tracking_set
from postroom.company.selectors import company_get
from postroom.outbox.models import Message
from tests.accounts.factories import user_make
from tests.campaigns.conftest import (
    campaign_make,
    contact_make,
    job_run_here,
    list_make,
    template_make,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def company_address(db: None) -> None:
    company = company_get()
    company.name, company.sender_email = "Acme", "news@acme.example"
    company.save()


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("path", ["/campaigns/", "/campaigns/new/", "/campaigns/templates/"])
def test_staff_cannot_open_the_campaign_pages_and_do_not_see_them_in_the_menu(
    path: str, marketer: User
) -> None:
    staff = client_for(user_make("sam", role=Role.STAFF))
    assert staff.get(path).status_code == 403
    assert "/campaigns/" not in staff.get("/").content.decode()
    assert client_for(marketer).get(path).status_code == 200
    assert 'href="/campaigns/"' in client_for(marketer).get("/").content.decode()


def test_a_marketer_writes_a_template_and_sees_it_as_a_contact_with_the_warnings(
    marketer: User,
) -> None:
    contact_make("ann@example.net", first_name="Ann")
    client = client_for(marketer)
    html = (
        "<style>h1 { color: #aa0000; }</style><h1>Hi {{ contact.first_name }}</h1>"
        '<img src="https://example.com/logo.png">'
    )
    answer = client.post("/campaigns/templates/new/", {"name": "Monthly", "html": html})
    assert answer.status_code == 302
    preview = client.get(answer["Location"] + "?contact=ann@example.net")
    page = preview.content.decode()
    assert "Hi Ann" in page and "style=&quot;color: #aa0000;&quot;" in page
    assert "without alt text" in page and "No plain-text part is written" in page
    assert "List-Unsubscribe-Post" in page
    refused = client.post("/campaigns/templates/new/", {"name": "Bad", "html": "{{ nope }}"})
    assert refused.status_code == 200 and "merge field" in refused.content.decode()


def test_a_campaign_is_made_on_its_form_and_sent_from_its_page(marketer: User) -> None:
    people = [contact_make(f"p{n}@example.net", first_name=f"P{n}") for n in range(3)]
    contact_list = list_make("Friends", people)
    client = client_for(marketer)
    client.post("/campaigns/templates/new/", {"name": "T", "html": "<p>Hi</p>"})
    template_id = re.search(r'value="(\d+)">T<', client.get("/campaigns/new/").content.decode())
    assert template_id is not None
    answer = client.post(
        "/campaigns/new/",
        {
            "name": "Launch",
            "subject": "Our launch, {{ contact.first_name }}",
            "template": template_id.group(1),
            "sender_kind": "company",
            "list_ids": [contact_list.pk],
            "time_zone": "Europe/Berlin",
            "throttle_per_minute": 0,
            "throttle_per_hour": 0,
            "auto_pause_window": 100,
            "auto_pause_percent": 10,
        },
    )
    assert answer.status_code == 302, answer.content.decode()[:2000]
    campaign = Campaign.objects.get(name="Launch")
    assert client.get(f"/campaigns/{campaign.pk}/preview/").status_code == 200
    sent = client.post(f"/campaigns/{campaign.pk}/send/", follow=True)
    assert "Sent to the worker" in sent.content.decode()
    job_run_here(campaign)
    assert campaign.status == CampaignStatus.SENDING and campaign.queued_count == 3
    detail = client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert "written to the outbox" in detail and "p0@example.net" in detail


def test_tracking_counts_opens_and_clicks_only_when_the_company_turned_it_on(
    admin: User, client: Client
) -> None:
    ann = contact_make("ann@example.net")
    html = '<p><a href="https://example.com/offer">Offer</a></p>'
    untracked = campaign_make(
        list_make("A", [ann]), template=template_make(html=html, name="Plain")
    )
    campaign_send(actor=None, campaign=untracked)
    job_run_here(untracked)
    assert "tracking" not in str(
        Message.objects.get(bulk_template=untracked.bulk_template).bulk_data
    )

    campaign_tracking_set(actor=admin, is_on=True)
    tracked = campaign_make(
        list_make("B", [ann]), template=template_make(html=html, name="Tracked")
    )
    campaign_send(actor=None, campaign=tracked)
    job_run_here(tracked)
    values = Message.objects.get(bulk_template=tracked.bulk_template).bulk_data["values"]
    pixel = client.get(_path(values["tracking"]["open"]))
    assert pixel.status_code == 200 and pixel["Content-Type"] == "image/gif"
    jump = client.get(_path(values["tracking"]["click"]) + "0/")
    assert jump.status_code == 302 and jump["Location"] == "https://example.com/offer"
    assert client.get(_path(values["tracking"]["click"]) + "7/").status_code == 404
    recipient = CampaignRecipient.objects.get(campaign=tracked)
    assert (recipient.open_count, recipient.click_count) == (1, 1)
    assert recipient.opened_at is not None and recipient.clicked_at is not None


def _path(url: str) -> str:
    return urlsplit(url).path
