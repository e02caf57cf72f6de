"""An administrator's first report, in Chromium, against a real PostgreSQL as the ERP and the
real Postfix relay: connect the database (Test connection says what it reached), write a
report with a parameter and a chart, preview it, schedule it, press Run now, and see the run
in the history as mailed and sent, while the relay holds the mail with its file.
Screenshots at 1366×768."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from postroom.accounts.models import User
from postroom.company.models import SendAsPolicy
from postroom.reports.models import ReportRun
from tests.accounts.factories import PASSWORD
from tests.browser.site import SMALL_LAPTOP, PageOpener, log_in, main_nav, screenshot
from tests.outbox.worker_harness import company_on_relay
from tests.reports.databases import ExternalDatabase, postgres_source  # noqa: F401 - a fixture
from tests.reports.test_relay import running_background
from tests.support.relay import PostfixRelay

pytestmark = [pytest.mark.browser, pytest.mark.relay, pytest.mark.django_db(transaction=True)]

SQL = (
    "SELECT region, SUM(amount) AS total, COUNT(*) AS sales FROM sales\n"
    "WHERE day >= :period_start AND day < :period_end\nGROUP BY region ORDER BY region"
)


def fill(page: Page, name: str, value: str) -> None:
    page.locator(f"[name='{name}']").fill(value)


def connect_database(page: Page, database: ExternalDatabase) -> None:
    main_nav(page).get_by_role("link", name="Reports").click()
    page.get_by_role("link", name="Data sources").click()
    page.get_by_role("link", name="Connect a database").click()
    fill(page, "name", "ERP")
    page.locator("[name='kind']").select_option("postgresql")
    fill(page, "host", database.host)
    fill(page, "port", str(database.port))
    fill(page, "database", database.name)
    fill(page, "username", database.user)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").first).to_contain_text(
        "ERP is saved. Test connection: Connected to"
    )
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#check-1, [id^='check-']").first).to_contain_text(
        "read in a read-only transaction"
    )


def write_report(page: Page) -> None:
    page.get_by_role("link", name="Reports", exact=True).last.click()
    page.get_by_role("link", name="New report").click()
    fill(page, "name", "Sales by region")
    page.locator("[name='source']").select_option(label="ERP")
    fill(page, "sql", SQL)
    fill(page, "parameters", "period period 2026-05-01..2026-05-31")
    page.locator("[name='format']").select_option("csv")
    page.locator("[name='chart']").select_option("bar")
    fill(page, "chart_label_column", "region")
    fill(page, "chart_value_columns", "total, sales")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="Sales by region")).to_be_visible()


def test_an_administrator_connects_writes_previews_schedules_and_runs_a_report(
    open_page: PageOpener,
    admin_user: User,
    relay_mailbox: PostfixRelay,
    postgres_source: ExternalDatabase,  # noqa: F811
) -> None:
    company_on_relay(relay_mailbox, port=relay_mailbox.starttls_port, policy=SendAsPolicy.AUTO)
    page = open_page(viewport=SMALL_LAPTOP)
    log_in(page, username=admin_user.username, password=PASSWORD)
    connect_database(page, postgres_source)
    screenshot(page, "reports-sources")
    write_report(page)

    page.get_by_role("link", name="Preview").click()
    preview = page.locator("#preview")
    expect(preview.get_by_role("columnheader", name="total")).to_be_visible()
    expect(preview.get_by_role("row", name="North 162.75 2")).to_be_visible()
    expect(preview.locator("svg rect")).to_have_count(4)  # 2 regions × 2 columns
    expect(preview).to_contain_text("1–31 May 2026")
    screenshot(page, "reports-preview")

    page.get_by_role("link", name="Schedule it").first.click()
    page.locator("[name='frequency']").select_option("weekdays")
    fill(page, "time_of_day", "07:00")
    page.locator("[name='time_zone']").select_option("Europe/Berlin")
    fill(page, "recipient_addresses", "Boss <boss@example.net>")
    fill(page, "subject", "{{ report.name }}: {{ run.period }}")
    page.get_by_role("button", name="Save schedule").click()
    expect(
        page.get_by_role("heading", name="Monday to Friday at 07:00 (Europe/Berlin)")
    ).to_be_visible()

    with running_background():
        page.get_by_role("button", name="Run now").click()
        history = page.locator("#runs")
        expect(history.get_by_text("Mailed")).to_be_visible(timeout=30_000)
        expect(history.get_by_text("Sent", exact=True)).to_be_visible(timeout=30_000)
        [mail] = relay_mailbox.wait_for(1, timeout=30)
    screenshot(page, "reports-history")
    assert mail["Subject"] == "Sales by region: 1–31 May 2026"
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_filename().startswith("sales-by-region-")
    data = attachment.get_payload(decode=True).decode("utf-8-sig")
    assert data.splitlines()[:3] == ["region,total,sales", "North,162.75,2", "South,80.00,1"]
    run = ReportRun.objects.get()
    expect(history).to_contain_text(f"{run.pk} Run now")
