"""The tagged return path in the browser: an administrator turns it on under Company →
Bounce mailbox (a missing address is refused next to its field), and a contact whose address
bounced later shows the bounce in words in its history."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from postroom.accounts.models import User
from postroom.bounces.processing import bounce_mail_process
from postroom.company.selectors import company_get
from postroom.contacts.services import contact_create
from postroom.outbox.models import Message, MessageStatus, Recipient, RecipientStatus
from tests.outbox.message_factories import message_queue

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SAMPLE = Path(__file__).parent.parent / "bounces" / "samples" / "postfix_unknown_user.eml"


def test_an_administrator_turns_the_tagged_return_path_on(admin_page: Page) -> None:
    page = admin_page
    page.goto("/company/")
    page.get_by_role("link", name="Bounce mailbox").click()
    expect(page.locator("[data-return-path-status]")).to_contain_text("off")

    page.get_by_label("Tag the return path (VERP)").check()
    page.get_by_role("button", name="Save the return path").click()
    expect(page.locator(".form-error")).to_contain_text("Some values need correcting")
    expect(page.locator(".field-error")).to_contain_text("Enter the bounce address")
    assert company_get().tag_return_path is False

    page.get_by_label("Bounce address").fill("bounces@example.com")
    page.get_by_label("Tag the return path (VERP)").check()
    page.get_by_role("button", name="Save the return path").click()
    expect(page.get_by_text("Return path saved.")).to_be_visible()
    expect(page.locator("[data-return-path-status]")).to_contain_text("on")
    expect(page.locator("[data-return-path-example]")).to_have_text(
        re.compile(r"^bounces\+m4711-[0-9a-f]{12}@example\.com$")
    )
    company = company_get()
    assert (company.bounce_address, company.tag_return_path) == ("bounces@example.com", True)


def test_a_contacts_history_shows_a_later_bounce(admin_page: Page, admin_user: User) -> None:
    contact = contact_create(actor=admin_user, email="nosuchuser@example.net")
    message = message_queue(to=["nosuchuser@example.net"], subject="Your invoice 1042")
    Message.objects.filter(pk=message.pk).update(
        message_id="<5f1c0e7a9b2d4c3e8f6a7b1c2d3e4f50@example.com>", status=MessageStatus.SENT
    )
    Recipient.objects.filter(message=message).update(status=RecipientStatus.SENT)
    bounce_mail_process(SAMPLE.read_bytes(), mailbox_ref="uid 1")

    admin_page.goto(f"/contacts/{contact.pk}/")
    row = admin_page.locator("#history-title ~ * tr").filter(has_text="Your invoice 1042")
    expect(row).to_contain_text("Failed")
    expect(row).to_contain_text("Bounced after it was sent (5.1.1): unknown user")
