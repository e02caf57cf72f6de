"""A marketer works a campaign from its page: a test to chosen addresses, Send, Pause, Resume
and Cancel, pressed in the browser. A real `postroom worker` process (its job runner writes
the campaign's messages, its outbox worker sends them) delivers to a real SMTP server on
loopback (tests/support/smtpd.py), which counts what arrives: so "paused" is checked by the
mail that stops arriving, not by the word on the page alone. Screenshots at 1366 px
(tests/browser/site.py SCREENSHOTS)."""

from __future__ import annotations

import email
import email.policy
import re
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect
from pytest_django.fixtures import Settings

from postroom.accounts.models import Role, User
from postroom.campaigns.models import Campaign
from tests.accounts.factories import PASSWORD, user_make
from tests.browser.site import SMALL_LAPTOP, PageOpener, log_in, main_nav, screenshot, shown
from tests.campaigns.conftest import campaign_make, contact_make, list_make
from tests.outbox.worker_harness import company_smtp_at, wait_until, worker_process_start
from tests.support.smtpd import ScriptedSmtpServer
from tests.support.smtpd import scripted_smtpd as scripted_smtpd  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AUDIENCE = [f"person{n:02}@example.net" for n in range(40)]
# Five a second: message n is due n // 5 seconds after the first (postroom.campaigns.
# expansion), so the 40 take about 8 s and the campaign is still sending when Pause is pressed.
THROTTLE_PER_MINUTE = 300
# Pause and cancel "take effect within a second" (issue 10): a message the worker had begun
# may still arrive meanwhile (postroom.outbox.holds), none after.
STOP_SECONDS = 1.0
# Longer than the throttle's 1 s between groups falling due: no new mail for this long means
# nothing is leaving, where a running campaign delivers five more.
QUIET_SECONDS = 1.5
# The worker process starts, claims the job, writes 40 messages and sends the first few.
FIRST_MAIL_SECONDS = 20
TESTERS = ("mia@example.com", "boss@example.org")


@pytest.fixture
def mia() -> User:
    return user_make("mia", role=Role.MARKETER, display_name="Mia Marketer")


@pytest.fixture
def smtp_server(
    scripted_smtpd: Callable[..., ScriptedSmtpServer],
    live_server: Any,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[ScriptedSmtpServer]:
    """The company's SMTP server, and `postroom worker` sending to it (links to the live
    server, as Send requires a public URL)."""
    server = scripted_smtpd()
    company_smtp_at(server.port)
    settings.POSTROOM_PUBLIC_URL = live_server.url
    monkeypatch.setenv("POSTROOM_PUBLIC_URL", live_server.url)
    process = worker_process_start("browser-campaign-controls")
    yield server
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)


@pytest.fixture
def spring(mia: User) -> Campaign:
    """A draft of Mia's to 40 consenting contacts, throttled to five a second."""
    people = [contact_make(address, first_name=f"P{n}") for n, address in enumerate(AUDIENCE)]
    return campaign_make(
        list_make("Spring customers", people),
        actor=mia,
        name="Spring 2026",
        throttle_per_minute=THROTTLE_PER_MINUTE,
    )


def campaign_page(open_page: PageOpener, user: User, campaign: Campaign) -> Page:
    """Log in and follow the menu to the campaign's page."""
    page = open_page(viewport=SMALL_LAPTOP)
    log_in(page, username=user.username, password=PASSWORD)
    main_nav(page).get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name=campaign.name).click()
    expect(page.get_by_role("heading", name=campaign.name)).to_be_visible()
    return page


def state(page: Page) -> Locator:
    return page.locator("#campaign-progress .badge").first


def stat(page: Page, label: str) -> Locator:
    label_of = page.locator(".stat-label", has_text=re.compile(f"^{re.escape(label)}$"))
    return page.locator(".stat", has=label_of).locator(".stat-value")


def delivered(server: ScriptedSmtpServer) -> Counter[str]:
    """The campaign's messages the server accepted, by recipient (tests go to others)."""
    return Counter(
        address
        for message in list(server.messages)
        for address in message.rcpt_tos
        if address in AUDIENCE
    )


def count_once_stopped(count: Callable[[], int]) -> int:
    """The count once it has not grown for QUIET_SECONDS; fail if it grows later than
    STOP_SECONDS after this call (made when the page says the campaign stopped)."""
    start = time.monotonic()
    last, since = count(), start
    while True:
        time.sleep(0.05)
        now, at = count(), time.monotonic()
        if now != last:
            assert at - start <= STOP_SECONDS, (
                f"mail still arriving {at - start:.1f} s after the page said it stopped: "
                f"{last} then {now}"
            )
            last, since = now, at
        elif at - since >= QUIET_SECONDS:
            return last


