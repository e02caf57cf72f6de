"""The outbox's pages in a real browser while the real worker delivers (issue 3).

A message queued with `message_enqueue` is followed on the Outbox page until the worker has
sent it: to the capture inbox in sandbox mode (then seen on the Inbox page), and through the
real Postfix relay, where each recipient gets its own fate and the person cancels the rest.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.utils import timezone
from playwright.sync_api import Locator, Page, expect

from postroom.accounts.models import User
from postroom.company.services import SmtpSettingsInput, company_smtp_update
from postroom.inbox.models import CapturedMessage
from postroom.inbox.server import CaptureServer
from postroom.mail.addresses import parse_address
from postroom.mail.message import OutgoingEmail
from postroom.outbox.enqueue import message_enqueue
from postroom.outbox.models import Message, MessageStatus, Source
from tests.browser.site import SMALL_LAPTOP, main_nav, screenshot
from tests.outbox.worker_harness import running_worker
from tests.support.relay import PostfixRelay

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SENDER = "Acme Ltd <relayuser@example.com>"  # an address the test relay lets its login use
# A person's message leaves within a second of being queued (issue 3); the page is reloaded
# until then, with room for a slow CI machine.
DELIVERY_TIMEOUT_SECONDS = 15.0


def _enqueue(
    *to: str, subject: str, sender_user: User, not_before_at: dt.datetime | None = None
) -> Message:
    return message_enqueue(
        email=OutgoingEmail(
            from_=parse_address(SENDER),
            to=[parse_address(address) for address in to],
            subject=subject,
            text="Hello,\n\nthe quarterly report is ready.\n",
        ),
        source=Source.COMPOSE,
        sender_user=sender_user,
        not_before_at=not_before_at,
    )


def _status(page: Page) -> str:
    return page.locator("h1 .badge").inner_text()


def _reload_until_status(page: Page, status: str) -> None:
    """Reload the message page until its heading's badge says `status` (the page does not
    refresh itself)."""
    deadline = time.monotonic() + DELIVERY_TIMEOUT_SECONDS
    while (shown := _status(page)) != status:
        if time.monotonic() > deadline:
            pytest.fail(f"{page.url} still says {shown!r} after {DELIVERY_TIMEOUT_SECONDS} s")
        page.wait_for_timeout(200)
        page.reload()


def _recipient_row(page: Page, address: str) -> Locator:
    return page.get_by_role("region", name="Recipients").get_by_role("row").filter(has_text=address)


def test_in_sandbox_mode_a_message_is_captured_never_counted_as_delivered_and_seen_captured(
    admin_page: Page, admin_user: User, capture_server: CaptureServer
) -> None:
    page = admin_page
    with running_worker(concurrency=2):
        message = _enqueue(
            "Bob <bob@example.org>", subject="Quarterly report", sender_user=admin_user
        )
        main_nav(page).get_by_role("link", name="Outbox").click()
        row = page.get_by_role("row").filter(has_text="Quarterly report")
        expect(row).to_contain_text("bob@example.org")
        row.get_by_role("link", name="Quarterly report").click()
        _reload_until_status(page, "Captured (sandbox)")

    expect(_recipient_row(page, "bob@example.org")).to_contain_text("Captured (sandbox)")
    expect(_recipient_row(page, "bob@example.org")).to_contain_text("250")
    expect(page.get_by_text("Captured, not sent")).to_be_visible()
    screenshot(page, "outbox-message-captured")
    attempt = (
        page.get_by_role("region", name="Attempts")
        .get_by_role("row")
        .filter(has_text="bob@example.org")
    )
    expect(attempt).to_contain_text(f"127.0.0.1:{capture_server.port}")
    expect(attempt).to_contain_text("Success")
    expect(page.get_by_role("button", name="Retry")).to_have_count(0)
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)

    with page.expect_download() as download:
        page.get_by_role("link", name="Download .eml").click()
    raw = download.value.path().read_bytes()
    assert raw == bytes(Message.objects.get(pk=message.pk).raw or b"")
    assert download.value.suggested_filename.endswith(".eml")

    main_nav(page).get_by_role("link", name="Dashboard").click()
    expect(page.locator(".stat").filter(has_text="delivered today")).to_contain_text("0")
    expect(page.locator(".stat").filter(has_text="captured today")).to_contain_text("1")
    screenshot(page, "dashboard-captured")

    page.goto(f"/outbox/{message.pk}/")
    page.get_by_role("link", name="the captured copy").click()
    expect(page.locator("pre.mail-text")).to_have_text("Hello,\n\nthe quarterly report is ready.\n")
    captured = CapturedMessage.objects.get()
    assert (captured.mail_from, captured.rcpt_tos) == ("relayuser@example.com", ["bob@example.org"])
    assert bytes(captured.raw) == raw, "the capture server got the outbox's exact bytes"


def test_a_cancelled_message_is_sent_after_retry(
    admin_page: Page, admin_user: User, capture_server: CaptureServer
) -> None:
    page = admin_page
    tomorrow = timezone.now() + dt.timedelta(days=1)
    message = _enqueue(
        "bob@example.org", subject="Not yet", sender_user=admin_user, not_before_at=tomorrow
    )
    with running_worker(concurrency=2):
        page.goto(f"/outbox/{message.pk}/")
        expect(page.locator("h1 .badge")).to_have_text("Queued")
        page.get_by_role("button", name="Cancel").click()
        expect(page.get_by_text("The message is cancelled")).to_be_visible()
        expect(page.locator("h1 .badge")).to_have_text("Cancelled")
        expect(_recipient_row(page, "bob@example.org")).to_contain_text("Cancelled")

        page.get_by_role("button", name="Retry").click()
        expect(page.get_by_text("The message is queued again")).to_be_visible()
        _reload_until_status(page, "Captured (sandbox)")
    assert CapturedMessage.objects.count() == 1


@pytest.mark.relay
def test_through_the_relay_each_recipient_gets_its_own_fate_and_the_rest_can_be_cancelled(
    admin_page: Page, admin_user: User, relay_mailbox: PostfixRelay
) -> None:
    page, relay = admin_page, relay_mailbox
    company_smtp_update(
        actor=None,
        values=SmtpSettingsInput(
            smtp_host=relay.host,
            smtp_port=relay.starttls_port,
            smtp_login=relay.user,
            smtp_password=relay.password,
            smtp_secure_required=True,
            sender_email="relayuser@example.com",
            smtp_ca_certificate=relay.ca_pem,
        ),
    )
    with running_worker(concurrency=2):
        # The relay answers 550 to reject@ and 451 to tempfail@ (tests/support/relay.py).
        message = _enqueue(
            "bob@example.org",
            "reject@example.org",
            "tempfail@example.org",
            subject="Three fates",
            sender_user=admin_user,
        )
        page.goto(f"/outbox/{message.pk}/")
        _reload_until_status(page, "Deferred")

    bob = _recipient_row(page, "bob@example.org")
    expect(bob).to_contain_text("Sent")
    expect(bob).to_contain_text("250 2.0.0")
    expect(bob).to_contain_text("queued as")
    rejected = _recipient_row(page, "reject@example.org")
    expect(rejected).to_contain_text("Failed")
    expect(rejected).to_contain_text("does not exist")  # in plain words first
    expect(rejected).to_contain_text("550 5.1.1")  # the server's reply, under Details
    screenshot(page, "outbox-message-three-fates")
    deferred = _recipient_row(page, "tempfail@example.org")
    expect(deferred).to_contain_text("Deferred")
    expect(deferred).to_contain_text("451 4.7.1")
    expect(page.get_by_role("region", name="Message")).to_contain_text("Next attempt")
    (delivered,) = relay.wait_for(1)
    assert delivered["X-Original-To"] == "bob@example.org"
    assert delivered["Message-ID"] == message.message_id

    # The deferred recipient is cancelled: the message is finished, partly sent.
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("h1 .badge")).to_have_text("Partly sent")
    expect(_recipient_row(page, "tempfail@example.org")).to_contain_text("Cancelled")
    expect(_recipient_row(page, "bob@example.org")).to_contain_text("Sent")
    assert Message.objects.get(pk=message.pk).status == MessageStatus.PARTIAL

    main_nav(page).get_by_role("link", name="Outbox").click()
    page.get_by_role("link", name="Partly sent").click()
    expect(page.get_by_role("row").filter(has_text="Three fates")).to_be_visible()
    # At 1366 px the list fits: nothing scrolls sideways inside its card.
    page.set_viewport_size(SMALL_LAPTOP)
    table_wrap = page.locator(".table-wrap").first
    assert table_wrap.evaluate("el => el.scrollWidth <= el.clientWidth + 1")
    screenshot(page, "outbox-list")
