"""Fixtures of the browser tests: Debian's Chromium driving Postroom on a live Django server.

Playwright's sync API runs an asyncio event loop in the test's thread for as long as it is
started, and Django then refuses ORM calls from that thread (SynchronousOnlyOperation),
including pytest-django's own flush after each test. The `chromium` fixture therefore sets
DJANGO_ALLOW_ASYNC_UNSAFE exactly while Playwright runs: one module's tests, never the tests
of other folders that run later in the same session. That is also why these fixtures are
Postroom's own and not pytest-playwright's session-wide `page`.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright
from pytest_django.live_server_helper import LiveServer

from postroom.accounts.models import User
from tests.accounts.factories import PASSWORD, admin_make
from tests.browser.chromium import chromium_launch, chromium_require
from tests.browser.site import LAPTOP, PageOpener, log_in

# Every page here answers in milliseconds; the connection check against the local relay
# in about a second. Playwright's default of 30 s would only make a failure slow to report.
TIMEOUT_MS = 15_000

_CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """One headless Chromium per test module (a launch takes about half a second)."""
    chromium_require()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = chromium_launch(playwright)
            yield browser
            browser.close()


@pytest.fixture
def open_page(
    chromium: Browser,
    live_server: LiveServer,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[PageOpener]:
    """Open a page in a fresh browser context (its own cookies: one person each).

    Relative URLs go to the live server. When the test fails, each page's screenshot is
    saved and its path printed.
    """
    pages: list[Page] = []

    def opener(*, viewport: ViewportSize = LAPTOP) -> Page:
        context = chromium.new_context(viewport=viewport, base_url=live_server.url)
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        pages.append(page)
        return page

    yield opener
    if request.node.stash.get(_CALL_FAILED, False):
        folder = tmp_path_factory.mktemp("failed-" + request.node.name[:60])
        for index, page in enumerate(pages):
            path = folder / f"page-{index}.png"
            page.screenshot(path=path, full_page=True)
            print(f"screenshot of {page.url}: {path}")
    for page in pages:
        page.context.close()


@pytest.fixture
def admin_user() -> User:
    return admin_make("root")


@pytest.fixture
def admin_page(open_page: PageOpener, admin_user: User) -> Page:
    """A laptop-sized page where the administrator `root` is logged in, on the dashboard."""
    page = open_page()
    log_in(page, username=admin_user.username, password=PASSWORD)
    return page
