"""Company → Bounce mailbox in a real browser, against a real Dovecot: fill the settings, Test
connection, Save, Check now, and the bounce shown with a link to its message."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from postroom.bounces.models import BounceMailbox
from postroom.core.secrets import secret_decrypt
from postroom.outbox.models import Message, MessageStatus, Recipient, RecipientStatus
from tests.bounces.mails import dsn, not_a_bounce
from tests.browser.site import open_administration
from tests.outbox.message_factories import message_queue
from tests.support.certs import CertAuthority
from tests.support.dovecot import DovecotServer, dovecot_session

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def dovecot(test_ca: CertAuthority) -> Iterator[DovecotServer]:
    yield from dovecot_session(test_ca)


def _sent(message_id: str, address: str) -> Message:
    message = message_queue(to=[address], subject="Your invoice")
    Message.objects.filter(pk=message.pk).update(message_id=message_id, status=MessageStatus.SENT)
    Recipient.objects.filter(message=message).update(status=RecipientStatus.SENT)
    return message


def test_an_administrator_sets_up_tests_and_reads_the_bounce_mailbox(
    admin_page: Page, dovecot: DovecotServer, test_ca: CertAuthority
) -> None:
    page = admin_page
    user, password = dovecot.user_add()
    message = _sent("<invoice-1@example.com>", "gone@example.net")
    dovecot.deliver(user, dsn("gone@example.net", original_message_id="<invoice-1@example.com>"))
    dovecot.deliver(user, not_a_bounce())

    open_administration(page, "Company")
    page.get_by_role("navigation", name="Company").get_by_role(
        "link", name="Bounce mailbox"
    ).click()
    expect(page.get_by_role("heading", name="Bounce mailbox")).to_be_visible()
    page.get_by_label("Read this mailbox").check()
    page.get_by_label("Protocol").select_option("imap")
    page.get_by_label("Server address").fill("127.0.0.1")
    page.get_by_label("Security").select_option("tls")
    page.get_by_label("Port").fill(str(dovecot.imaps_port))
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_text("Advanced").click()
    page.get_by_label("CA certificate").fill(test_ca.pem)

    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#test-result")).to_contain_text("Connection works")
    expect(page.locator("#test-result")).to_contain_text("2 mails wait in the folder INBOX")

    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Bounce mailbox saved.")).to_be_visible()
    stored = BounceMailbox.objects.get(pk=1)
    assert stored.is_enabled and secret_decrypt(stored.password_encrypted) == password
    assert password not in page.content()

    page.get_by_role("button", name="Check now").click()
    expect(page.get_by_text("Checked the bounce mailbox. Read 2 new mails")).to_be_visible()
    expect(page.locator("[data-poll-status]")).to_contain_text("working")
    row = page.locator("#bounce-reports tbody tr").filter(has_text="gone@example.net")
    expect(row).to_contain_text("Hard bounce")
    row.get_by_role("link", name="Your invoice").click()
    expect(page).to_have_url(re.compile(rf"/outbox/{message.pk}/$"))
    assert dovecot.messages(user) == []
    assert len(dovecot.messages(user, "Postroom/Processed")) == 2


def test_a_wrong_password_is_said_plainly_on_test_connection(
    admin_page: Page, dovecot: DovecotServer, test_ca: CertAuthority
) -> None:
    page = admin_page
    user, _ = dovecot.user_add()
    page.goto("/company/bounces/")
    page.get_by_label("Server address").fill("127.0.0.1")
    page.get_by_label("Port").fill(str(dovecot.imaps_port))
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password", exact=True).fill("wrong-password")
    page.get_by_text("Advanced").click()
    page.get_by_label("CA certificate").fill(test_ca.pem)

    page.get_by_role("button", name="Test connection").click()

    result = page.locator("#test-result")
    expect(result).to_contain_text("Problem found")
    expect(result).to_contain_text(f"The server refused the login of {user}")
    expect(result).to_contain_text("Check the user name and the password")
