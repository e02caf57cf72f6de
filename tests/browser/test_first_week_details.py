"""The details of the first week (issue 8 §4, §5, §7) in a real browser, each once shown only
by page or unit tests: a contact whose server says its address does not exist is flagged
until the address is corrected; an Outbox message's page shows its body and hands out its
attachments; the Sandbox capture is in the menu only while it captures or holds mail; the
Webhooks page links to help the site itself serves.

The servers are real: the outbox worker of tests/outbox/worker_harness.py delivers to a
scripted aiosmtpd (tests/support/smtpd.py) or to the capture server. Screenshots go to
tests/browser/site.py's SCREENSHOTS.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Locator, Page, expect

from postroom.accounts.models import User
from postroom.contacts.services import contact_create
from postroom.inbox.models import CapturedMessage
from postroom.inbox.server import CaptureServer
from postroom.mail.addresses import parse_address
from postroom.mail.message import Attachment, OutgoingEmail
from postroom.outbox.enqueue import message_enqueue
from postroom.outbox.models import Message, Source
from tests.accounts.factories import PASSWORD
from tests.browser.site import (
    PHONE,
    SMALL_LAPTOP,
    PageOpener,
    log_in,
    main_nav,
    nav_names,
    open_administration,
    screenshot,
)
from tests.outbox.worker_harness import company_smtp_at, message_finished, running_worker
from tests.support.smtpd import ScriptedSmtpServer
from tests.support.smtpd import scripted_smtpd as scripted_smtpd  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SENDER = "Acme <office@example.com>"  # company_smtp_at's company address
# A typo of ben.stone@, and what Postfix answers for a mailbox it does not have.
MISTYPED = "ben.stoen@globex.example"
USER_UNKNOWN = f"550 5.1.1 <{MISTYPED}>: Recipient address rejected: User unknown"
INVOICE_PDF = b"%PDF-1.7 " * 100
ORDER_CSV = b"item,quantity\r\nwidget,12\r\n"


@pytest.fixture
def root_page(open_page: PageOpener, admin_user: User) -> Page:
    """The administrator `root`, logged in on a 1366 px laptop (the most common screen)."""
    page = open_page(viewport=SMALL_LAPTOP)
    log_in(page, username=admin_user.username, password=PASSWORD)
    return page


def _enqueue(email: OutgoingEmail, *, sender_user: User | None = None) -> Message:
    source = Source.COMPOSE if sender_user else Source.API
    return message_enqueue(email=email, source=source, sender_user=sender_user)


def _scroll_into_view_painted(frame: Locator) -> None:
    """Scroll the mail's HTML frame into view and wait until the page has drawn it there.

    The frame is sandboxed (an opaque origin), so Chromium renders it in a process of its own
    and skips painting it while it is out of view: a full-page screenshot taken first shows
    it blank. Two of the page's animation frames after the scroll, it has been drawn.
    """
    frame.scroll_into_view_if_needed()
    frame.page.evaluate(
        "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"
    )


def _set_sandbox_mode(page: Page, *, is_on: bool) -> None:
    """Administration → Company → Edit, tick or untick Sandbox mode, Save."""
    open_administration(page, "Company")
    page.get_by_role("link", name="Edit", exact=True).click()
    page.get_by_label(re.compile("^Sandbox mode")).set_checked(is_on)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("SMTP Server Information saved.")).to_be_visible()


def test_an_address_its_server_says_does_not_exist_is_flagged_until_it_is_corrected(
    root_page: Page, scripted_smtpd: Callable[..., ScriptedSmtpServer]
) -> None:
    page = root_page
    server = scripted_smtpd(recipient_replies={MISTYPED: USER_UNKNOWN})
    company_smtp_at(server.port)
    contact_create(actor=None, email="ann@globex.example", first_name="Ann", last_name="Lee")
    contact_create(actor=None, email=MISTYPED, first_name="Ben", last_name="Stone")
    email = OutgoingEmail(
        from_=parse_address(SENDER),
        to=[parse_address("ann@globex.example"), parse_address(MISTYPED)],
        subject="Invoice 2026-0042",
        text="Dear customer,\n\nyour invoice is attached.\n",
    )
    with running_worker(concurrency=2):
        message_finished(_enqueue(email))
    assert [m.rcpt_tos for m in server.messages] == [("ann@globex.example",)]

    main_nav(page).get_by_role("link", name="Contacts").click()
    ben_row = page.get_by_role("row").filter(has_text="Ben Stone")
    flag = ben_row.locator(".badge.bad")
    expect(flag).to_have_text("address refused")
    expect(flag).to_have_attribute("title", re.compile("its server says it does not exist"))
    expect(page.get_by_role("row").filter(has_text="Ann Lee")).not_to_contain_text("refused")
    screenshot(page, "contacts-address-refused")

    ben_row.get_by_role("link", name="Ben Stone").click()
    expect(page.get_by_role("heading", name="Ben Stone")).to_be_visible()
    note = page.get_by_role("note").filter(has_text="The last email to this address failed")
    expect(note).to_contain_text(f"The recipient {MISTYPED} does not exist")  # what happened
    expect(note).to_contain_text("550 5.1.1")  # what the server said
    expect(note).to_contain_text("Check the address for typos")  # what to do
    history = page.get_by_role("region", name="History").get_by_role("row")
    expect(history.filter(has_text="Invoice 2026-0042")).to_contain_text("Failed")
    screenshot(page, "contact-address-refused")
    page.set_viewport_size(PHONE)
    expect(note).to_be_visible()
    screenshot(page, "contact-address-refused")
    page.set_viewport_size(SMALL_LAPTOP)

    # The person does what the note says; the corrected address has no failure against it.
    page.get_by_role("link", name="Edit", exact=True).click()
    page.get_by_label("Email address").fill("ben.stone@globex.example")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Contact Ben Stone was saved.")).to_be_visible()
    expect(page.get_by_role("note").filter(has_text="failed")).to_have_count(0)
    main_nav(page).get_by_role("link", name="Contacts").click()
    expect(page.get_by_role("row").filter(has_text="Ben Stone")).not_to_contain_text("refused")


def test_an_outbox_message_shows_its_text_its_html_sandboxed_and_its_attachments(
    root_page: Page, admin_user: User
) -> None:
    page = root_page
    email = OutgoingEmail(
        from_=parse_address(SENDER),
        to=[parse_address("Ann Lee <ann@globex.example>")],
        subject="Invoice 2026-0042",
        text="Dear Ann,\n\nyour invoice is attached.\n",
        html="<p>Dear Ann,</p><p>your <b>invoice</b> is attached.</p>",
        attachments=[
            Attachment("invoice-0042.pdf", "application/pdf", INVOICE_PDF),
            Attachment("order-lines.csv", "text/csv", ORDER_CSV),
        ],
    )
    message = _enqueue(email, sender_user=admin_user)

    main_nav(page).get_by_role("link", name="Outbox").click()
    page.get_by_role("row").filter(has_text="Invoice 2026-0042").get_by_role(
        "link", name="Invoice 2026-0042"
    ).click()
    expect(page.get_by_role("heading", name="Invoice 2026-0042")).to_be_visible()
    expect(page).to_have_url(re.compile(rf"/outbox/{message.pk}/$"))

    text = page.get_by_role("region", name="Text")
    expect(text.locator("pre.mail-text")).to_have_text("Dear Ann,\n\nyour invoice is attached.\n")
    html = page.get_by_role("region", name="HTML")
    expect(html.locator("iframe.mail-html")).to_have_attribute("sandbox", "")
    frame = html.frame_locator("iframe.mail-html")
    expect(frame.locator("b")).to_have_text("invoice")
    expect(frame.locator("body")).to_contain_text("your invoice is attached.")

    attachments = page.get_by_role("region", name="Attachments")
    pdf_row = attachments.get_by_role("row").filter(has_text="invoice-0042.pdf")
    expect(pdf_row).to_contain_text("application/pdf")
    expect(pdf_row).to_contain_text("900\u00a0bytes")  # 100 × 9 bytes, as filesizeformat says
    expect(attachments.get_by_role("row").filter(has_text="order-lines.csv")).to_contain_text(
        "text/csv"
    )
    _scroll_into_view_painted(html.locator("iframe.mail-html"))
    screenshot(page, "outbox-message-body")
    page.set_viewport_size(PHONE)
    _scroll_into_view_painted(html.locator("iframe.mail-html"))
    screenshot(page, "outbox-message-body")
    page.set_viewport_size(SMALL_LAPTOP)

    for filename, content in (("invoice-0042.pdf", INVOICE_PDF), ("order-lines.csv", ORDER_CSV)):
        with page.expect_download() as download:
            attachments.get_by_role("link", name=filename).click()
        assert download.value.suggested_filename == filename
        assert download.value.path().read_bytes() == content, filename


def test_the_sandbox_capture_is_in_the_menu_only_while_it_captures_or_holds_mail(
    root_page: Page,
    admin_user: User,
    capture_server: CaptureServer,
    scripted_smtpd: Callable[..., ScriptedSmtpServer],
) -> None:
    page = root_page
    company_smtp_at(scripted_smtpd().port)  # a server is set and sandbox mode is off
    page.reload()
    assert "Sandbox capture" not in nav_names(page)
    screenshot(page, "menu-without-sandbox-capture")

    # Sandbox mode on: the capture is in the menu, empty, and catches the next message.
    _set_sandbox_mode(page, is_on=True)
    main_nav(page).get_by_role("link", name="Sandbox capture").click()
    expect(page.get_by_role("heading", name="Sandbox capture")).to_be_visible()
    expect(page.get_by_text("No mail captured yet.")).to_be_visible()
    email = OutgoingEmail(
        from_=parse_address(SENDER),
        to=[parse_address("ann@globex.example")],
        subject="Trying the sandbox",
        text="Hello.\n",
    )
    with running_worker(concurrency=2):
        message_finished(_enqueue(email, sender_user=admin_user))
    assert CapturedMessage.objects.count() == 1

    # Sandbox mode off: the capture stays in the menu while it holds mail.
    _set_sandbox_mode(page, is_on=False)
    main_nav(page).get_by_role("link", name="Sandbox capture").click()
    expect(page.get_by_role("link", name="Trying the sandbox")).to_be_visible()
    screenshot(page, "sandbox-capture-kept-after-sandbox-mode")

    # Emptied, it leaves the menu.
    page.get_by_role("link", name="Delete all…").click()
    page.get_by_role("button", name="Delete 1 message").click()
    expect(page.get_by_text("Deleted 1 captured message.")).to_be_visible()
    expect(main_nav(page).get_by_role("link", name="Sandbox capture")).to_have_count(0)
    expect(main_nav(page).get_by_role("link", name="Outbox")).to_be_visible()
    screenshot(page, "menu-without-sandbox-capture-emptied")


def test_the_webhooks_page_links_to_the_webhooks_help_the_site_serves(root_page: Page) -> None:
    page = root_page
    open_administration(page, "Webhooks")
    expect(page.get_by_role("heading", name="Webhooks")).to_be_visible()
    expect(page.locator("#main")).not_to_contain_text("docs/webhooks.md")  # no repository path
    help_link = page.get_by_role("link", name="Webhooks help")
    expect(help_link).to_have_attribute("href", "/help/webhooks/")
    screenshot(page, "webhooks-help-link")

    with page.expect_response(re.compile(r"/help/webhooks/$")) as response:
        help_link.click()
    assert response.value.status == 200
    document = page.locator("article.help-doc")
    expect(document.get_by_role("heading", name="Webhooks", exact=True)).to_be_visible()
    expect(document).to_contain_text("webhook-signature")
    # A link within the document lands on its heading.
    document.get_by_role("link", name="Duplicates").first.click()
    expect(page).to_have_url(re.compile(r"/help/webhooks/#duplicates$"))
    expect(page.locator("#duplicates")).to_be_in_viewport()
    screenshot(page, "help-webhooks")
