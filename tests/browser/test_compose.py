"""Contact Email in a real browser: a staff user writes to a contact from the contact's page,
previews it, sends it, and sees it delivered in the contact's history (issue 4); writes to
three contacts with a Cc as one email to all and individually, with Send always in reach on a
laptop and a phone (issue 8 §6).

The company is in sandbox mode, so the real outbox worker delivers to the capture inbox over
real SMTP; the messages are then found there too, with their envelopes and headers. Screenshots
of the pages go to tests/browser/site.py's SCREENSHOTS.
"""

from __future__ import annotations

import time
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import cast

import pytest
from playwright.sync_api import Locator, Page, expect

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
from tests.browser.site import (
    PHONE,
    SCREENSHOTS,
    SMALL_LAPTOP,
    PageOpener,
    field_errors,
    log_in,
    main_nav,
    screenshot,
    shown,
)
from tests.outbox.worker_harness import running_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# A person's message leaves within a second of being queued (issue 3); the contact page is
# reloaded until then, with room for a slow CI machine.
DELIVERY_TIMEOUT_SECONDS = 15.0


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


def open_compose(page: Page) -> None:
    """Open Compose from the menu, with its scripts running: htmx and compose.js are deferred,
    and a field filled before they run would not ask for suggestions (a person's next
    keystroke would)."""
    main_nav(page).get_by_role("link", name="Compose").click()
    expect(page.get_by_role("heading", name="Write an email")).to_be_visible()
    page.wait_for_load_state("load")


def history_row(page: Page, subject: str) -> Locator:
    return page.get_by_role("region", name="History").get_by_role("row").filter(has_text=subject)


def is_delivered(status: str) -> bool:
    # In sandbox mode the outbox delivers to the capture: "Sent", or "Captured (sandbox)"
    # where the status says so (issue 8 §2).
    return status == "Sent" or status.startswith("Captured")


def reload_until_sent(page: Page, subject: str) -> str:
    """Reload the contact's page until the message's status there is final; return it."""
    deadline = time.monotonic() + DELIVERY_TIMEOUT_SECONDS
    while not is_delivered(status := history_row(page, subject).locator(".badge").inner_text()):
        if time.monotonic() > deadline:
            pytest.fail(f"the history still says {status!r} after {DELIVERY_TIMEOUT_SECONDS} s")
        page.wait_for_timeout(200)
        page.reload()
    return status


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
    expect(page.get_by_role("radio", name="One email to all recipients")).to_be_checked()
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
    assert is_delivered(row.locator(".badge").inner_text())
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
    open_compose(page)

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


# One email to all, or individually; Send in reach (issue 8 §6).

ANN = "ann@globex.example"
BOB = "bob@initech.example"
CLEO = "cleo@umbrella.example"
CAROL = "Carol Diaz <carol@partner.example>"


@pytest.fixture
def three_contacts(ann: Contact) -> list[Contact]:
    return [
        ann,
        services.contact_create(actor=None, email=BOB, first_name="Bob", last_name="Stone"),
        services.contact_create(actor=None, email=CLEO, first_name="Cleo", last_name="Park"),
    ]


def logged_in(open_page: PageOpener, user: User, **viewport: object) -> Page:
    page = open_page(**viewport)
    log_in(page, username=user.username, password=PASSWORD)
    return page


def window_screenshot(page: Page, name: str) -> None:
    """What the person sees in the window, the sticky bar included (screenshot() is the
    whole page, where the bar sits at the form's end)."""
    width = page.viewport_size["width"] if page.viewport_size else 0
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}-window-{width}.png")


def send_button(page: Page) -> Locator:
    return page.get_by_role("button", name="Send", exact=True)


def send_plan(page: Page) -> Locator:
    return page.locator("#send-plan")


def expect_clear_of_the_bar(page: Page, target: Locator) -> None:
    """`target` is in the window and not under the sticky action bar."""
    expect(target).to_be_in_viewport()
    box = target.bounding_box()
    bar = page.locator(".compose-actions").bounding_box()
    assert box is not None and bar is not None
    assert box["y"] + box["height"] <= bar["y"] + 1, "the action bar covers it"


def captured_mail() -> list[tuple[list[str], EmailMessage]]:
    """Each captured message's envelope recipients and parsed headers, oldest first."""
    return [
        (
            list(captured.rcpt_tos),
            cast(EmailMessage, message_from_bytes(bytes(captured.raw), policy=default_policy)),
        )
        for captured in CapturedMessage.objects.order_by("id")
    ]


