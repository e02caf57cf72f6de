"""Mail delivered to the sandbox capture is "captured", never "sent" (issue 8 §2): in the
Outbox (with a link to the captured copy), the API, the contact's history and the dashboard,
which does not count it as delivered."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from postroom.contacts.services import contact_create
from postroom.inbox.models import CapturedMessage
from postroom.inbox.server import CaptureServer
from postroom.mail.addresses import parse_address
from postroom.mail.message import OutgoingEmail
from postroom.outbox.enqueue import message_enqueue
from postroom.outbox.models import (
    Event,
    EventKind,
    MessageStatus,
    RecipientStatus,
    Source,
)
from tests.accounts.factories import admin_make
from tests.outbox.worker_harness import message_finished, running_worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def capture(settings: Settings) -> Iterator[CaptureServer]:
    server = CaptureServer("127.0.0.1", 0)
    server.start()
    settings.POSTROOM_CAPTURE_PORT = server.port
    yield server
    server.stop()


def test_an_invoice_in_sandbox_mode_is_captured_and_never_counted_as_delivered(
    capture: CaptureServer,
) -> None:
    admin = admin_make("ada", email="ada@acme.example")
    contact = contact_create(actor=admin, email="customer@example.net", first_name="Cleo")
    message = message_enqueue(
        email=OutgoingEmail(
            from_=parse_address("Ada <ada@acme.example>"),
            to=[parse_address(contact.email)],
            subject="Invoice 2026-0042",
            text="Your invoice.",
        ),
        source=Source.API,
        sender_user=admin,
    )
    with running_worker():
        message_finished(message)
    assert message.status == MessageStatus.CAPTURED
    assert message.recipients.get().status == RecipientStatus.CAPTURED
    assert message.recipients.get().sent_at is None
    assert Event.objects.filter(message=message, kind=EventKind.MESSAGE_CAPTURED).exists()
    assert not Event.objects.filter(message=message, kind=EventKind.MESSAGE_SENT).exists()

    client = Client()
    client.force_login(admin)
    page = client.get(reverse("outbox_message", args=[message.pk])).content.decode()
    copy = CapturedMessage.objects.get(outbox_message=message)
    assert "Captured, not sent" in page
    assert reverse("inbox_message", args=[copy.pk]) in page
    history = client.get(reverse("contact_detail", args=[contact.pk])).content.decode()
    history = history[history.index('id="history-title"') :]
    assert "Captured (sandbox)" in history and ">Sent<" not in history
    dashboard = client.get(reverse("dashboard")).content.decode()
    assert '<span class="stat-value">0</span><span class="stat-label">delivered today' in dashboard
    assert "captured today, not sent (sandbox)" in dashboard

    from postroom.accounts.api_keys import api_key_create
    from postroom.accounts.models import ApiScope
    from tests.api.conftest import ApiClient

    _, key = api_key_create(actor=admin, name="ERP", scopes=[ApiScope.READ])
    answer = ApiClient(key).get(f"/api/v1/messages/{message.pk}").json()
    assert answer["status"] == "captured"
    assert answer["recipients"][0]["status"] == "captured"


def test_queued_mail_is_held_in_the_api_while_sending_is_paused() -> None:
    from postroom.accounts.api_keys import api_key_create
    from postroom.accounts.models import ApiScope
    from postroom.outbox.pauses import server_pause
    from tests.api.conftest import ApiClient
    from tests.outbox.message_factories import message_queue

    admin = admin_make("ada", email="ada@acme.example")
    message = message_queue()
    _, key = api_key_create(actor=admin, name="ERP", scopes=[ApiScope.READ])
    api = ApiClient(key)
    assert api.get(f"/api/v1/messages/{message.pk}").json()["status"] == "queued"
    server_pause(server="smtp.acme.example:587", code=535, reason="the password was refused.")
    assert api.get(f"/api/v1/messages/{message.pk}").json()["status"] == "held"
    listed = api.get("/api/v1/messages").json()["items"]
    assert [item["status"] for item in listed] == ["held"]
