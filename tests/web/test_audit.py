"""The audit log page: newest first, 50 a page, filtered by action, for administrators only."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.test import Client
from django.urls import reverse

from postroom.accounts.models import Role, User
from postroom.audit.services import audit_record
from postroom.company.services import SmtpSettingsInput, company_smtp_update

pytestmark = pytest.mark.django_db

AUDIT_URL = "/audit/"


def make_user(username: str, role: str) -> User:
    return User.objects.create(username=username, role=role)


@pytest.fixture
def admin_web(client: Client) -> Client:
    client.force_login(make_user("ada", Role.ADMINISTRATOR))
    return client


def page(client: Client, url: str = AUDIT_URL) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return unescape(response.content.decode())


def subjects(html: str) -> list[str]:
    """What each entry was about, top to bottom."""
    return re.findall(r'<span class="subject">([^<]*)</span>', html)


def test_the_url_name_is_audit_log() -> None:
    assert reverse("audit_log") == AUDIT_URL


def test_entries_are_listed_newest_first_with_who_and_what(admin_web: Client) -> None:
    admin = User.objects.get(username="ada")
    audit_record(actor=admin, action="user.created", subject="user bob", changes={"role": "staff"})
    audit_record(
        actor=None,
        action="user.updated",
        subject="user bob",
        changes={"role": {"from": "staff", "to": "marketer"}},
    )
    html = page(admin_web)
    assert subjects(html) == ["user bob", "user bob"]
    first, second = html.index("changed a user:"), html.index("created a user:")
    assert first < second
    assert "<strong>system</strong> changed a user" in html
    assert "<strong>ada</strong> created a user" in html
    assert '<span class="muted">role:</span> staff → marketer' in html
    when = r'<time datetime="\d{4}-\d\d-\d\dT[^"]+">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d</time>'
    assert re.search(when, html)


def test_an_smtp_change_reads_as_field_old_and_new_and_secrets_only_as_set(
    admin_web: Client,
) -> None:
    company_smtp_update(
        actor=User.objects.get(username="ada"),
        values=SmtpSettingsInput(
            smtp_host="smtp.gmail.com", smtp_port=587, smtp_password="Audit-Plaintext-3b7e"
        ),
    )
    html = page(admin_web)
    assert "company.smtp.updated" in html and "SMTP Server Information" in html
    assert "SMTP Server Address:</span> (empty) → smtp.gmail.com" in html
    assert "SMTP Communication Port:</span> (empty) → 587" in html
    assert "SMTP Authentication Password:</span> set (the value is never recorded)" in html
    assert "Audit-Plaintext-3b7e" not in html and "gAAAAA" not in html


def test_fifty_entries_a_page(admin_web: Client) -> None:
    for number in range(120):
        audit_record(actor=None, action="test.step", subject=f"item {number:03}", changes={})
    first = page(admin_web)
    assert len(subjects(first)) == 50
    assert subjects(first)[0] == "item 119" and subjects(first)[-1] == "item 070"
    assert "Page 1 of 3 · 120 entries" in first
    assert 'href="?page=2" rel="next">Older</a>' in first
    last = page(admin_web, AUDIT_URL + "?page=3")
    assert subjects(last)[0] == "item 019" and subjects(last)[-1] == "item 000"
    assert len(subjects(last)) == 20
    assert 'href="?page=2" rel="prev">Newer</a>' in last
    assert subjects(page(admin_web, AUDIT_URL + "?page=999")) == subjects(last)  # clamps


def test_the_list_filters_by_action_and_keeps_the_filter_across_pages(admin_web: Client) -> None:
    for number in range(60):
        audit_record(actor=None, action="user.updated", subject=f"user {number}", changes={})
    audit_record(
        actor=None, action="company.smtp.updated", subject="SMTP Server Information", changes={}
    )
    html = page(admin_web, AUDIT_URL + "?action=company.smtp.updated")
    assert subjects(html) == ["SMTP Server Information"]
    assert '<option value="company.smtp.updated" selected>Changed SMTP Server Information' in html
    filtered = page(admin_web, AUDIT_URL + "?action=user.updated")
    assert len(subjects(filtered)) == 50 and "SMTP Server Information" not in subjects(filtered)
    assert 'href="?action=user.updated&page=2"' in filtered  # unescaped by page()


def test_an_unknown_action_shows_everything(admin_web: Client) -> None:
    audit_record(actor=None, action="user.created", subject="user bob", changes={})
    assert subjects(page(admin_web, AUDIT_URL + "?action=<script>")) == ["user bob"]


def test_an_empty_log_says_so(admin_web: Client) -> None:
    assert "Nothing recorded yet." in page(admin_web)


@pytest.mark.parametrize("role", [Role.STAFF, Role.MARKETER])
def test_only_administrators_may_read_the_audit_log(client: Client, role: str) -> None:
    client.force_login(make_user("someone", role))
    assert client.get(AUDIT_URL).status_code == 403


def test_anonymous_visitors_are_sent_to_log_in(client: Client) -> None:
    response = client.get(AUDIT_URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")
