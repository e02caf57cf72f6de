"""The SMTP listener in the browser (issue 13): an administrator creates SMTP credentials,
copies the password, a system sends through the listener with swaks (STARTTLS and AUTH), and
the message is in the Outbox with its source."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from postroom.smtpd.server import SmtpListener
from tests.smtpd.conftest import swaks

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def listener(settings: Any) -> Iterator[SmtpListener]:
    server = SmtpListener("127.0.0.1", 0)
    server.start()
    settings.POSTROOM_SMTPD_PORT = server.ports["starttls"]  # what the pages show
    yield server
    server.stop()


def test_an_administrator_creates_credentials_and_a_system_sends_through_them(
    admin_page: Page, listener: SmtpListener
) -> None:
    page = admin_page
    page.goto("/administration/")
    page.get_by_role("link", name="SMTP credentials").first.click()
    expect(page.locator("#smtpd-fingerprint")).to_have_text(
        # The self-signed certificate made at start: 32 bytes as hex pairs.
        re.compile(r"^([0-9A-F]{2}:){31}[0-9A-F]{2}$")
    )
    page.get_by_role("link", name="New SMTP credential").click()
    page.get_by_role("textbox", name="Name", exact=True).fill("ERP invoices")
    page.get_by_label("User name").fill("erp-invoices")
    page.get_by_label("May send as").fill("@acme.example")
    page.get_by_role("button", name="Create credential").click()
    expect(page.get_by_text("Copy the password now")).to_be_visible()
    password = page.locator("#smtp-password").inner_text()
    expect(page.locator("dd").filter(has_text=str(listener.ports["starttls"]))).to_have_count(1)

    listener.refresh_now()
    done = swaks(
        listener.ports["starttls"],
        user="erp-invoices",
        password=password,
        subject="Invoice from the ERP",
    )
    assert done.returncode == 0, done.stdout + done.stderr

    page.get_by_role("link", name="Outbox").first.click()
    page.get_by_role("link", name="Invoice from the ERP").click()
    expect(page.locator("dd").filter(has_text="SMTP listener")).to_contain_text(
        "SMTP credential erp-invoices from 127.0.0.1"
    )
