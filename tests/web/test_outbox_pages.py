"""The Outbox pages: the list with its filters, a message's page, raw download, Retry/Cancel."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from postroom.accounts.models import Role
from postroom.outbox.models import (
    Attempt,
    Classification,
    Lane,
    Message,
    MessageStatus,
    Recipient,
    RecipientStatus,
    ServerPause,
)
from postroom.outbox.pauses import server_pause
from tests.accounts.factories import admin_make, user_make
from tests.outbox.message_factories import message_queue

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Django's PBKDF2 (1,000,000 rounds) costs about a second per user made; these tests
    # log users in with force_login and never check a password.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _client_for(user, *, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


def _fail(message: Message) -> None:
    """Put a message where a worker would leave it after a permanent failure."""
    Recipient.objects.filter(message=message).update(status=RecipientStatus.FAILED)
    Message.objects.filter(pk=message.pk).update(
        status=MessageStatus.FAILED, finished_at=timezone.now(), last_error="550 no such user"
    )


def _csrf_token(client: Client, message: Message) -> str:
    client.get(reverse("outbox_message", args=[message.pk]))
    return client.cookies["csrftoken"].value


# --- the list ---------------------------------------------------------------------------


def test_the_outbox_needs_a_login(client):
    response = client.get(reverse("outbox"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_list_shows_messages_newest_first_with_status_recipients_and_error():
    admin = admin_make()
    first = message_queue(
        subject="Older invoice",
        to=["a@example.org", "b@example.org", "c@example.org", "d@example.org"],
    )
    message_queue(subject="Newer offer", sender="sales@acme.example")
    _fail(first)

    body = _client_for(admin).get(reverse("outbox")).content.decode()

    assert body.index("Newer offer") < body.index("Older invoice")
    assert "sales@acme.example" in body
    assert "a@example.org, b@example.org, c@example.org" in body
    assert "+1" in body
    assert '<span class="badge bad">Failed</span>' in body
    assert "550 no such user" in body


def test_the_status_chips_count_each_status():
    admin = admin_make()
    for _ in range(2):
        _fail(message_queue())
    message_queue()

    body = _client_for(admin).get(reverse("outbox")).content.decode()

    assert "All · 3" in body
    assert 'Failed</span> <span class="muted">2</span>' in body
    assert 'Queued</span> <span class="muted">1</span>' in body


def test_filters_narrow_the_list():
    admin = admin_make()
    message_queue(subject="Bulk news", lane=Lane.BULK, to=["list@news.example"])
    message_queue(subject="Personal note", sender="alice@acme.example", to=["bob@client.example"])
    _fail(message_queue(subject="Broken one"))
    client = _client_for(admin)

    def listed(**params: str) -> set[str]:
        body = client.get(reverse("outbox"), params).content.decode()
        return {s for s in ("Bulk news", "Personal note", "Broken one") if s in body}

    assert listed(lane="bulk") == {"Bulk news"}
    assert listed(status="failed") == {"Broken one"}
    assert listed(sender="alice@") == {"Personal note"}
    assert listed(recipient="client.example") == {"Personal note"}
    assert listed(created_from="2000-01-01", created_to="2000-01-02") == set()
    today = timezone.localdate().isoformat()
    assert listed(created_from=today, created_to=today) == {
        "Bulk news",
        "Personal note",
        "Broken one",
    }


def test_an_invalid_filter_is_shown_and_ignored():
    admin = admin_make()
    message_queue(subject="Still listed")

    response = _client_for(admin).get(reverse("outbox"), {"created_from": "yesterday-ish"})

    assert response.status_code == 200
    assert "Still listed" in response.content.decode()
    assert "Enter a valid date" in response.content.decode()


def test_the_list_pages_by_fifty():
    admin = admin_make()
    for number in range(51):
        message_queue(subject=f"Message number {number:02d}")
    client = _client_for(admin)

    first = client.get(reverse("outbox"))
    body = first.content.decode()
    assert "Message number 50" in body
    assert "Message number 00" not in body
    older = first.context["page"].older_than

    body = client.get(reverse("outbox"), {"before": older}).content.decode()
    assert "Message number 00" in body
    assert "Message number 01" not in body
    assert 'rel="prev"' in body


def test_staff_see_only_the_messages_they_sent():
    alice = user_make("alice")
    bob = user_make("bob", role=Role.MARKETER)
    message_queue(subject="Alice writes", sender_user=alice)
    message_queue(subject="Bob's campaign", sender_user=bob)

    body = _client_for(alice).get(reverse("outbox")).content.decode()

    assert "Alice writes" in body
    assert "Bob&#x27;s campaign" not in body
    assert "All · 1" in body


# --- a message's page -------------------------------------------------------------------


def test_the_message_page_shows_headers_recipients_and_every_attempt():
    admin = admin_make()
    message = message_queue(subject="Quarterly report", to=["ok@example.org", "busy@example.org"])
    ok, busy = message.recipients.all()
    now = timezone.now()
    Attempt.objects.create(
        message=message,
        recipient=busy,
        at=now,
        server="smtp.acme.example:587",
        stage="rcpt",
        code=450,
        enhanced_code="4.2.1",
        text="Mailbox busy, try later",
        classification=Classification.TEMPORARY,
    )
    Attempt.objects.create(
        message=message,
        recipient=ok,
        at=now,
        server="smtp.acme.example:587",
        stage="end_of_data",
        code=250,
        enhanced_code="2.0.0",
        text="Ok: queued as 4XyZ",
        classification=Classification.SUCCESS,
    )
    Recipient.objects.filter(pk=busy.pk).update(
        status=RecipientStatus.DEFERRED, last_code=450, last_text="Mailbox busy, try later"
    )

    body = _client_for(admin).get(reverse("outbox_message", args=[message.pk])).content.decode()

    assert "Quarterly report" in body
    assert message.message_id.replace("<", "&lt;").replace(">", "&gt;") in body
    assert "smtp.acme.example:587" in body
    assert "4.2.1" in body and "Mailbox busy, try later" in body
    assert "Ok: queued as 4XyZ" in body
    assert "Temporary failure" in body and "Success" in body
    assert "end_of_data" in body
    assert '<span class="badge warn">Deferred</span>' in body
    assert "text/plain" in body


def _without_csrf_token(content: bytes) -> bytes:
    return re.sub(rb'("X-CSRFToken": "|name="csrfmiddlewaretoken" value=")[^"]+', rb"\1", content)


def test_someone_elses_message_is_not_found_as_if_it_did_not_exist():
    alice = user_make("alice")
    message = message_queue(sender_user=alice)
    bob = _client_for(user_make("bob"))

    for name in ("outbox_message", "outbox_message_raw"):
        others = bob.get(reverse(name, args=[message.pk]))
        missing = bob.get(reverse(name, args=[message.pk + 1000]))
        assert (others.status_code, missing.status_code) == (404, 404)
        # Nothing tells the two apart but the CSRF token, which is masked afresh for each page.
        assert _without_csrf_token(others.content) == _without_csrf_token(missing.content)
    assert _client_for(alice).get(reverse("outbox_message", args=[message.pk])).status_code == 200


def test_the_raw_download_is_the_exact_stored_bytes():
    admin = admin_make()
    message = message_queue(body="Line one\nLine two\n")

    response = _client_for(admin).get(reverse("outbox_message_raw", args=[message.pk]))

    assert response.status_code == 200
    assert response.content == bytes(message.raw)
    assert response["Content-Type"] == "message/rfc822"
    disposition = response["Content-Disposition"]
    assert disposition.startswith('attachment; filename="')
    assert disposition.endswith('_example.com.eml"')
    filename = disposition.split('"')[1]
    assert set(filename) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


# --- Retry and Cancel ---------------------------------------------------------------------


def test_the_sender_cancels_a_queued_message():
    alice = user_make("alice")
    message = message_queue(sender_user=alice)
    client = _client_for(alice, csrf=True)
    token = _csrf_token(client, message)

    response = client.post(
        reverse("outbox_message_cancel", args=[message.pk]),
        {"csrfmiddlewaretoken": token},
        follow=True,
    )

    message.refresh_from_db()
    assert message.status == MessageStatus.CANCELLED
    assert set(message.recipients.values_list("status", flat=True)) == {"cancelled"}
    assert "The message is cancelled" in response.content.decode()


def test_an_administrator_retries_a_failed_message():
    message = message_queue()
    _fail(message)
    client = _client_for(admin_make(), csrf=True)
    token = _csrf_token(client, message)

    client.post(reverse("outbox_message_retry", args=[message.pk]), {"csrfmiddlewaretoken": token})

    message.refresh_from_db()
    assert message.status == MessageStatus.QUEUED
    assert message.finished_at is None
    assert set(message.recipients.values_list("status", flat=True)) == {"queued"}


def test_a_refused_action_is_shown_as_a_message():
    message = message_queue()  # queued: nothing to retry yet
    client = _client_for(admin_make())

    response = client.post(reverse("outbox_message_retry", args=[message.pk]), follow=True)

    body = response.content.decode()
    assert "only deferred, failed, uncertain or cancelled messages can be retried" in body
    assert 'class="msg msg-error"' in body
    message.refresh_from_db()
    assert message.status == MessageStatus.QUEUED


def test_someone_else_cannot_retry_or_cancel():
    alice = user_make("alice")
    message = message_queue(sender_user=alice)
    _fail(message)
    mallory = _client_for(user_make("mallory", role=Role.MARKETER))

    assert mallory.post(reverse("outbox_message_retry", args=[message.pk])).status_code == 404
    assert mallory.post(reverse("outbox_message_cancel", args=[message.pk])).status_code == 404
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED


def test_retry_and_cancel_need_the_csrf_token_and_a_post():
    alice = user_make("alice")
    message = message_queue(sender_user=alice)
    client = _client_for(alice, csrf=True)

    assert client.post(reverse("outbox_message_cancel", args=[message.pk])).status_code == 403
    assert client.get(reverse("outbox_message_cancel", args=[message.pk])).status_code == 405
    message.refresh_from_db()
    assert message.status == MessageStatus.QUEUED


def test_the_buttons_match_what_the_status_allows():
    admin = _client_for(admin_make())
    queued = message_queue()
    failed = message_queue()
    _fail(failed)

    queued_page = admin.get(reverse("outbox_message", args=[queued.pk])).content.decode()
    failed_page = admin.get(reverse("outbox_message", args=[failed.pk])).content.decode()

    assert reverse("outbox_message_cancel", args=[queued.pk]) in queued_page
    assert reverse("outbox_message_retry", args=[queued.pk]) not in queued_page
    assert reverse("outbox_message_retry", args=[failed.pk]) in failed_page
    assert reverse("outbox_message_cancel", args=[failed.pk]) not in failed_page


# --- paused servers -----------------------------------------------------------------------


def test_a_paused_server_is_shown_and_an_administrator_resumes_it():
    server_pause(server="smtp.acme.example:587", code=535, reason="The server refused the login.")
    client = _client_for(admin_make(), csrf=True)

    body = client.get(reverse("outbox")).content.decode()
    assert "Sending through smtp.acme.example:587 is paused" in body
    assert "The server refused the login." in body
    assert "Resume sending" in body
    token = client.cookies["csrftoken"].value

    response = client.post(
        reverse("outbox_server_resume"),
        {"server": "smtp.acme.example:587", "csrfmiddlewaretoken": token},
        follow=True,
    )

    assert not ServerPause.objects.exists()
    assert "Sending through smtp.acme.example:587 resumed" in response.content.decode()


def test_staff_see_the_pause_but_cannot_resume():
    server_pause(server="smtp.acme.example:587", code=535, reason="The server refused the login.")
    client = _client_for(user_make("alice"))

    body = client.get(reverse("outbox")).content.decode()
    assert "is paused" in body
    assert "Resume sending" not in body

    response = client.post(reverse("outbox_server_resume"), {"server": "smtp.acme.example:587"})
    assert response.status_code == 403
    assert ServerPause.objects.exists()


def test_the_pause_its_cause_and_resume_are_on_the_dashboard_and_company_page_too():
    server_pause(
        server="smtp.acme.example:587",
        code=535,
        reason="535 5.7.8 the server refused the password.",
    )
    client = _client_for(admin_make())
    for page in (reverse("dashboard"), reverse("company_smtp")):
        body = client.get(page).content.decode()
        assert "Sending through smtp.acme.example:587 is paused" in body, page
        assert "the server refused the password." in body
        assert body.count("535") == 1, "the code is said once"
        assert "Resume sending" in body and "Test these settings" in body


def test_queued_mail_is_held_while_sending_is_paused():
    admin = admin_make()
    queued = message_queue(sender_user=admin)
    client = _client_for(admin)
    assert "held (paused)" not in client.get(reverse("outbox")).content.decode()

    server_pause(server="smtp.acme.example:587", code=535, reason="the password was refused.")
    listing = client.get(reverse("outbox")).content.decode()
    assert "held (paused)" in listing
    page = client.get(reverse("outbox_message", args=[queued.pk])).content.decode()
    assert "Held:</strong> sending through smtp.acme.example:587 is paused because" in page
