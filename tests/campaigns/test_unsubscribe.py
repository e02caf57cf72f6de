"""Unsubscribing from a received campaign message, over real HTTP against a live Postroom:
the RFC 8058 one-click POST with no session, cookie or CSRF token; the page a person opens;
resubscribing; and links that were tampered with or have expired."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
from pytest_django.fixtures import Settings

from postroom.campaigns import services
from postroom.campaigns.links import token_make
from postroom.campaigns.models import CampaignRecipient
from postroom.company.models import SendAsPolicy
from postroom.outbox.models import Event, EventKind, Suppression
from tests.campaigns.conftest import campaign_make, contact_make, job_run_here, list_make
from tests.outbox.worker_harness import company_on_relay, running_worker
from tests.support.relay import PostfixRelay

pytestmark = [pytest.mark.relay, pytest.mark.django_db(transaction=True)]
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
def links_to_live_server(live_server: Any, settings: Settings) -> str:
    settings.POSTROOM_PUBLIC_URL = live_server.url
    return str(live_server.url)


def received_links(relay: PostfixRelay, count: int) -> dict[str, str]:
    """Each recipient's HTTPS unsubscribe link, from the messages the relay delivered."""
    links = {}
    for message in relay.wait_for(count, timeout=20):
        https = message["List-Unsubscribe"].split(",")[0].strip(" <>")
        links[str(message["X-Original-To"])] = https
    return links


@pytest.fixture
def links(relay_mailbox: PostfixRelay, links_to_live_server: str) -> dict[str, str]:
    company_on_relay(relay_mailbox, port=relay_mailbox.starttls_port, policy=SendAsPolicy.AUTO)
    people = [contact_make("ann@example.net"), contact_make("bob@example.net")]
    campaign = campaign_make(list_make("News", people))
    services.campaign_send(actor=None, campaign=campaign)
    job_run_here(campaign)
    with running_worker():
        found = received_links(relay_mailbox, 2)
    assert all(link.startswith(links_to_live_server + "/u/") for link in found.values())
    return found


def unsubscribed_events(address: str) -> int:
    return Event.objects.filter(kind=EventKind.RECIPIENT_UNSUBSCRIBED, recipient=address).count()


def test_one_click_post_unsubscribes_without_session_or_token_and_only_once(
    links: dict[str, str],
) -> None:
    with httpx.Client() as client:  # a fresh client: no cookie, no CSRF token
        first = client.post(links["ann@example.net"], data=ONE_CLICK)
        again = client.post(links["ann@example.net"], data=ONE_CLICK)
    assert first.status_code == 200 and again.status_code == 200
    entry = Suppression.objects.get(address="ann@example.net")
    assert entry.reason == "unsubscribed"
    assert unsubscribed_events("ann@example.net") == 1, "a retried POST changes nothing"
    assert CampaignRecipient.objects.get(address="ann@example.net").unsubscribed_at is not None
    assert not Suppression.objects.filter(address="bob@example.net").exists()


def test_opening_the_link_asks_first_and_the_page_can_resubscribe(
    links: dict[str, str],
) -> None:
    url = links["bob@example.net"]
    with httpx.Client() as client:
        page = client.get(url)
        assert page.status_code == 200 and "Stop campaign emails" in page.text
        assert not Suppression.objects.filter(address="bob@example.net").exists(), (
            "a GET (a link scanner, a preview) must not unsubscribe"
        )
        done = client.post(url, data={"action": "unsubscribe"})
        assert "is unsubscribed" in done.text and "Resubscribe" in done.text
        assert Suppression.objects.filter(address="bob@example.net").exists()
        back = client.post(url, data={"action": "resubscribe"})
    assert "subscribed again" in back.text
    assert not Suppression.objects.filter(address="bob@example.net").exists()
    assert done.headers["Referrer-Policy"] == "no-referrer"


def test_a_tampered_link_is_refused(links: dict[str, str]) -> None:
    url = links["ann@example.net"]
    token = url.rstrip("/").rsplit("/", 1)[1]
    campaign, contact, day = token.split(":")[0].split(".")
    other = f"{campaign}.{int(contact, 36) + 1:x}.{day}"  # another contact, same signature
    forged = url.replace(token, other + ":" + token.split(":")[1])
    flipped = url[:-3] + ("A" if url[-3] != "A" else "B") + url[-2:]
    with httpx.Client() as client:
        for bad in (forged, flipped):
            answer = client.post(bad, data=ONE_CLICK)
            assert answer.status_code == 400, bad
            assert "not valid" in answer.text
    assert not Suppression.objects.exists()


def test_an_expired_link_is_refused(links_to_live_server: str) -> None:
    ann = contact_make("ann@example.net")
    campaign = campaign_make(list_make("News", [ann]))
    old = token_make(
        campaign_id=campaign.pk,
        contact_id=ann.pk,
        issued_on=dt.date.today() - dt.timedelta(days=400),  # noqa: DTZ011 - a calendar day
    )
    with httpx.Client() as client:
        answer = client.post(f"{links_to_live_server}/u/{old}/", data=ONE_CLICK)
    assert answer.status_code == 400
    assert "expired" in answer.text
    assert not Suppression.objects.exists()
