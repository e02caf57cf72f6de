"""A wrong password, as a company meets it in its first week (issue 8 §1, §3), against the
real Postfix relay: the 535 pauses sending, every screen says so and why, the administrator
tries the right password with "Test these settings" (nothing saved), saves it, and the held
mail leaves by itself. Screenshots at 1366×768 and phone size."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from postroom.accounts.models import User
from postroom.company.selectors import company_get
from postroom.core.secrets import secret_encrypt
from postroom.mail.addresses import parse_address
from postroom.mail.message import OutgoingEmail
from postroom.outbox.enqueue import message_enqueue
from postroom.outbox.models import Message, MessageStatus, ServerPause, Source
from tests.accounts.factories import PASSWORD
from tests.browser.site import PHONE, SMALL_LAPTOP, PageOpener, log_in, screenshot
from tests.outbox.worker_harness import running_worker
from tests.support.relay import PostfixRelay

pytestmark = [pytest.mark.browser, pytest.mark.relay, pytest.mark.django_db(transaction=True)]


def company_with_a_wrong_password(relay: PostfixRelay) -> None:
    company = company_get()
    company.sender_email = relay.allowed_senders[0]
    company.smtp_host = "localhost"
    company.smtp_port = relay.starttls_port
    company.smtp_secure_required = True
    company.smtp_login = relay.user
    company.smtp_password_encrypted = secret_encrypt("a-mistyped-password")
    company.smtp_ca_certificate = relay.ca_pem
    company.save()


def wait_for(condition: object, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout} s for {what}")
        time.sleep(0.1)


def test_a_wrong_password_pauses_is_explained_is_fixed_and_the_held_mail_leaves(
    open_page: PageOpener, admin_user: User, relay_mailbox: PostfixRelay
) -> None:
    relay = relay_mailbox
    company_with_a_wrong_password(relay)
    message = message_enqueue(
        email=OutgoingEmail(
            from_=parse_address(relay.allowed_senders[0]),
            to=[parse_address("bob@example.org")],
            subject="Invoice 2026-0042",
            text="Your invoice.",
        ),
        source=Source.API,
    )
    page = open_page(viewport=SMALL_LAPTOP)
    log_in(page, username=admin_user.username, password=PASSWORD)
    with running_worker(concurrency=2):
        wait_for(ServerPause.objects.exists, "the 535 to pause sending")

        page.reload()
        notice = page.get_by_role("alert", name="Sending paused")
        expect(notice).to_contain_text("is paused")
        expect(notice).to_contain_text("password")
        assert len(re.findall(r"\b535\b", notice.inner_text())) <= 1, "the code said once"
        screenshot(page, "dashboard-paused")
        phone = open_page(viewport=PHONE)
        log_in(phone, username=admin_user.username, password=PASSWORD)
        expect(phone.get_by_role("alert", name="Sending paused")).to_be_visible()
        screenshot(phone, "dashboard-paused")

        page.goto(f"/outbox/{message.pk}/")
        expect(page.locator("h1 .badge")).to_have_text("held (paused)")
        expect(page.get_by_text("Held:")).to_be_visible()

        page.goto("/company/smtp/edit/")
        page.get_by_label("SMTP Authentication Password").fill(relay.password)
        page.get_by_role("button", name="Test these settings").click()
        result = page.locator("#check-result")
        expect(result).to_contain_text("Connection works", timeout=20_000)
        expect(result).to_contain_text("nothing was saved")
        screenshot(page, "company-test-these-settings")
        assert ServerPause.objects.exists(), "testing changes nothing"

        page.get_by_role("button", name="Save").click()
        expect(page.get_by_text("It is resumed")).to_be_visible()
        wait_for(
            lambda: Message.objects.get(pk=message.pk).status == MessageStatus.SENT,
            "the held message to leave by itself",
        )
    (delivered,) = relay.wait_for(1)
    assert delivered["Message-ID"] == message.message_id
    page.goto(f"/outbox/{message.pk}/")
    expect(page.locator("h1 .badge")).to_have_text("Sent")
    screenshot(page, "outbox-message-sent-after-fix")