def wait_for_captures(count: int) -> None:
    deadline = time.monotonic() + DELIVERY_TIMEOUT_SECONDS
    while CapturedMessage.objects.count() < count:
        if time.monotonic() > deadline:
            pytest.fail(f"{CapturedMessage.objects.count()} of {count} messages captured")
        time.sleep(0.1)


def test_one_email_to_all_three_contacts_with_the_cc_once_on_a_laptop(
    open_page: PageOpener,
    sam: User,
    sandbox_company: None,
    three_contacts: list[Contact],
    capture_server: CaptureServer,
) -> None:
    page = logged_in(open_page, sam, viewport=SMALL_LAPTOP)
    open_compose(page)
    expect(page.get_by_role("radio", name="One email to all recipients")).to_be_checked()
    for search, name in (
        ("globex", "Ann Lee"),
        ("initech", "Bob Stone"),
        ("umbrella", "Cleo Park"),
    ):
        page.get_by_label("Find a contact").fill(search)
        page.get_by_role("button", name=f"Add {name} as To").click()
    page.get_by_label("Cc", exact=True).fill(CAROL)
    expect(send_plan(page)).to_have_text(
        "One email to 4 recipients: everyone in To and Cc sees who else got it."
    )
    expect(send_button(page)).to_be_in_viewport(ratio=1)
    page.get_by_label("Subject").fill("Meeting on Monday")
    # A merge field about the recipient, in one email to three: refused, saying what to do.
    body = page.get_by_role("textbox", name="Plain text")
    body.fill("Dear {{ contact.first_name }},\n\nsee you on Monday at 10.\n\nSam\n")
    expect(send_button(page)).to_be_in_viewport(ratio=1)
    window_screenshot(page, "compose-one-email-to-all")
    send_button(page).click()
    problems = page.get_by_role("alert").filter(has_text="Nothing was sent.")
    expect(problems).to_contain_text("one email to 3 To recipients")
    expect(problems).to_contain_text('Choose "Individually"')
    expect(page.get_by_label("Subject")).to_have_value("Meeting on Monday")
    assert not Message.objects.exists()
    problems.get_by_role("link", name="Message").click()
    error = page.locator("#message-body .field-error")
    expect(error).to_contain_text("{{ contact.first_name }}")
    expect_clear_of_the_bar(page, error)
    window_screenshot(page, "compose-error-clear-of-the-bar")

    # Written for everyone instead; Ctrl+Enter sends, as in a mail program.
    body.fill("Dear all,\n\nsee you on Monday at 10.\n\nSam\n")
    expect(send_button(page)).to_be_in_viewport(ratio=1)
    with page.expect_popup() as popup:
        page.get_by_role("button", name="Preview").click()
    preview = popup.value
    expect(preview.get_by_role("heading", name="One email to all recipients")).to_be_visible()
    expect(shown(preview, "To")).to_have_text(
        "Ann Lee <ann@globex.example>, Bob Stone <bob@initech.example>, "
        "Cleo Park <cleo@umbrella.example>"
    )
    expect(shown(preview, "Cc")).to_have_text(CAROL)
    screenshot(preview, "compose-preview-one-email-to-all")
    preview.close()

    with running_worker(concurrency=2):
        body.press("Control+Enter")
        expect(page.get_by_text("1 message queued in the outbox.")).to_be_visible()
        expect(page.get_by_role("heading", name="1 email in the outbox")).to_be_visible()
        row = page.get_by_role("row").filter(has_text="Meeting on Monday")
        for address in (ANN, BOB, CLEO, "carol@partner.example (Cc)"):
            expect(row).to_contain_text(address)
        screenshot(page, "compose-queued-one-email-to-all")
        wait_for_captures(1)
        row.get_by_role("link", name="Cleo Park").click()
        expect(page.get_by_role("heading", name="Cleo Park")).to_be_visible()
        reload_until_sent(page, "Meeting on Monday")
    expect(history_row(page, "Meeting on Monday")).to_contain_text("Sam Sales")

    main_nav(page).get_by_role("link", name="Sent").click()
    sent_rows = page.get_by_role("row").filter(has_text="Meeting on Monday")
    expect(sent_rows).to_have_count(1)
    expect(sent_rows).to_contain_text(ANN)
    screenshot(page, "sent-one-email-to-all")

    ((rcpt_tos, mail),) = captured_mail()
    assert rcpt_tos == [ANN, BOB, CLEO, "carol@partner.example"]
    assert mail["To"] == (
        "Ann Lee <ann@globex.example>, Bob Stone <bob@initech.example>, "
        "Cleo Park <cleo@umbrella.example>"
    )
    assert mail["Cc"] == CAROL


