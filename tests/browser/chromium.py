"""Debian's Chromium, driven by Playwright: where it is and how to launch it here.

Shared by every browser test (tests/browser/conftest.py, and any other test that opens a
browser). Never `playwright install`: it downloads a browser of its own, which fails on a
machine without internet; scripts/test-prereqs installs the system's `chromium` instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright

CHROMIUM = Path("/usr/bin/chromium")
PREREQS_HINT = "run scripts/test-prereqs (make test does)"
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests run as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    # The machine has no internet: without these Chromium keeps trying to reach Google's
    # services (updates, sync, field trials) and fills the logs with refused connections.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def chromium_require() -> None:
    """Fail (never skip) the test when the system Chromium is missing."""
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: {PREREQS_HINT}", pytrace=False)


def chromium_launch(playwright: Playwright) -> Browser:
    chromium_require()
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
    )
