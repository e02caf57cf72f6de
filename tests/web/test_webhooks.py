"""The Webhooks pages: administrators only, the secret shown once, logs, resend, test event."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.utils import timezone

from postroom.accounts.models import User
from postroom.audit.models import AuditEntry
from postroom.core.secrets import secret_decrypt
from postroom.webhooks.delivery import events_fan_out
from postroom.webhooks.models import Delivery, DeliveryStatus, Endpoint
from postroom.webhooks.services import endpoint_create
from tests.accounts.factories import admin_make, user_make
from tests.webhooks.conftest import dispatch_due, enqueue_message, is_signed_with
from tests.webhooks.receiver import Answer, running_receiver

pytestmark = pytest.mark.django_db

SECRET_RE = re.compile(r'<code class="secret" id="webhook-secret">(whsec_[^<]+)</code>')


@pytest.fixture
def admin() -> User:
    return admin_make("root", email="root@acme.example")


@pytest.fixture
def as_admin(admin: User) -> Client:
    client = Client()
    client.force_login(admin)
    return client


@pytest.fixture
def as_staff() -> Client:
    client = Client()
    client.force_login(user_make("alice", email="alice@acme.example"))
    return client


def create(client: Client, **overrides: object) -> tuple[object, str | None]:
    form: dict[str, object] = {
        "url": "https://erp.example.com/hooks/postroom",
        "description": "ERP delivery status",
        "all_events": "on",
    }
    form.update(overrides)
    response = client.post("/webhooks/new/", form)
    match = SECRET_RE.search(response.content.decode())  # type: ignore[attr-defined]
    return response, match.group(1) if match else None


def test_only_administrators_reach_the_webhooks_pages(admin: User, as_staff: Client) -> None:
    endpoint, _ = endpoint_create(actor=admin, url="https://erp.example.com/hooks")
    enqueue_message()
    events_fan_out()
    delivery = Delivery.objects.get()
    pages = [
        "/webhooks/",
        "/webhooks/new/",
        f"/webhooks/{endpoint.pk}/",
        f"/webhooks/{endpoint.pk}/edit/",
        f"/webhooks/{endpoint.pk}/rotate/",
        f"/webhooks/{endpoint.pk}/delete/",
        f"/webhooks/deliveries/{delivery.pk}/",
    ]
    actions = [
        f"/webhooks/{endpoint.pk}/test/",
        f"/webhooks/deliveries/{delivery.pk}/resend/",
        f"/webhooks/{endpoint.pk}/rotate/",
        f"/webhooks/{endpoint.pk}/delete/",
    ]
    for url in pages:
        assert as_staff.get(url).status_code == 403, url
        assert Client().get(url).status_code == 302, url  # to the login page
    for url in actions:
        assert as_staff.post(url).status_code == 403, url
    assert Endpoint.objects.get().secret_encrypted == endpoint.secret_encrypted
    assert Delivery.objects.count() == 1


def test_the_administration_links_webhooks_for_administrators_only(
    as_admin: Client, as_staff: Client
) -> None:
    assert 'href="/administration/"' in as_admin.get("/").content.decode()
    assert 'href="/webhooks/"' in as_admin.get("/administration/").content.decode()
    assert 'href="/administration/"' not in as_staff.get("/").content.decode()
    assert as_staff.get("/administration/").status_code == 403


def test_the_secret_is_shown_once_and_stored_only_encrypted(as_admin: Client) -> None:
    response, secret = create(as_admin)
    assert response.status_code == 200  # type: ignore[attr-defined]
    assert secret is not None
    assert "no-store" in response["Cache-Control"]  # type: ignore[index]
    endpoint = Endpoint.objects.get()
    assert secret not in endpoint.secret_encrypted
    assert secret_decrypt(endpoint.secret_encrypted) == secret  # usable for signing
    assert endpoint.created_by is not None and endpoint.created_by.username == "root"
    key = secret[len("whsec_") :]
    for url in ("/webhooks/", f"/webhooks/{endpoint.pk}/", f"/webhooks/{endpoint.pk}/edit/"):
        assert key not in as_admin.get(url).content.decode(), url
    audit = AuditEntry.objects.get(action="webhook.endpoint.created")
    assert key not in str(audit.changes)
    assert as_admin.get("/audit/").status_code == 200
    assert key not in as_admin.get("/audit/").content.decode()


def test_the_form_shows_errors_next_to_their_field(as_admin: Client) -> None:
    response, secret = create(as_admin, url="ftp://erp.example.com/", all_events="")
    assert secret is None
    html = response.content.decode()  # type: ignore[attr-defined]
    assert "Use an http:// or https:// URL" in html
    assert "Choose at least one event type" in html
    assert html.count('class="field-error"') == 2
    response, _ = create(as_admin, url="https://user:hunter2@erp.example.com/")
    assert "Leave user names and passwords out of the URL" in response.content.decode()  # type: ignore[attr-defined]
    assert not Endpoint.objects.exists()


def test_an_endpoint_can_subscribe_to_some_event_types(as_admin: Client) -> None:
    _, secret = create(as_admin, all_events="", event_types=["message.failed", "message.sent"])
    assert secret is not None
    endpoint = Endpoint.objects.get()
    assert (endpoint.all_events, endpoint.event_types) == (
        False,
        ["message.sent", "message.failed"],
    )
    assert "message.failed" in as_admin.get("/webhooks/").content.decode()


def test_editing_saves_and_is_audited(as_admin: Client) -> None:
    create(as_admin)
    endpoint = Endpoint.objects.get()
    page = as_admin.get(f"/webhooks/{endpoint.pk}/edit/").content.decode()
    assert "https://erp.example.com/hooks/postroom" in page
    response = as_admin.post(
        f"/webhooks/{endpoint.pk}/edit/",
        {"url": "https://erp.example.com/v2/hooks", "description": "", "all_events": "on"},
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.is_active) == ("https://erp.example.com/v2/hooks", False)
    audit = AuditEntry.objects.get(action="webhook.endpoint.updated")
    assert audit.changes["URL"] == {
        "from": "https://erp.example.com/hooks/postroom",
        "to": "https://erp.example.com/v2/hooks",
    }
    assert audit.changes["Active"] == {"from": True, "to": False}


def test_rotating_shows_a_new_secret_once(as_admin: Client) -> None:
    _, first = create(as_admin)
    endpoint = Endpoint.objects.get()
    assert "Rotate secret" in as_admin.get(f"/webhooks/{endpoint.pk}/rotate/").content.decode()
    response = as_admin.post(f"/webhooks/{endpoint.pk}/rotate/", {"keep_previous": "on"})
    second = SECRET_RE.search(response.content.decode())
    assert second is not None and second.group(1) != first
    assert "no-store" in response["Cache-Control"]
    endpoint.refresh_from_db()
    assert secret_decrypt(endpoint.secret_encrypted) == second.group(1)
    assert secret_decrypt(endpoint.previous_secret_encrypted) == first
    detail = as_admin.get(f"/webhooks/{endpoint.pk}/").content.decode()
    assert "also signs until" in detail
    assert second.group(1) not in detail
    audit = AuditEntry.objects.get(action="webhook.endpoint.secret_rotated")
    assert audit.changes["Signing secret"] == {"changed": True, "secret": "replaced"}


def test_deleting_asks_first(as_admin: Client) -> None:
    create(as_admin)
    endpoint = Endpoint.objects.get()
    confirm = as_admin.get(f"/webhooks/{endpoint.pk}/delete/").content.decode()
    assert "Delete endpoint" in confirm
    assert Endpoint.objects.exists()
    response = as_admin.post(f"/webhooks/{endpoint.pk}/delete/", follow=True)
    assert "is deleted" in response.content.decode()
    assert not Endpoint.objects.exists()
    assert AuditEntry.objects.filter(action="webhook.endpoint.deleted").exists()


def test_send_test_event_queues_a_ping_that_reaches_the_receiver(as_admin: Client) -> None:
    with running_receiver() as receiver:
        _, secret = create(as_admin, url=receiver.url, is_internal_allowed="on")
        endpoint = Endpoint.objects.get()
        assert as_admin.get(f"/webhooks/{endpoint.pk}/test/").status_code == 405
        response = as_admin.post(f"/webhooks/{endpoint.pk}/test/", follow=True)
        assert "A test event" in response.content.decode()
        assert dispatch_due() == [DeliveryStatus.SUCCEEDED]
    assert secret is not None and is_signed_with(secret, receiver.requests[0])
    page = as_admin.get(f"/webhooks/{endpoint.pk}/").content.decode()
    assert "ping" in page and "Succeeded" in page


def test_the_log_lists_deliveries_newest_first_and_resend_posts_again(
    as_admin: Client, admin: User
) -> None:
    # Every request fails until the resend: the two deliveries go out side by side, in no
    # fixed order, so a single scripted 500 could meet either (it failed CI that way).
    with running_receiver(default=Answer(status=500, body=b"boom")) as receiver:
        endpoint, _ = endpoint_create(actor=admin, url=receiver.url, is_internal_allowed=True)
        first = enqueue_message("first@example.net")
        second = enqueue_message("second@example.net")
        events_fan_out()
        dispatch_due()
        page = as_admin.get(f"/webhooks/{endpoint.pk}/").content.decode()
        newer = page.index(f"evt_{second.events.get().pk}")
        older = page.index(f"evt_{first.events.get().pk}")
        assert newer < older
        assert "The endpoint answered 500" in page
        assert page.count(">Resend</button>") == 2

        failed = Delivery.objects.get(event__message=first)
        assert failed.status == DeliveryStatus.PENDING and failed.last_status_code == 500
        receiver.default = Answer(status=200)
        response = as_admin.post(f"/webhooks/deliveries/{failed.pk}/resend/")
        assert response.status_code == 302
        failed.refresh_from_db()
        assert failed.next_attempt_at is not None and failed.next_attempt_at <= timezone.now()
        assert dispatch_due() == [DeliveryStatus.SUCCEEDED]
        assert len(receiver.requests) == 3
    detail = as_admin.get(f"/webhooks/deliveries/{failed.pk}/").content.decode()
    assert "boom" in detail  # the first attempt's response excerpt
    assert AuditEntry.objects.filter(action="webhook.delivery.resent").exists()


def test_a_failing_endpoint_is_flagged_on_the_list_not_turned_off(
    as_admin: Client, admin: User
) -> None:
    with running_receiver(default=Answer(status=502)) as receiver:
        endpoint, _ = endpoint_create(actor=admin, url=receiver.url, is_internal_allowed=True)
        enqueue_message()
        events_fan_out()
        dispatch_due()
    listing = as_admin.get("/webhooks/").content.decode()
    assert "keeps failing" in listing
    assert "failing since" in listing
    assert "last answer 502" in listing
    endpoint.refresh_from_db()
    assert endpoint.is_active


def test_forms_and_buttons_need_the_csrf_token(admin: User) -> None:
    endpoint, _ = endpoint_create(actor=admin, url="https://erp.example.com/hooks")
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    for url in (
        "/webhooks/new/",
        f"/webhooks/{endpoint.pk}/edit/",
        f"/webhooks/{endpoint.pk}/rotate/",
        f"/webhooks/{endpoint.pk}/delete/",
        f"/webhooks/{endpoint.pk}/test/",
    ):
        assert client.post(url, {"url": "https://evil.example.com/"}).status_code == 403, url
    assert Endpoint.objects.get().url == "https://erp.example.com/hooks"
    assert not Delivery.objects.exists()
    page = client.get(f"/webhooks/{endpoint.pk}/").content.decode()
    assert page.count("csrfmiddlewaretoken") >= 2  # every form on the page carries it


def test_unknown_endpoints_and_deliveries_are_404(as_admin: Client) -> None:
    assert as_admin.get("/webhooks/999/").status_code == 404
    assert as_admin.post("/webhooks/deliveries/999/resend/").status_code == 404
