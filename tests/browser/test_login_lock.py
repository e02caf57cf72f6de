"""Password guessing in a real browser: a person who mistypes too often is told, on the login
page, that logging in is locked and until when; an administrator unlocks it on the Users
page; the first administrator chooses their own password at the first login."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import Page, expect

from postroom.accounts import services
from tests.accounts.factories import PASSWORD, user_make
from tests.browser.site import PageOpener, log_in, log_in_first_time, open_administration

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def mistype(page: Page, *, username: str, times: int) -> None:
    page.goto("/login/")
    for number in range(times):
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(f"wrong-guess-{number}")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Log in to Postroom")).to_be_visible()


def test_a_person_who_mistypes_too_often_is_told_until_when_logging_in_is_locked(
    open_page: PageOpener,
) -> None:
    user_make("sam")
    page = open_page()
    mistype(page, username="sam", times=settings.AXES_FAILURE_LIMIT)

    # Even the right password is refused now, and the page says why and until when.
    page.get_by_label("Username").fill("sam")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    alert = page.locator("#login-locked")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("Too many failed logins for the login name sam.")
    shown_end = alert.locator("time").first
    ends_at = datetime.fromisoformat(str(shown_end.get_attribute("datetime")))
    expected = timezone.now() + settings.AXES_COOLOFF_TIME
    assert abs((ends_at - expected).total_seconds()) < 60
    expect(shown_end).to_have_text(f"{timezone.localtime(ends_at):%H:%M %Z}")
    expect(alert).to_contain_text(
        re.compile(r"is locked until \d\d:\d\d \S+\s+\(in 1[45]\s+minutes\)")
    )
    expect(alert).to_contain_text("ask an administrator to unlock it")
    expect(page.get_by_role("heading", name="Dashboard")).to_have_count(0)


def test_an_administrator_unlocks_a_locked_login_and_its_owner_logs_in(
    admin_page: Page, open_page: PageOpener
) -> None:
    user_make("sam", display_name="Sam Sales")
    person = open_page()
    mistype(person, username="sam", times=settings.AXES_FAILURE_LIMIT)

    open_administration(admin_page, "Users")
    locks = admin_page.get_by_role("region", name="Locked logins")
    row = locks.get_by_role("row").filter(has_text="sam")
    expect(row).to_contain_text(f"{settings.AXES_FAILURE_LIMIT} failed logins")
    row.get_by_role("button", name="Unlock").click()
    expect(admin_page.get_by_role("status")).to_contain_text("Logins as sam are unlocked.")
    expect(admin_page.get_by_role("region", name="Locked logins")).to_have_count(0)

    log_in(person, username="sam", password=PASSWORD)


def test_the_first_administrator_chooses_their_own_password_at_the_first_login(
    open_page: PageOpener,
) -> None:
    made = services.user_ensure_first_admin()
    assert made is not None
    page = open_page()
    log_in_first_time(
        page, username="admin", one_time_password=made[1], new_password="amber-orchard-violin-31"
    )
    open_administration(page, "Users")
    expect(page.get_by_role("heading", name="Users")).to_be_visible()
