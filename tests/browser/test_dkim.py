"""Company → DKIM in the browser: an administrator creates a key, copies its record, is told
the record is missing, publishes it (in the test DNS server), checks it and starts signing."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from postroom.company.selectors import company_get
from postroom.dkim.models import DkimKey, KeyState
from postroom.dkim.signing import dkim_signer_load
from tests.support.dns_server import DnsServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_administrator_creates_a_key_checks_its_record_and_starts_signing(
    admin_page: Page, dns_server: DnsServer
) -> None:
    company = company_get()
    company.sender_email = "office@acme.example"
    company.save()
    page = admin_page
    page.goto("/company/")
    page.get_by_role("link", name="DKIM").click()
    domain = page.locator("#domain-acme\\.example")
    expect(domain).to_contain_text("Mail from @acme.example leaves without a DKIM signature.")
    domain.get_by_role("button", name="Create key").click()

    expect(page.get_by_text("publish its DNS record below")).to_be_visible()
    key = DkimKey.objects.get(domain="acme.example")
    expect(page.locator(f"#dkim-name-{key.pk}")).to_have_text(key.record_name)
    value = page.locator(f"#dkim-value-{key.pk}").inner_text()
    assert value == f"v=DKIM1; k=rsa; p={key.public_key}"
    card = page.locator(f"article[data-key='{key.selector}']")
    expect(card.locator("[data-state]")).to_have_text("Waiting for DNS")

    card.get_by_role("button", name="Start signing").click()
    expect(page.locator(".msg-error")).to_have_text(
        f"Not signing yet. No TXT record at {key.record_name} yet: publish the record above; "
        "DNS changes can take up to an hour."
    )

    dns_server.add(key.record_name, "TXT", value)  # what the administrator copied
    card.get_by_role("button", name="Check DNS").click()
    expect(page.locator(".msg-success")).to_have_text(
        f"The TXT record at {key.record_name} is published and matches this key."
    )
    expect(card.locator("[data-state]")).to_have_text("Published and checked")

    card.get_by_role("button", name="Start signing").click()
    expect(page.locator(".msg-success")).to_have_text(
        f"Mail from acme.example is signed with the key {key.selector} from now on."
    )
    expect(card.locator("[data-state]")).to_have_text("Signing")
    expect(domain).to_contain_text(f"Mail from @acme.example is signed with {key.selector}")
    assert DkimKey.objects.get(pk=key.pk).state == KeyState.SIGNING
    assert dkim_signer_load().domains == frozenset({"acme.example"})
