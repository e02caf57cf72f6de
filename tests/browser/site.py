"""What the browser tests do on Postroom's pages, named as a person would say it."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Locator, Page, ViewportSize, expect

LAPTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}  # an iPhone 12 to 15 in CSS pixels
SMALL_LAPTOP: ViewportSize = {"width": 1366, "height": 768}  # the most common laptop screen

# Screenshots of the pages as people see them, kept after the run for a person to look at;
# `make test` prints where.
SCREENSHOTS = Path(os.environ.get("POSTROOM_TEST_SCREENSHOTS", "test-screenshots")).resolve()

# The `open_page` fixture: open_page(viewport=PHONE) gives a page in a fresh browser context.
PageOpener = Callable[..., Page]


def log_in(page: Page, *, username: str, password: str) -> None:
    """Log in through the login form and land on the dashboard."""
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def log_in_first_time(
    page: Page, *, username: str, one_time_password: str, new_password: str
) -> None:
    """Log in with a one-time password, choose one's own as asked, and reach the dashboard."""
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(one_time_password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Choose your own password")).to_be_visible()
    page.get_by_label("Old password").fill(one_time_password)
    # Not "New password confirmation", the next field (the label ends in a "*" when required).
    page.get_by_label(re.compile(r"^New password\W*$")).fill(new_password)
    page.get_by_label("New password confirmation").fill(new_password)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("heading", name="Password changed")).to_be_visible()
    page.get_by_role("link", name="Go to the dashboard").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def screenshot(page: Page, name: str) -> Path:
    """Save what `page` shows now as SCREENSHOTS/<name>-<width>.png, the whole page."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"] if page.viewport_size else 0
    path = SCREENSHOTS / f"{name}-{width}.png"
    page.screenshot(path=path, full_page=True)
    return path


def main_nav(page: Page) -> Locator:
    return page.get_by_role("navigation", name="Main")


def open_administration(page: Page, section: str) -> None:
    """Follow the main menu's one "Administration" entry, then the section's tab."""
    main_nav(page).get_by_role("link", name="Administration").click()
    page.get_by_role("navigation", name="Administration").get_by_role("link", name=section).click()


def nav_names(page: Page) -> list[str]:
    return [name.strip() for name in main_nav(page).get_by_role("link").all_inner_texts()]


def shown(page: Page, label: str) -> Locator:
    """The value next to `label` in a read-only list (<dl class="view">)."""
    return page.locator(
        f"xpath=//dl[contains(@class, 'view')]/dt[normalize-space()='{label}']"
        "/following-sibling::dd[1]"
    ).first


def field(page: Page, name: str) -> Locator:
    """A form field's block: its label, input, help text and errors."""
    return page.locator("div.field").filter(has=page.locator(f"[name='{name}']"))


def field_errors(page: Page, name: str) -> Locator:
    return field(page, name).locator(".field-error")


def has_class(name: str) -> re.Pattern[str]:
    return re.compile(rf"(^|\s){re.escape(name)}(\s|$)")
