"""Help: the documentation served by the site, with links between pages and to anchors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from tests.accounts.factories import admin_make, user_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client: Client) -> Client:
    client.force_login(user_make("sam"))
    return client


def test_every_document_is_listed_and_readable(staff: Client) -> None:
    index = staff.get("/help/").content.decode()
    names = re.findall(r'href="/help/([a-z-]+)/"', index)
    assert {"users", "webhooks", "security", "smtp-settings"} <= set(names)
    for name in names:
        assert staff.get(f"/help/{name}/").status_code == 200, name


def test_a_page_links_to_other_pages_and_headings_have_their_anchors(staff: Client) -> None:
    html = staff.get("/help/security/").content.decode()
    assert '<h2 id="files-on-disk">Files on disk</h2>' in html
    assert 'href="/help/configuration/"' in html  # written "configuration.md" in the file
    roles = staff.get("/help/users/").content.decode()
    assert '<h2 id="roles">Roles</h2>' in roles and "<table>" in roles


def test_html_in_a_document_is_shown_as_text(
    staff: Client, settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# Page\n\n<script>alert(1)</script>\n")
    settings.BASE_DIR = tmp_path
    html = staff.get("/help/page/").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize("name", ["nope", "../settings", "USERS"])
def test_an_unknown_page_is_404(staff: Client, name: str) -> None:
    assert staff.get(f"/help/{name}/").status_code == 404


def test_the_webhooks_page_and_the_user_form_link_to_help(client: Client) -> None:
    client.force_login(admin_make("ada"))
    assert 'href="/help/webhooks/"' in client.get("/webhooks/").content.decode()
    assert 'href="/help/users/#roles"' in client.get("/users/new/").content.decode()
