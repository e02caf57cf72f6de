"""/metrics: off without a token, the bearer token required, and the outbox's figures right."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings

from postroom.mail.addresses import parse_address
from postroom.mail.message import OutgoingEmail
from postroom.outbox.bulk import bulk_enqueue, bulk_template_store
from postroom.outbox.enqueue import message_enqueue
from postroom.outbox.holds import bulk_hold
from postroom.outbox.models import Lane, Message, ServerPause, Source
from postroom.outbox.pauses import server_pause
from tests.ops.deployment import MetricKey, metric_samples
from tests.outbox.message_factories import message_queue
from tests.outbox.worker_harness import company_smtp_at, enqueue, message_finished, running_worker
from tests.support.smtpd import ScriptedSmtpServer, SmtpdScript

pytestmark = pytest.mark.django_db

TOKEN = "f" * 64
HOUR = 3600.0


@pytest.fixture
def token(settings: Settings) -> str:
    settings.POSTROOM_METRICS_TOKEN = TOKEN
    return TOKEN


def scrape(client: Client, **headers: str) -> dict[MetricKey, float]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}", **headers})
    assert response.status_code == 200, response.content
    return metric_samples(response.content.decode())


def key(name: str, **labels: str) -> MetricKey:
    return (f"postroom_outbox_{name}", tuple(sorted(labels.items())))


def test_metrics_are_off_without_a_token(client: Client, settings: Settings) -> None:
    settings.POSTROOM_METRICS_TOKEN = ""
    response = client.get("/metrics", headers={"Authorization": "Bearer "})
    assert response.status_code == 404
    assert b"POSTROOM_METRICS_TOKEN" in response.content


@pytest.mark.parametrize("authorization", ["", "Bearer " + "e" * 64, f"Basic {TOKEN}"])
def test_metrics_without_the_token_are_refused(
    client: Client, token: str, authorization: str
) -> None:
    response = client.get("/metrics", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"postroom_outbox" not in response.content


def test_metrics_with_the_token_are_in_the_prometheus_text_format(
    client: Client, token: str
) -> None:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "no-store" in response["Cache-Control"]
    assert b"# TYPE postroom_outbox_messages_accepted_total counter" in response.content


def test_a_scraper_asking_for_openmetrics_gets_it_with_the_counters_start(
    client: Client, token: str
) -> None:
    response = client.get(
        "/metrics",
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/openmetrics-text; version=1.0.0",
        },
    )
    assert response["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert response.content.endswith(b"# EOF\n")
    assert b"postroom_outbox_delivery_attempts_created{" in response.content


def test_the_queue_by_lane_and_status_counts_held_and_scheduled_mail(
    client: Client, token: str
) -> None:
    message_queue()
    message_queue()
    scheduled = enqueue("later@example.net")
    Message.objects.filter(pk=scheduled.pk).update(
        not_before_at=timezone.now() + dt.timedelta(days=1)
    )
    campaign_queue(held=True)

    samples = scrape(client)

    assert samples[key("queue_messages", lane="transactional", status="queued")] == 3
    assert samples[key("queue_messages", lane="bulk", status="queued")] == 1
    assert samples[key("queue_messages", lane="bulk", status="deferred")] == 0
    assert samples[key("held_messages")] == 1
    assert samples[key("messages_accepted_total", lane="transactional", source="api")] == 3
    assert samples[key("messages_accepted_total", lane="bulk", source="campaign")] == 1
    assert samples[key("messages_accepted_total", lane="bulk", source="smtp")] == 0


def test_the_oldest_waiting_leaves_out_held_and_scheduled_mail(client: Client, token: str) -> None:
    now = timezone.now()
    waiting = message_queue()
    Message.objects.filter(pk=waiting.pk).update(created_at=now - dt.timedelta(hours=2))
    scheduled = enqueue("later@example.net")
    Message.objects.filter(pk=scheduled.pk).update(
        created_at=now - dt.timedelta(days=3), not_before_at=now + dt.timedelta(days=1)
    )
    held = campaign_queue(held=True)
    Message.objects.filter(pk=held.pk).update(created_at=now - dt.timedelta(days=3))

    samples = scrape(client)

    oldest = samples[key("oldest_queued_age_seconds", lane="transactional")]
    assert 2 * HOUR <= oldest < 3 * 24 * HOUR
    assert samples[key("oldest_queued_age_seconds", lane="bulk")] == 0


def test_due_wait_is_how_long_the_longest_due_message_has_waited(
    client: Client, token: str
) -> None:
    due = message_queue()
    Message.objects.filter(pk=due.pk).update(
        next_attempt_at=timezone.now() - dt.timedelta(minutes=10)
    )
    retry_later = message_queue(lane=Lane.BULK, source=Source.API)
    Message.objects.filter(pk=retry_later.pk).update(
        status="deferred", next_attempt_at=timezone.now() + dt.timedelta(minutes=10)
    )

    samples = scrape(client)

    assert samples[key("due_wait_seconds", lane="transactional")] >= 600
    assert samples[key("due_wait_seconds", lane="bulk")] == 0
    assert samples[key("queue_messages", lane="bulk", status="deferred")] == 1


def test_paused_servers_and_how_long_the_oldest_pause_lasts(client: Client, token: str) -> None:
    assert scrape(client)[key("paused_servers")] == 0
    server_pause(server="smtp.example.com:587", code=535, reason="The password was refused.")
    server_pause(server="alice@example.com at smtp.office365.com:587", code=535, reason="x")
    ServerPause.objects.filter(server="smtp.example.com:587").update(
        paused_at=timezone.now() - dt.timedelta(hours=1)
    )

    samples = scrape(client)

    assert samples[key("paused_servers")] == 2
    assert samples[key("longest_pause_seconds")] >= HOUR
    assert not any("office365" in str(labels) for _, labels in samples)  # no addresses


@pytest.mark.django_db(transaction=True)
def test_delivery_attempts_are_counted_by_how_the_server_answered(
    client: Client, token: str
) -> None:
    refusal = "550 5.1.1 <gone@example.net>: Recipient address rejected: no such user"
    with ScriptedSmtpServer(SmtpdScript(recipient_replies={"gone@example.net": refusal})) as server:
        company_smtp_at(server.port)
        message = enqueue("here@example.net", "gone@example.net")
        with running_worker():
            message_finished(message)

    samples = scrape(client)

    assert samples[key("delivery_attempts_total", classification="success")] == 1
    assert samples[key("delivery_attempts_total", classification="permanent")] == 1
    assert samples[key("delivery_attempts_total", classification="temporary")] == 0
    assert samples[key("queue_messages", lane="transactional", status="queued")] == 0


def campaign_queue(*, held: bool) -> Message:
    """One bulk message of a campaign's template; held as a paused campaign holds it."""
    template = bulk_template_store(
        from_=parse_address("Acme News <news@example.com>"),
        subject="Our news",
        text="Hello {{ first_name }}.\n",
        html=None,
    )
    recipient = (parse_address("member@example.net"), {"first_name": "Ann"})
    bulk_enqueue(template=template, recipients=[recipient], source=Source.CAMPAIGN)
    if held:
        bulk_hold(template_id=template.pk)
    return Message.objects.get(bulk_template=template)


def outgoing(to: str) -> OutgoingEmail:
    return OutgoingEmail(
        from_=parse_address("Alice <alice@example.com>"),
        to=[parse_address(to)],
        subject="Hello",
        text="Hello.\n",
    )


def test_a_message_queued_through_the_service_is_accepted_once(client: Client, token: str) -> None:
    message_enqueue(email=outgoing("bob@example.net"), source=Source.COMPOSE)
    message_enqueue(
        email=outgoing("bob@example.net"), source=Source.COMPOSE, idempotency_key="once"
    )
    message_enqueue(
        email=outgoing("bob@example.net"), source=Source.COMPOSE, idempotency_key="once"
    )
    samples = scrape(client)
    assert samples[key("messages_accepted_total", lane="transactional", source="compose")] == 2