def test_individually_each_contact_gets_their_own_email_and_the_cc_a_copy_of_each_on_a_phone(
    open_page: PageOpener,
    sam: User,
    sandbox_company: None,
    three_contacts: list[Contact],
    capture_server: CaptureServer,
) -> None:
    page = logged_in(open_page, sam, viewport=PHONE)
    page.goto("/compose/")
    page.get_by_role(
        "radio", name="Individually (one email each, with their own merge fields)"
    ).check()
    page.get_by_label("To", exact=True).fill(f"{ANN}\n{BOB}\n{CLEO}")
    page.get_by_label("Cc", exact=True).fill(CAROL)
    expect(send_plan(page)).to_have_text(
        "3 emails, one per To recipient: each sees only their own address. "
        "Carol Diaz (Cc) will receive 3 copies, one of each email."
    )
    # The form runs far below the window here: the bar keeps Send on the screen.
    expect(send_button(page)).to_be_in_viewport(ratio=1)
    window_screenshot(page, "compose-individually-recipients")
    page.get_by_label("Subject").fill("Your quote, {{ contact.first_name }}")
    # Sent without a message: the page says so, and the error is not under the bar.
    send_button(page).click()
    problems = page.get_by_role("alert").filter(has_text="Nothing was sent.")
    expect(problems).to_contain_text("Write a message")
    problems.get_by_role("link", name="Message").click()
    expect_clear_of_the_bar(page, page.locator("#message-body .field-error"))
    window_screenshot(page, "compose-individually-error")
    expect(
        page.get_by_role("radio", name="Individually (one email each, with their own merge fields)")
    ).to_be_checked()
    expect(send_plan(page)).to_contain_text("Carol Diaz (Cc) will receive 3 copies")

    page.get_by_role("textbox", name="Plain text").fill(
        "Dear {{ contact.first_name }},\n\nyour quote is attached.\n\nSam\n"
    )
    expect(send_button(page)).to_be_in_viewport(ratio=1)
    expect(page.get_by_role("button", name="Preview")).to_be_in_viewport(ratio=1)
    window_screenshot(page, "compose-individually")
    screenshot(page, "compose-individually")

    page.get_by_label("for To recipient no.").fill("2")
    with page.expect_popup() as popup:
        page.get_by_role("button", name="Preview").click()
    preview = popup.value
    expect(preview.get_by_role("heading", name="3 emails, one per To recipient")).to_be_visible()
    expect(preview.get_by_role("heading", name=f"Message to {BOB}")).to_be_visible()
    expect(shown(preview, "Subject")).to_have_text("Your quote, Bob")
    expect(shown(preview, "To")).to_have_text(f"Bob Stone <{BOB}>")
    expect(shown(preview, "Cc")).to_have_text(CAROL)
    expect(preview.locator("#send-plan")).to_contain_text("Carol Diaz (Cc) will receive 3 copies")
    screenshot(preview, "compose-preview-individually")
    preview.close()

    with running_worker(concurrency=2):
        send_button(page).click()
        expect(page.get_by_text("3 messages queued in the outbox.")).to_be_visible()
        for subject in ("Your quote, Ann", "Your quote, Bob", "Your quote, Cleo"):
            expect(page.get_by_role("row").filter(has_text=subject)).to_contain_text(
                "carol@partner.example (Cc)"
            )
        screenshot(page, "compose-queued-individually")
        wait_for_captures(3)
        page.get_by_role("row").filter(has_text="Your quote, Bob").get_by_role(
            "link", name="Bob Stone"
        ).click()
        reload_until_sent(page, "Your quote, Bob")
    expect(history_row(page, "Your quote, Ann")).to_have_count(0)

    page.goto("/sent/")
    expect(page.get_by_role("row").filter(has_text="Your quote, ")).to_have_count(3)
    screenshot(page, "sent-individually")

    captured = captured_mail()
    assert len(captured) == 3
    by_to = {mail["To"]: (rcpt_tos, mail) for rcpt_tos, mail in captured}
    assert sorted(by_to) == [
        f"Ann Lee <{ANN}>",
        f"Bob Stone <{BOB}>",
        f"Cleo Park <{CLEO}>",
    ], "each sees only their own address"
    for to, (rcpt_tos, mail) in by_to.items():
        assert mail["Cc"] == CAROL
        assert rcpt_tos == [to.split("<")[1].rstrip(">"), "carol@partner.example"]
        assert mail["Subject"] == f"Your quote, {to.split()[0]}"
