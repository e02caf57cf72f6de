"""A marketer builds an audience in the browser: a list filled by a CSV import into it (run
by a real `postroom worker` process), a segment whose count and sample follow the conditions
as they are typed, and an address on the suppression list. Screenshots at 1366 px and phone
size (tests/browser/site.py SCREENSHOTS)."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from subprocess import Popen

import pytest
from playwright.sync_api import Page, expect

from postroom.accounts.models import Role, User
from postroom.contacts import services as contact_services
from tests.accounts.factories import PASSWORD, user_make
from tests.browser.site import PHONE, SMALL_LAPTOP, PageOpener, log_in, main_nav, screenshot
from tests.outbox.worker_harness import worker_process_start

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FAIR_CSV = (
    b"Email,First name,Last name,Tags,Marketing consent\n"
    b"ann@globex.example,Ann,Lee,customer,yes\n"
    b"bob@initech.example,Bob,Stone,customer,no\n"
    b"cleo@umbrella.example,Cleo,Park,prospect,yes\n"
)


@pytest.fixture
def mia() -> User:
    return user_make("mia", role=Role.MARKETER, display_name="Mia Marketer")


@pytest.fixture
def worker() -> Iterator[Popen[bytes]]:
    """`postroom worker` on the test database: it runs the import's jobs."""
    process = worker_process_start("browser-worker")
    yield process
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)


def htmx_settled(page: Page) -> None:
    """Wait until htmx has no request in flight and has settled what it swapped in (its new
    elements listen for changes only then; a person is never that fast)."""
    page.wait_for_function(
        "!document.querySelector('.htmx-request, .htmx-settling, .htmx-swapping')"
    )


def logged_in(open_page: PageOpener, user: User, **viewport: object) -> Page:
    page = open_page(**viewport)
    log_in(page, username=user.username, password=PASSWORD)
    return page


def test_a_marketer_builds_a_list_by_csv_import_and_a_segment_with_a_live_count(
    open_page: PageOpener, mia: User, worker: Popen[bytes]
) -> None:
    contact_services.contact_create(
        actor=None, email="dan@globex.example", first_name="Dan", tags=["customer"]
    )
    page = logged_in(open_page, mia, viewport=SMALL_LAPTOP)

    # A list, filled by importing a file into it.
    main_nav(page).get_by_role("link", name="Audiences").click()
    expect(page.get_by_role("navigation", name="Audiences")).to_be_visible()
    page.get_by_role("link", name="New list").click()
    page.get_by_label("Name").fill("Trade fair 2026")
    page.get_by_role("button", name="Create list").click()
    expect(page.get_by_role("heading", name="Trade fair 2026")).to_be_visible()
    page.get_by_role("link", name="Import CSV into this list").click()
    page.get_by_label("CSV file").set_input_files(
        {"name": "fair.csv", "mimeType": "text/csv", "buffer": FAIR_CSV}
    )
    page.get_by_role("button", name="Upload and map the columns").click()
    page.get_by_role("button", name="Check every row").click()
    page.get_by_role("button", name="Import 3 contacts").click(timeout=60_000)
    expect(page.get_by_role("heading", name="Imported")).to_be_visible(timeout=60_000)
    main_nav(page).get_by_role("link", name="Audiences").click()
    expect(page.get_by_role("row", name=re.compile(r"Trade fair 2026\s+3"))).to_be_visible()
    page.get_by_role("link", name="Trade fair 2026").click()
    expect(page.locator("#member-count")).to_have_text("3 members.")
    screenshot(page, "audience-list")

    # A segment: the count follows what is typed, before anything is saved.
    page.get_by_role("link", name="← Lists").click()
    page.get_by_role("navigation", name="Audiences").get_by_role("link", name="Segments").click()
    page.get_by_role("link", name="New segment").click()
    page.get_by_label("Name").fill("Customers who consented")
    page.get_by_label("Condition 1: value").fill("customer")
    count = page.locator("#segment-count")
    expect(count).to_have_text("3")  # ann, bob and dan
    expect(page.locator("#segment-preview")).to_contain_text("dan@globex.example")
    page.get_by_role("button", name="Add a condition").click()
    expect(page.get_by_label("Condition 2", exact=True)).to_be_visible()
    htmx_settled(page)
    page.get_by_label("Condition 2", exact=True).select_option(label="Consent to marketing")
    expect(page.get_by_label("Condition 2: how")).to_have_value("is_true")
    expect(count).to_have_text("1")  # ann
    expect(page.locator("#segment-preview")).not_to_contain_text("dan@globex.example")
    screenshot(page, "audience-segment-live-count")
    page.get_by_label("Condition 1: value").fill("prospect")
    expect(count).to_have_text("1")  # cleo
    expect(page.locator("#segment-preview")).to_contain_text("cleo@umbrella.example")
    page.get_by_role("button", name="Create segment").click()
    expect(page.get_by_text("Segment Customers who consented was saved.")).to_be_visible()
    expect(page.get_by_label("Condition 1: value")).to_have_value("prospect")

    # An address on the suppression list: the segment still counts cleo, but no campaign
    # would mail her.
    page.get_by_role("navigation", name="Audiences").get_by_role("link", name="Suppression").click()
    adding = page.locator("form", has=page.get_by_role("heading", name="Add an address"))
    adding.get_by_label(re.compile(r"^Address\W*$")).fill("Cleo@Umbrella.example")
    adding.get_by_label("Reason").select_option("unsubscribed")
    adding.get_by_role("button", name="Suppress").click()
    expect(
        page.get_by_role("row", name=re.compile("cleo@umbrella.example.*Unsubscribed", re.I))
    ).to_be_visible()
    screenshot(page, "audience-suppression")
    page.goto("/audiences/segments/")
    page.get_by_role("link", name="Customers who consented").click()
    expect(page.locator("#segment-preview")).to_contain_text(
        "1 contact matches; 0 of them can receive campaigns"
    )

    phone = logged_in(open_page, mia, viewport=PHONE)
    phone.goto("/audiences/segments/")
    phone.get_by_role("link", name="Customers who consented").click()
    expect(phone.locator("#segment-count")).to_have_text("1")
    screenshot(phone, "audience-segment-phone")


def test_staff_have_no_audiences(open_page: PageOpener) -> None:
    sam = user_make("sam", role=Role.STAFF)
    page = logged_in(open_page, sam, viewport=SMALL_LAPTOP)
    expect(main_nav(page).get_by_role("link", name="Contacts")).to_be_visible()
    expect(main_nav(page).get_by_role("link", name="Audiences")).to_have_count(0)
    response = page.goto("/audiences/lists/")
    assert response is not None and response.status == 403