def test_a_marketer_tests_sends_pauses_and_resumes_a_campaign_on_its_page(
    open_page: PageOpener, mia: User, spring: Campaign, smtp_server: ScriptedSmtpServer
) -> None:
    page = campaign_page(open_page, mia, spring)
    expect(shown(page, "Throttle")).to_have_text(f"{THROTTLE_PER_MINUTE} a minute")

    # A test to two chosen addresses arrives, marked [Test]; the campaign stays a draft.
    page.get_by_label("Send a test to").fill(", ".join(TESTERS))
    page.get_by_role("button", name="Send test").click()
    expect(page.get_by_text("Test sent to 2 address(es).")).to_be_visible()
    tests = smtp_server.wait_for_messages(2, timeout=15)
    assert sorted(address for message in tests for address in message.rcpt_tos) == sorted(TESTERS)
    for message in tests:
        parsed = email.message_from_bytes(message.content, policy=email.policy.default)
        assert str(parsed["Subject"]).startswith("[Test] News for"), parsed["Subject"]
    expect(state(page)).to_have_text("Draft")
    screenshot(page, "campaign-test-sent")

    # Sent: the throttle lets it out five a second.
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_text("Sent to the worker")).to_be_visible()
    wait_until(
        lambda: sum(delivered(smtp_server).values()) >= 5,
        timeout=FIRST_MAIL_SECONDS,
        what="the campaign's first messages",
    )
    expect(state(page)).to_have_text("Sending")
    screenshot(page, "campaign-sending")

    # Paused: the page says so, and the server stops receiving before the end.
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_text("Paused: no further message leaves.")).to_be_visible()
    expect(state(page)).to_have_text("Paused")
    expect(page.get_by_text("Paused by Mia Marketer.")).to_be_visible()
    at_pause = count_once_stopped(lambda: sum(delivered(smtp_server).values()))
    assert 5 <= at_pause < len(AUDIENCE), at_pause
    page.reload()
    expect(stat(page, "sent")).to_have_text(str(at_pause))
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    screenshot(page, "campaign-paused")

    # Resumed: it goes on where it stopped and finishes, each contact mailed once.
    page.get_by_role("button", name="Resume").click()
    expect(page.get_by_text("Resumed where it stopped.")).to_be_visible()
    expect(state(page)).to_have_text("Finished", timeout=30_000)
    expect(stat(page, "sent")).to_have_text(str(len(AUDIENCE)))
    expect(stat(page, "written to the outbox")).to_have_text(str(len(AUDIENCE)))
    expect(stat(page, "queued")).to_have_text("0")
    assert delivered(smtp_server) == Counter(AUDIENCE)
    screenshot(page, "campaign-finished")


def test_cancel_leaves_the_rest_of_a_sending_campaign_unsent_and_says_so(
    open_page: PageOpener, mia: User, spring: Campaign, smtp_server: ScriptedSmtpServer
) -> None:
    page = campaign_page(open_page, mia, spring)
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_text("Sent to the worker")).to_be_visible()
    wait_until(
        lambda: sum(delivered(smtp_server).values()) >= 5,
        timeout=FIRST_MAIL_SECONDS,
        what="the campaign's first messages",
    )

    page.get_by_role("button", name="Cancel campaign").click()
    expect(page.get_by_text("Cancelled: messages not yet sent never will be.")).to_be_visible()
    expect(state(page)).to_have_text("Cancelled")
    at_cancel = count_once_stopped(lambda: sum(delivered(smtp_server).values()))
    assert at_cancel < len(AUDIENCE), at_cancel

    # The page counts what left and what never will; nothing is left to press.
    page.reload()
    expect(stat(page, "sent")).to_have_text(str(at_cancel))
    expect(stat(page, "queued")).to_have_text("0")
    recipients = page.get_by_role("navigation", name="Recipient status")
    unsent = len(AUDIENCE) - at_cancel
    expect(recipients.get_by_role("link", name=f"Cancelled · {unsent}")).to_be_visible()
    for button in ("Pause", "Resume", "Cancel campaign", "Send test"):
        expect(page.get_by_role("button", name=button)).to_have_count(0)
    screenshot(page, "campaign-cancelled")
