"""Contact Email in a real browser: a staff user writes to a contact from the contact's page,
previews it, sends it, and sees it delivered in the contact's history (issue 4).

The company is in sandbox mode, so the real outbox worker delivers to the capture inbox over
real SMTP; the message is then found there too.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Locator, Page, expect
from pytest_django.fixtures import Settings

from postroom.accounts.models import User
from postroom.company.models import SendAsPolicy
from postroom.company.selectors import company_get
from postroom.compose.email_templates import email_template_create
from postroom.contacts import services
from postroom.contacts.models import Contact
from postroom.inbox.models import CapturedMessage
from postroom.inbox.server import CaptureServer
from postroom.outbox.models import Message
from tests.accounts.factories import PASSWORD, user_make
from tests.browser.site import PageOpener, field_errors, log_in, main_nav
from tests.outbox.worker_harness import running_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# A person's message leaves within a second of being queued (issue 3); the contact page is
# reloaded until then, with room for a slow CI machine.
DELIVERY_TIMEOUT_SECONDS = 15.0


@pytest.fixture
def capture_server(settings: Settings) -> Iterator[CaptureServer]:
    """The capture inbox on a free port: where the outbox delivers in sandbox mode."""
    server = CaptureServer("127.0.0.1", 0)
    server.start()
    settings.POSTROOM_CAPTURE_PORT = server.port
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sandbox_company() -> None:
    company = company_get()
    company.name = "Acme"
    company.sender_name = "Acme"
    company.sender_email = "office@acme.example"
    company.sandbox_mode = True
    company.send_as_policy = SendAsPolicy.AUTO
    company.save()


@pytest.fixture
def sam() -> User:
    return user_make("sam", email="sam@acme.example", display_name="Sam Sales")


@pytest.fixture
def ann() -> Contact:
    return services.contact_create(
        actor=None, email="ann@globex.example", first_name="Ann", last_name="Lee",
        organization_name="Globex",
    )  # fmt: skip


@pytest.fixture
def sam_page(open_page: PageOpener, sam: User, sandbox_company: None) -> Page:
    page = open_page()
    log_in(page, username=sam.username, password=PASSWORD)
    return page


def history_row(page: Page, subject: str) -> Locator:
    return page.get_by_role("region", name="History").get_by_role("row").filter(has_text=subject)


def reload_until_sent(page: Page, subject: str) -> None:
    deadline = time.monotonic() + DELIVERY_TIMEOUT_SECONDS
    while (status := history_row(page, subject).locator(".badge").inner_text()) != "Sent":
        if time.monotonic() > deadline:
            pytest.fail(f"the history still says {status!r} after {DELIVERY_TIMEOUT_SECONDS} s")
        page.wait_for_timeout(200)
        page.reload()


def test_a_staff_user_emails_a_contact_and_sees_it_sent_in_the_contacts_history(
    sam_page: Page, ann: Contact, capture_server: CaptureServer
) -> None:
    page = sam_page
    main_nav(page).get_by_role("link", name="Contacts").click()
    page.get_by_role("link", name="Ann Lee").click()
    expect(page.get_by_role("region", name="History")).to_contain_text("No email to")
    page.get_by_role("link", name="Write an email").click()

    expect(page.get_by_role("heading", name="Write an email")).to_be_visible()
    expect(page.get_by_label("To", exact=True)).to_have_value("Ann Lee <ann@globex.example>")
    expect(page.get_by_text("Each To recipient gets their own message", exact=True)).to_be_visible()
    page.get_by_label("Subject").fill("Your quote, {{ contact.first_name }}")

    # Rich text: the editor, its toolbar, and a merge field typed into it.
    page.get_by_role("radio", name="Rich text").check()
    editor = page.get_by_role("textbox", name="Message (rich text)")
    editor.click()
    editor.press_sequentially("Dear {{ contact.first_name }}, ")
    page.get_by_role("button", name="Bold").click()
    editor.press_sequentially("thank you")
    page.get_by_role("button", name="Bold").click()
    editor.press_sequentially(" for your order.")

    # The preview opens in its own tab and shows the message exactly, for Ann.
    with page.expect_popup() as popup:
        page.get_by_role("button", name="Preview").click()
    preview = popup.value
    expect(preview.get_by_role("heading", name="Message to ann@globex.example")).to_be_visible()
    expect(preview.get_by_text("Your quote, Ann").first).to_be_visible()
    expect(preview.locator("pre.mail-text")).to_contain_text("Dear Ann, thank you for your order.")
    frame = preview.frame_locator("iframe.mail-html")
    expect(frame.locator("b")).to_have_text("thank you")
    assert preview.locator("iframe.mail-html").get_attribute("sandbox") == ""
    preview.close()
    assert not Message.objects.exists(), "a preview queues nothing"

    with running_worker(concurrency=2):
        page.get_by_role("button", name="Send").click()
        expect(page.get_by_role("heading", name="Queued")).to_be_visible()
        expect(page.get_by_text("1 message queued in the outbox.")).to_be_visible()
        page.get_by_role("link", name="Ann Lee").click()
        expect(page.get_by_role("heading", name="Ann Lee")).to_be_visible()
        reload_until_sent(page, "Your quote, Ann")

    row = history_row(page, "Your quote, Ann")
    expect(row).to_contain_text("Sam Sales")
    expect(row.locator(".badge.ok")).to_have_text("Sent")
    row.get_by_role("link", name="Your quote, Ann").click()
    expect(page.get_by_role("heading", name="Your quote, Ann")).to_be_visible()

    captured = CapturedMessage.objects.get()
    assert captured.rcpt_tos == ["ann@globex.example"]
    assert captured.mail_from == "sam@acme.example", "from the user's own address"
    raw = bytes(captured.raw)
    assert b"From: Sam Sales <sam@acme.example>" in raw
    assert b"<b>thank you</b>" in raw


def test_contacts_are_found_as_you_type_and_a_template_fills_the_message(
    sam_page: Page, sam: User, ann: Contact
) -> None:
    services.contact_create(actor=None, email="bob@initech.example", first_name="Bob")
    email_template_create(
        actor=sam, name="Follow-up", subject="Following up, {{ contact.first_name }}",
        text="Hello {{ contact.first_name }},\n\nany news?\n", html="",
    )  # fmt: skip
    page = sam_page
    main_nav(page).get_by_role("link", name="Compose").click()

    page.get_by_label("Find a contact").fill("globex")
    page.get_by_role("button", name="Add Ann Lee as To").click()
    page.get_by_label("Find a contact").fill("initech")
    page.get_by_role("button", name="Add Bob as Cc").click()
    expect(page.get_by_label("To", exact=True)).to_have_value("Ann Lee <ann@globex.example>")
    expect(page.get_by_label("Cc", exact=True)).to_have_value("Bob <bob@initech.example>")

    page.get_by_label("Template").select_option(label="Follow-up")
    expect(page.get_by_label("Subject")).to_have_value("Following up, {{ contact.first_name }}")
    expect(page.get_by_role("textbox", name="Plain text")).to_have_value(
        "Hello {{ contact.first_name }},\n\nany news?\n"
    )

    # A typo in an address comes back next to its field, with everything else kept.
    page.get_by_label("Bcc", exact=True).fill("audit@@acme.example")
    page.get_by_role("button", name="Send").click()
    expect(field_errors(page, "bcc")).to_contain_text("Recipient 1 (Bcc)")
    expect(page.get_by_label("Subject")).to_have_value("Following up, {{ contact.first_name }}")
    assert not Message.objects.exists()

    page.get_by_label("Bcc", exact=True).fill("")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_text("1 message queued in the outbox.")).to_be_visible()
    message = Message.objects.get()
    assert message.subject == "Following up, Ann"
    assert sorted(message.recipients.values_list("address", flat=True)) == [
        "ann@globex.example",
        "bob@initech.example",
    ]
