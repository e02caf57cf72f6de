"""Company → SMTP Server Information in a real browser: view, Edit, fill, Save, errors.

The seed page's own steps (Company → SMTP Server Information tab → Edit → fill → Save), as a
person does them, with what they then see; and the passwords never reaching the browser.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, ViewportSize, expect

from postroom.accounts.models import User
from postroom.audit.models import AuditEntry
from postroom.company.selectors import company_get
from postroom.company.services import SMTP_UPDATED
from postroom.core.secrets import secret_decrypt
from tests.accounts.factories import PASSWORD
from tests.browser.site import (
    LAPTOP,
    PHONE,
    PageOpener,
    field_errors,
    has_class,
    log_in,
    open_administration,
    shown,
)
from tests.support.smtpd import closed_port

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _unique(prefix: str) -> str:
    # Unique per run, so searching a page for it can only find this test's own value.
    return f"{prefix}-{secrets.token_urlsafe(9)}"


def _open_smtp_tab(page: Page) -> None:
    open_administration(page, "Company")
    tabs = page.get_by_role("navigation", name="Company")
    expect(tabs.get_by_role("link", name="SMTP Server Information")).to_have_attribute(
        "aria-current", "page"
    )
    expect(page.get_by_role("heading", name="SMTP Server Information")).to_be_visible()


def _click_edit(page: Page) -> None:
    page.get_by_role("link", name="Edit", exact=True).click()
    expect(page.get_by_role("heading", name="Edit SMTP Server Information")).to_be_visible()


def _save(page: Page) -> None:
    page.get_by_role("button", name="Save").click()


def test_an_administrator_fills_the_seed_fields_and_sees_them_saved(admin_page: Page) -> None:
    page = admin_page
    smtp_password, epod_password = _unique("smtp-pw"), _unique("epod-pw")

    _open_smtp_tab(page)
    expect(page.get_by_text("No SMTP server is set yet.")).to_be_visible()
    _click_edit(page)
    page.get_by_label("SMTP Server Address").fill("smtp.example.net")
    page.get_by_label("SMTP Communication Port").fill("587")
    page.get_by_label("SMTP Authentication Login").fill("mailer@example.net")
    page.get_by_label("SMTP Authentication Password").fill(smtp_password)
    page.get_by_label("SMTP Secure Connection Required").select_option("Y")
    page.get_by_label("ePOD API Username").fill("epod-user")
    page.get_by_label("ePOD API Password").fill(epod_password)
    page.get_by_label("Company email address").fill("info@example.net")
    page.get_by_label("Company sender name").fill("Acme Ltd")
    _save(page)

    expect(page.get_by_text("SMTP Server Information saved.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/company/smtp/$"))
    expect(shown(page, "SMTP Server Address")).to_have_text("smtp.example.net")
    expect(shown(page, "SMTP Communication Port")).to_have_text("587")
    expect(shown(page, "SMTP Authentication Login")).to_have_text("mailer@example.net")
    expect(shown(page, "SMTP Authentication Password")).to_have_text("set")
    expect(shown(page, "SMTP Secure Connection Required")).to_have_text("Y")
    expect(shown(page, "ePOD API Username")).to_have_text("epod-user")
    expect(shown(page, "ePOD API Password")).to_have_text("set")
    expect(shown(page, "Company email address")).to_have_text("info@example.net")
    expect(shown(page, "Company sender name")).to_have_text("Acme Ltd")
    expect(shown(page, "Security")).to_contain_text("STARTTLS required")
    for secret in (smtp_password, epod_password):
        assert secret not in page.content(), "a password reached the view page"

    # Edit again: the form says the passwords are set and never carries them.
    _click_edit(page)
    expect(page.get_by_label("SMTP Server Address")).to_have_value("smtp.example.net")
    expect(page.get_by_label("SMTP Authentication Password")).to_have_value("")
    expect(page.get_by_label("ePOD API Password")).to_have_value("")
    keep_hint = page.get_by_text("Currently set. Leave blank to keep the current password.")
    expect(keep_hint).to_have_count(2)
    for secret in (smtp_password, epod_password):
        assert secret not in page.content(), "a password reached the edit form"

    # Save with the password fields blank: both stay set, with their old values.
    page.get_by_label("Company sender name").fill("Acme Limited")
    _save(page)
    expect(page.get_by_text("SMTP Server Information saved.")).to_be_visible()
    expect(shown(page, "Company sender name")).to_have_text("Acme Limited")
    expect(shown(page, "SMTP Authentication Password")).to_have_text("set")
    expect(shown(page, "ePOD API Password")).to_have_text("set")
    company = company_get()
    assert secret_decrypt(company.smtp_password_encrypted) == smtp_password
    assert secret_decrypt(company.epod_password_encrypted) == epod_password


def test_a_bad_address_and_port_show_errors_next_to_their_fields_and_save_nothing(
    admin_page: Page,
) -> None:
    page = admin_page
    _open_smtp_tab(page)
    _click_edit(page)
    page.get_by_label("SMTP Server Address").fill("smtp://x")
    page.get_by_label("SMTP Communication Port").fill("70000")
    _save(page)

    expect(page.get_by_role("alert").filter(has_text="Some values need correcting")).to_be_visible()
    expect(field_errors(page, "smtp_host")).to_have_text(
        "Enter only the server's name, without “smtp://” or any other prefix: for example "
        "smtp.gmail.com."
    )
    expect(field_errors(page, "smtp_port")).to_have_text(
        "The port must be a whole number from 1 to 65535; mail servers usually listen on 587 "
        "or 465."
    )
    expect(page.locator("div.field.has-error")).to_have_count(2)
    # What was typed stays, to be corrected.
    expect(page.get_by_label("SMTP Server Address")).to_have_value("smtp://x")
    expect(page.get_by_label("SMTP Communication Port")).to_have_value("70000")

    company = company_get()
    assert (company.smtp_host, company.smtp_port) == ("", None)
    assert not AuditEntry.objects.filter(action=SMTP_UPDATED).exists()
    page.get_by_role("link", name="Cancel").click()
    expect(page.get_by_text("No SMTP server is set yet.")).to_be_visible()


def _fits_the_width(page: Page) -> None:
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url} is {overflow}px wider than the screen"


@pytest.fixture
def nothing_listens() -> Iterator[int]:
    """A port held closed for the whole test: one only found free could be another test's
    server by the time the check connects (seen once: "Connected to 127.0.0.1")."""
    with closed_port() as port:
        yield port


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_the_smtp_pages_fit_a_laptop_and_a_phone_screen(
    open_page: PageOpener,
    admin_user: User,
    viewport: ViewportSize,
    tmp_path: Path,
    nothing_listens: int,
) -> None:
    size = "laptop" if viewport == LAPTOP else "phone"
    page = open_page(viewport=viewport)
    log_in(page, username=admin_user.username, password=PASSWORD)
    page.goto("/company/smtp/edit/")
    page.get_by_label("SMTP Server Address").fill("127.0.0.1")
    page.get_by_label("SMTP Communication Port").fill(str(nothing_listens))
    page.get_by_label("SMTP Authentication Login").fill(
        "a.very.long.mailbox.name@subsidiary.example.com"
    )
    page.get_by_label("SMTP Secure Connection Required").select_option("N")
    page.locator("#smtp-form details > summary").click()  # open Advanced
    page.screenshot(path=tmp_path / f"smtp-edit-{size}.png", full_page=True)
    _fits_the_width(page)

    _save(page)
    expect(page.get_by_text("SMTP Server Information saved.")).to_be_visible()
    page.locator("details > summary", has_text="Advanced").click()
    # A failed check shows the longest texts of the page: summary, details and advice.
    page.get_by_role("button", name="Check connection").click()
    expect(page.locator("#check-result li[data-step='tcp']")).to_have_class(has_class("fail"))
    page.screenshot(path=tmp_path / f"smtp-view-{size}.png", full_page=True)
    _fits_the_width(page)
    print(f"screenshots in {tmp_path}")
