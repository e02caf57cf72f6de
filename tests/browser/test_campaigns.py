"""A marketer sends a campaign in the browser: a list, a template and a campaign built on the
pages, sent by a real `postroom worker` process through the real Postfix relay; one
recipient unsubscribes from the link in the message they received (a browser with no
login), and the campaign's page shows it in its statistics. Screenshots at 1366 px and
phone size (tests/browser/site.py SCREENSHOTS)."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from subprocess import Popen
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from pytest_django.fixtures import Settings

from postroom.accounts.models import Role, User
from postroom.company.models import SendAsPolicy
from postroom.contacts import services as contact_services
from tests.accounts.factories import PASSWORD, user_make
from tests.browser.site import PHONE, SMALL_LAPTOP, PageOpener, log_in, main_nav, screenshot
from tests.outbox.worker_harness import company_on_relay, worker_process_start
from tests.support.relay import PostfixRelay

pytestmark = [pytest.mark.browser, pytest.mark.relay, pytest.mark.django_db(transaction=True)]

PEOPLE = ("ann@globex.example", "bob@initech.example", "cleo@umbrella.example")
LETTER = (
    "<style>h1 { color: #1d4ed8; }</style>"
    "<h1>Spring news for {{ contact.first_name or 'you' }}</h1>"
    '<p>Our new catalogue is out. <img src="https://example.com/cat.png" alt="Catalogue"></p>'
    '<p><a href="{{ unsubscribe.url }}">Unsubscribe</a></p>'
)


@pytest.fixture
def mia() -> User:
    return user_make("mia", role=Role.MARKETER, display_name="Mia Marketer")


@pytest.fixture
def sending(
    relay_mailbox: PostfixRelay,
    live_server: Any,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[PostfixRelay]:
    """The company on the relay, and `postroom worker` writing links to the live server."""
    company_on_relay(relay_mailbox, port=relay_mailbox.starttls_port, policy=SendAsPolicy.AUTO)
    settings.POSTROOM_PUBLIC_URL = live_server.url
    monkeypatch.setenv("POSTROOM_PUBLIC_URL", live_server.url)
    for address in PEOPLE:
        contact_services.contact_create(
            actor=None,
            email=address,
            first_name=address.split("@")[0].title(),
            marketing_consent=True,
        )
    process: Popen[bytes] = worker_process_start("browser-campaign-worker")
    yield relay_mailbox
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)


def stat(page: Page, label: str) -> Any:
    label_of = page.locator(".stat-label", has_text=re.compile(f"^{re.escape(label)}$"))
    return page.locator(".stat", has=label_of).locator(".stat-value")


def test_a_marketer_sends_a_campaign_and_sees_one_unsubscribe_in_its_statistics(
    open_page: PageOpener, mia: User, sending: PostfixRelay
) -> None:
    page = open_page(viewport=SMALL_LAPTOP)
    log_in(page, username=mia.username, password=PASSWORD)

    # A list of three contacts.
    main_nav(page).get_by_role("link", name="Audiences").click()
    page.get_by_role("link", name="New list").click()
    page.get_by_label("Name").fill("Spring customers")
    page.get_by_role("button", name="Create list").click()
    page.get_by_label("Add contacts by address").fill("\n".join(PEOPLE))
    page.get_by_role("button", name="Add to the list").click()
    expect(page.get_by_text("3 members")).to_be_visible()

    # A template, previewed as a contact.
    main_nav(page).get_by_role("link", name="Campaigns").click()
    page.get_by_role("navigation", name="Campaigns").get_by_role("link", name="Templates").click()
    page.get_by_role("link", name="New template").click()
    page.get_by_label("Name").fill("Spring letter")
    page.get_by_label("HTML").fill(LETTER)
    page.get_by_role("button", name="Create template").click()
    page.get_by_label("Preview as the contact with the address").fill(PEOPLE[0])
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_text("Shown as Ann")).to_be_visible()
    expect(page.get_by_text("No plain-text part is written")).to_be_visible()
    screenshot(page, "campaign-template-preview")

    # A campaign to the list, sent.
    main_nav(page).get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name="New campaign").click()
    page.get_by_label("Name").fill("Spring 2026")
    page.get_by_label("Subject").fill("Spring news for {{ contact.first_name }}")
    page.get_by_label("Template").select_option(label="Spring letter")
    page.get_by_label("The company").check()
    page.get_by_label(re.compile(r"Spring customers \(3\)")).check()
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("heading", name="Spring 2026")).to_be_visible()
    screenshot(page, "campaign-draft")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_text("Sent to the worker")).to_be_visible()
    expect(page.locator("#campaign-progress .badge").first).to_have_text("Finished", timeout=60_000)
    expect(stat(page, "sent")).to_have_text("3")

    # Ann unsubscribes from the link in the message she received, in her own browser.
    received = {str(m["X-Original-To"]): m for m in sending.wait_for(3, timeout=30)}
    text = received[PEOPLE[0]].get_body(("plain",))
    assert text is not None
    link = re.search(r"Unsubscribe \((\S+)\)", text.get_content())
    assert link is not None, text.get_content()
    ann = open_page(viewport=PHONE)
    ann.goto(link.group(1))
    expect(ann.get_by_text("Stop campaign emails")).to_be_visible()
    ann.get_by_role("button", name="Unsubscribe").click()
    expect(ann.get_by_text(f"{PEOPLE[0]} is unsubscribed")).to_be_visible()
    expect(ann.get_by_role("button", name="Resubscribe")).to_be_visible()
    screenshot(ann, "campaign-unsubscribed")

    # The campaign's page counts it, on a laptop and on a phone.
    page.reload()
    expect(stat(page, "unsubscribed")).to_have_text("1")
    expect(page.get_by_role("row", name=re.compile("Ann.*unsubscribed"))).to_be_visible()
    screenshot(page, "campaign-statistics")
    phone = open_page(viewport=PHONE)
    log_in(phone, username=mia.username, password=PASSWORD)
    phone.goto(page.url)
    expect(stat(phone, "unsubscribed")).to_have_text("1")
    screenshot(phone, "campaign-statistics")
