"""The first week's rough edges (issue 8 §7), as a person meets them on a laptop and a phone:
the phone menu and filters fold away, one-time secrets sit on one line with a Copy button,
help and error pages are in the site's layout. Each test saves screenshots (tests/browser/
site.py SCREENSHOTS) for a person to look at."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from postroom.accounts.models import User
from tests.accounts.factories import PASSWORD
from tests.browser.site import (
    PHONE,
    SMALL_LAPTOP,
    PageOpener,
    log_in,
    main_nav,
    screenshot,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def logged_in(open_page: PageOpener, user: User, **viewport: object) -> Page:
    page = open_page(**viewport)
    log_in(page, username=user.username, password=PASSWORD)
    return page


def test_on_a_phone_the_menu_folds_behind_one_button(
    open_page: PageOpener, admin_user: User
) -> None:
    page = logged_in(open_page, admin_user, viewport=PHONE)
    users_link = main_nav(page).get_by_role("link", name="Administration")
    expect(users_link).to_be_hidden()
    menu = page.get_by_role("button", name="Menu")
    header_height = page.locator("header.topbar").bounding_box()["height"]  # type: ignore[index]
    assert header_height < 80, "the header is one line, not three"
    screenshot(page, "dashboard-phone-menu-closed")

    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(users_link).to_be_visible()
    screenshot(page, "dashboard-phone-menu-open")
    users_link.click()
    expect(page.get_by_role("heading", name="Users")).to_be_visible()


def test_on_a_phone_filters_fold_away_until_one_is_set(
    open_page: PageOpener, admin_user: User
) -> None:
    page = logged_in(open_page, admin_user, viewport=PHONE)
    page.goto("/users/")
    filters = page.locator("details.filters-box")
    expect(filters).not_to_have_attribute("open", "")
    expect(page.get_by_label("Search")).to_be_hidden()
    table_top = page.get_by_role("table").bounding_box()["y"]  # type: ignore[index]
    assert table_top < PHONE["height"], "the list starts on the first screen"
    screenshot(page, "users-phone-filters-folded")

    page.goto("/users/?q=root")
    expect(page.locator("details.filters-box")).to_have_attribute("open", "")
    expect(page.get_by_label("Search")).to_have_value("root")


def test_a_one_time_password_is_on_one_line_and_copied_with_one_click(
    open_page: PageOpener, admin_user: User
) -> None:
    page = logged_in(open_page, admin_user, viewport=SMALL_LAPTOP)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto("/users/new/")
    page.get_by_label("Login").fill("sam")
    page.get_by_role("button", name="Create user").click()
    password = page.locator("#one-time-password")
    line_height = float(password.evaluate("el => parseFloat(getComputedStyle(el).lineHeight)"))
    assert password.bounding_box()["height"] < 2 * line_height  # type: ignore[index]
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == password.inner_text().strip()
    screenshot(page, "one-time-password")


def test_an_api_key_is_copied_with_one_click(open_page: PageOpener, admin_user: User) -> None:
    page = logged_in(open_page, admin_user, viewport=SMALL_LAPTOP)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto("/api-keys/new/")
    page.get_by_label("Name").fill("ERP")
    page.get_by_role("button", name="Create key").click()
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    key = page.locator("#api-key").inner_text().strip()
    assert key.startswith("pr_")
    assert page.evaluate("navigator.clipboard.readText()") == key
    screenshot(page, "api-key-created")


def test_help_the_roles_and_a_missing_page_are_in_the_sites_layout(
    open_page: PageOpener, admin_user: User
) -> None:
    for viewport in (SMALL_LAPTOP, PHONE):
        page = logged_in(open_page, admin_user, viewport=viewport)
        page.get_by_role("link", name="Help").click()
        expect(page.get_by_role("heading", name="Help")).to_be_visible()
        page.locator("#main").get_by_role("link", name="Users").click()
        expect(page.locator("#roles")).to_have_text("Roles")
        screenshot(page, "help-users")
        page.goto("/outbox/999999/")
        expect(page.get_by_role("heading", name="Not found")).to_be_visible()
        expect(page.get_by_role("link", name="Back to the dashboard")).to_be_visible()
        screenshot(page, "not-found")
        page.goto("/audit/")
        expect(page.get_by_role("columnheader", name="What happened")).to_be_visible()
        screenshot(page, "audit-log")
