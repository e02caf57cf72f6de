"""The dashboard: deliveries per day as a chart, the queue, what needs attention."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from postroom.accounts.models import Role, User
from postroom.company.selectors import company_get
from postroom.outbox.models import Message, MessageStatus, RecipientStatus
from postroom.outbox.selectors import DayCount
from postroom.web.views.dashboard import chart_bars
from tests.outbox.worker_harness import enqueue

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client: Client) -> Client:
    user = User.objects.create_user(username="root", password="x", role=Role.ADMINISTRATOR)
    client.force_login(user)
    return client


def test_the_dashboard_counts_todays_deliveries_and_the_queue(admin_client: Client) -> None:
    delivered = enqueue("a@example.net", "b@example.net")
    delivered.recipients.update(status=RecipientStatus.SENT, updated_at=timezone.now())
    Message.objects.filter(pk=delivered.pk).update(status=MessageStatus.SENT)
    enqueue("waiting@example.net")
    failed = enqueue("gone@example.net")
    failed.recipients.update(status=RecipientStatus.FAILED)
    Message.objects.filter(pk=failed.pk).update(
        status=MessageStatus.FAILED, finished_at=timezone.now()
    )

    html = admin_client.get("/").content.decode()

    assert '<span class="stat-value">2</span><span class="stat-label">delivered today' in html
    assert '<span class="stat-value">1</span><span class="stat-label">in the queue' in html
    assert '<span class="stat-value">1</span><span class="stat-label">failed in the last 7' in html
    assert "2 delivered, 1 failed" in html  # today's bar title


def test_without_an_smtp_server_every_page_says_mail_is_captured(admin_client: Client) -> None:
    assert "Sandbox mode:" in admin_client.get("/outbox/").content.decode()
    company = company_get()
    company.smtp_host, company.smtp_port = "smtp.example.com", 587
    company.save()
    assert "Sandbox mode:" not in admin_client.get("/outbox/").content.decode()


def test_bars_are_scaled_to_the_busiest_day() -> None:
    import datetime as dt

    days = [
        DayCount(dt.date(2026, 11, d), sent, failed)
        for d, sent, failed in [(1, 10, 0), (2, 5, 5), (3, 0, 0)]
    ]
    first, second, third = chart_bars(days, busiest=10)
    assert first.sent_height == 110 and first.failed_height == 0
    assert second.sent_height == 55 and second.failed_height == 55
    assert second.failed_y == 120 - 110
    assert third.sent_height == third.failed_height == 0
