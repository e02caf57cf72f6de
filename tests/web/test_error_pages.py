"""404 and 500 pages in the site's own layout, saying what happened and where to go."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

from tests.accounts.factories import user_make

pytestmark = pytest.mark.django_db


def test_a_missing_page_is_a_404_in_the_site_layout() -> None:
    client = Client()
    client.force_login(user_make("sam"))
    response = client.get("/no/such/page/")
    html = response.content.decode()
    assert response.status_code == 404
    assert "postroom.css" in html and 'class="nav"' in html
    assert "There is no such page, or it is not yours to see." in html


@override_settings(ROOT_URLCONF="tests.web.error_urls")
def test_a_failure_is_a_500_in_the_site_layout_that_says_nothing_was_lost() -> None:
    client = Client(raise_request_exception=False)
    client.force_login(user_make("sam"))
    response = client.get("/fail/")
    html = response.content.decode()
    assert response.status_code == 500
    assert "postroom.css" in html
    assert "Nothing you sent was lost" in html
    assert "a bug, for the test" not in html, "no internals on the page"
