"""Company → Domain check in a real browser, against the loopback DNS server: a missing DMARC
record is shown with the record to publish, Copy copies it exactly, and once it is published
"Check again" shows the domain passing."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from postroom.accounts.models import User
from tests.accounts.factories import PASSWORD, user_make
from tests.browser.site import PHONE, PageOpener, log_in, open_administration, screenshot
from tests.domains.support import DOMAIN, GOOD_DMARC, all_good
from tests.support.dns_server import DnsServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MISSING_DMARC = "v=DMARC1; p=none; rua=mailto:info@example.com"


def test_a_missing_dmarc_record_is_shown_copied_and_then_passes(
    admin_page: Page, dns_server: DnsServer
) -> None:
    page = admin_page
    all_good(dns_server)
    dns_server.remove(f"_dmarc.{DOMAIN}")

    open_administration(page, "Company")
    page.get_by_role("navigation", name="Company").get_by_role("link", name="Domain check").click()
    report = page.locator(f"section[data-domain='{DOMAIN}']")
    expect(report.locator(".domain-summary")).to_contain_text(
        "Mail from Postroom will not pass DMARC; it will pass SPF and DKIM."
    )
    dmarc = report.locator("li[data-finding='dmarc']")
    expect(dmarc).to_contain_text("example.com has no DMARC record")
    expect(dmarc.locator(".badge")).to_have_text("problem")
    expect(report.locator("li[data-finding='spf_relay'] .badge")).to_have_text("ok")
    expect(page.locator("li[data-finding='helo'] .badge")).to_have_text("ok")
    screenshot(page, "domain-check")

    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    dmarc.get_by_role("button", name="Copy").first.click()
    assert page.evaluate("navigator.clipboard.readText()") == "_dmarc.example.com"
    dmarc.get_by_role("button", name="Copy").last.click()
    expect(dmarc.get_by_role("button", name="Copied").last).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == MISSING_DMARC

    dns_server.add(f"_dmarc.{DOMAIN}", "TXT", GOOD_DMARC)
    page.get_by_role("link", name="Check again").click()
    expect(report.locator(".domain-summary")).to_contain_text(
        "Mail from Postroom will pass SPF, DKIM and DMARC."
    )
    expect(report.locator(".record-to-publish")).to_have_count(0)


def test_the_domain_check_is_for_administrators_and_fits_a_phone(
    open_page: PageOpener, admin_user: User, dns_server: DnsServer
) -> None:
    all_good(dns_server)
    dns_server.remove(DOMAIN, "MX")
    page = open_page(viewport=PHONE)
    log_in(page, username=admin_user.username, password=PASSWORD)
    page.goto("/company/domains/")
    mx = page.locator("li[data-finding='mx']")
    expect(mx).to_contain_text("example.com has no MX record")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways: {width}px"
    screenshot(page, "domain-check")

    staff = open_page()
    user_make("clerk")
    log_in(staff, username="clerk", password=PASSWORD)
    response = staff.goto("/company/domains/")
    assert response is not None and response.status == 403
