"""Check connection and Send test email, clicked in a real browser, against the real Postfix
relay (tests/support/relay.py): the steps appear on the page (htmx) and the mail arrives."""

from __future__ import annotations

import secrets

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.site import has_class, open_administration, shown
from tests.support.relay import PostfixRelay

pytestmark = [pytest.mark.browser, pytest.mark.relay, pytest.mark.django_db(transaction=True)]

COMPANY_ADDRESS = "relayuser@example.com"
# The steps of a check over STARTTLS with a login, in the order the page lists them.
STEP_NAMES = {
    "dns": "Name resolution",
    "tcp": "TCP connect",
    "greeting": "Greeting",
    "ehlo": "EHLO",
    "starttls": "STARTTLS",
    "certificate": "TLS certificate",
    "ehlo_tls": "EHLO after STARTTLS",
    "auth": "AUTH",
}


def _step(page: Page, key: str) -> Locator:
    return page.locator(f"#check-result li[data-step='{key}']")


def _configure_the_relay(page: Page, relay: PostfixRelay, *, password: str) -> None:
    """Fill SMTP Server Information with the relay's STARTTLS port, through the form."""
    open_administration(page, "Company")
    page.get_by_role("link", name="Edit", exact=True).click()
    page.get_by_label("SMTP Server Address").fill(relay.host)
    page.get_by_label("SMTP Communication Port").fill(str(relay.starttls_port))
    page.get_by_label("SMTP Authentication Login").fill(relay.user)
    page.get_by_label("SMTP Authentication Password").fill(password)
    page.get_by_label("SMTP Secure Connection Required").select_option("Y")
    page.get_by_label("Company email address").fill(COMPANY_ADDRESS)
    page.locator("#smtp-form details > summary").click()  # open Advanced
    # The relay's certificate is signed by the tests' own CA, which no system trusts.
    page.get_by_label("Custom CA certificate (PEM)").fill(relay.ca_pem)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("SMTP Server Information saved.")).to_be_visible()


def _check_connection(page: Page) -> None:
    page.get_by_role("button", name="Check connection").click()
    expect(page.locator("#check-result .check-result")).to_be_visible()


def test_check_connection_and_a_test_email_through_the_real_relay(
    admin_page: Page, relay_mailbox: PostfixRelay
) -> None:
    page, relay = admin_page, relay_mailbox
    _configure_the_relay(page, relay, password=relay.password)
    expect(shown(page, "Security")).to_have_text(
        "STARTTLS required, certificate verified against the system CAs and the custom CA; "
        "never plain text"
    )

    _check_connection(page)
    expect(page.locator("#check-result .badge.ok").first).to_have_text("Connection works")
    for key, name in STEP_NAMES.items():
        step = _step(page, key)
        expect(step).to_have_count(1)
        expect(step.locator("strong")).to_have_text(name)
        expect(step).to_have_class(has_class("ok"))
    expect(_step(page, "auth")).to_contain_text(f"Logged in as {relay.user} with PLAIN (encrypted)")
    # MAIL FROM with the company address, then with each active user's (root@example.com).
    senders = _step(page, "mail_from")
    expect(senders.locator("strong")).to_have_text(
        [f"MAIL FROM {COMPANY_ADDRESS}", "MAIL FROM root@example.com"]
    )
    for index in range(2):
        expect(senders.nth(index)).to_have_class(has_class("ok"))
    expect(page.locator("#check-result li.fail")).to_have_count(0)
    assert relay.password not in page.content()

    page.get_by_label("Send a test email to").fill("alice@example.org")
    page.get_by_role("button", name="Send test email").click()
    sent = _step(page, "test_email")
    expect(sent).to_have_class(has_class("ok"))
    expect(sent.locator("strong")).to_have_text("Test email to alice@example.org")
    # Postfix's own reply to the end of data, shown as the server said it.
    expect(sent).to_contain_text("The server accepted the test email for alice@example.org: 250")
    expect(sent).to_contain_text("queued as")
    expect(page.locator("#check-result .badge.ok").first).to_have_text("Test email accepted")

    (delivered,) = relay.wait_for(1)
    assert delivered["To"] == "alice@example.org"
    assert delivered["From"] == COMPANY_ADDRESS
    assert delivered["Subject"] == "Postroom test email"
    assert delivered["X-Original-To"] == "alice@example.org"


def test_a_wrong_password_fails_at_auth_with_advice_in_plain_words(
    admin_page: Page, relay: PostfixRelay
) -> None:
    page = admin_page
    wrong = f"wrong-{secrets.token_urlsafe(9)}"
    _configure_the_relay(page, relay, password=wrong)

    _check_connection(page)
    expect(page.locator("#check-result .badge.bad").first).to_have_text("Problem found")
    for key in ("dns", "tcp", "greeting", "ehlo", "starttls", "ehlo_tls"):
        expect(_step(page, key)).to_have_class(has_class("ok"))
    auth = _step(page, "auth")
    expect(auth).to_have_class(has_class("fail"))
    expect(auth).to_have_attribute("data-code", "wrong_password")
    expect(auth).to_contain_text(
        f"The server rejected the login '{relay.user}': wrong user name or password (535"
    )
    expect(auth.locator(".advice")).to_have_text(
        "What to do: Check the SMTP Authentication Login (often the full email address) and "
        "enter the password again: the field is write-only, so type it and Save."
    )
    # Nothing after a failed login is tried.
    for sender in _step(page, "mail_from").all():
        expect(sender).to_have_class(has_class("skip"))
    html = page.content()
    assert wrong not in html
    assert relay.password not in html
