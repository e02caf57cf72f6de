"""The recipients' signed tokens and the public URL they point at (no database)."""

from __future__ import annotations

import datetime as dt

import pytest
from pytest_django.fixtures import Settings

from postroom.campaigns.links import LINK_MAX_AGE, LinkError, public_url, token_make, token_read
from postroom.core.errors import ConfigurationError


def test_a_token_names_its_campaign_and_contact_and_keeps_a_year() -> None:
    today = dt.date(2030, 6, 1)
    token = token_make(campaign_id=42, contact_id=123_456, issued_on=today)
    read = token_read(token, today=today + LINK_MAX_AGE)
    assert (read.campaign_id, read.contact_id, read.issued_on) == (42, 123_456, today)
    with pytest.raises(LinkError) as expired:
        token_read(token, today=today + LINK_MAX_AGE + dt.timedelta(days=1))
    assert expired.value.is_expired


@pytest.mark.parametrize("change", [lambda t: t[:-1], lambda t: "1" + t, lambda t: t + "x"])
def test_a_changed_token_is_refused(change: object) -> None:
    token = token_make(campaign_id=1, contact_id=2)
    with pytest.raises(LinkError) as refused:
        token_read(change(token))  # type: ignore[operator]
    assert not refused.value.is_expired


def test_in_production_campaign_links_need_the_public_url(settings: Settings) -> None:
    settings.PRODUCTION, settings.POSTROOM_PUBLIC_URL = True, ""
    with pytest.raises(ConfigurationError, match="POSTROOM_PUBLIC_URL"):
        public_url()
    settings.POSTROOM_PUBLIC_URL = "https://postroom.example.com/"
    assert public_url() == "https://postroom.example.com"


def test_locally_the_links_point_at_the_site_postroom_run_serves(settings: Settings) -> None:
    settings.PRODUCTION, settings.POSTROOM_PUBLIC_URL = False, ""
    settings.POSTROOM_HTTP_HOST, settings.POSTROOM_HTTP_PORT = "127.0.0.1", 8000
    assert public_url() == "http://127.0.0.1:8000"
