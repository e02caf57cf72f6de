"""User Master in a real browser: a user without an address is flagged; staff see no
administration and are refused it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from postroom.accounts.models import Role, User
from tests.browser.site import (
    PageOpener,
    log_in,
    log_in_first_time,
    nav_names,
    open_administration,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ADMINISTRATION = ["Administration", "Company", "Users", "Audit log"]


def test_an_administrator_creates_a_user_without_an_address_and_sees_the_flag(
    admin_page: Page, open_page: PageOpener
) -> None:
    page = admin_page
    open_administration(page, "Users")
    expect(page.get_by_role("heading", name="Users")).to_be_visible()
    page.get_by_role("link", name="New user").click()
    page.get_by_label("Login").fill("sam")
    page.get_by_label("Display name").fill("Sam Sales")
    page.get_by_label("Role").select_option(label="Staff")
    # No email address, no password: Postroom generates one and shows it once.
    page.get_by_role("button", name="Create user").click()

    expect(page.get_by_role("heading", name="User sam was created")).to_be_visible()
    one_time_password = page.locator("#one-time-password").inner_text().strip()
    assert len(one_time_password) >= 20
    page.get_by_role("link", name="Done").click()

    row = page.get_by_role("row").filter(has_text="Sam Sales")
    expect(row.locator(".badge.warn")).to_have_text("no email address")
    expect(row).to_contain_text("Staff")
    root_row = page.get_by_role("row").filter(has_text="root@example.com")
    expect(root_row.locator(".badge.warn")).to_have_count(0)
    expect(page.get_by_role("status")).to_contain_text("1 active user without an email address.")
    sam = User.objects.get(username="sam")
    assert (sam.email, sam.role, sam.is_active) == ("", Role.STAFF, True)

    # The new user logs in with the one-time password, in a browser of their own, and is
    # asked to choose their own password first.
    staff = open_page()
    log_in_first_time(
        staff,
        username="sam",
        one_time_password=one_time_password,
        new_password="tidal-copper-meadow-82",
    )
    expect(staff.get_by_text("Your user has no email address")).to_be_visible()


def test_a_staff_user_sees_no_administration_and_is_refused_it(open_page: PageOpener) -> None:
    User.objects.create_user(
        username="sam", password="tidal-copper-meadow-82", role=Role.STAFF, email="sam@example.com"
    )
    page = open_page()
    log_in(page, username="sam", password="tidal-copper-meadow-82")
    names = nav_names(page)
    assert "Outbox" in names and "Sandbox capture" in names  # no SMTP server yet: captured
    assert not set(ADMINISTRATION) & set(names), names
    expect(page.get_by_role("link", name="SMTP Server Information")).to_have_count(0)

    for path in ("/company/smtp/", "/company/smtp/edit/", "/users/", "/users/new/"):
        response = page.goto(path)
        assert response is not None and response.status == 403, path
        expect(page.get_by_text(re.compile("Forbidden"))).to_be_visible()
        expect(page.get_by_label("SMTP Server Address")).to_have_count(0)
