"""Sending, reading, listing and cancelling messages through the API."""

from __future__ import annotations

import base64
import datetime as dt
from email import message_from_bytes
from email.policy import default as default_policy
from typing import Any

import pytest
from django.utils import timezone

from postroom.accounts.models import User
from postroom.outbox.claim import message_claim_batch
from postroom.outbox.models import Classification, Message, MessageStatus, Recipient
from postroom.outbox.record import MessageResult, RecipientResult, delivery_record
from tests.api.conftest import ApiClient, KeyMaker

pytestmark = pytest.mark.django_db

SEND = "/api/v1/messages"


def a_message(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"to": ["bob@example.org"], "subject": "Hello", "text": "Hi Bob"}
    body.update(overrides)
    return body


def raw_of(message_pk: int) -> Any:
    raw = Message.objects.values_list("raw", flat=True).get(pk=message_pk)
    assert raw is not None
    return message_from_bytes(bytes(raw), policy=default_policy)


# --- send -------------------------------------------------------------------------------


def test_sending_answers_202_and_queues_the_message_with_every_recipient(
    api: ApiClient, alice: User
) -> None:
    response = api.post(
        SEND,
        {
            "from": "alice",
            "to": ["Bob Jones <bob@example.org>", {"email": "carol@example.org", "name": "Carol"}],
            "cc": ["dave@example.org"],
            "bcc": ["audit@acme.example"],
            "reply_to": ["support@acme.example"],
            "subject": "Your invoice",
            "text": "Attached.",
            "html": "<p>Attached.</p>",
            "headers": {"X-Order": "1042", "Auto-Submitted": "auto-generated"},
        },
    )
    assert response.status_code == 202
    body = response.json()
    message = Message.objects.get()
    assert body["id"] == message.pk
    assert body["message_id"] == message.message_id
    assert body["status"] == "queued" == message.status
    assert body["source"] == "api"
    assert body["from"] == "Alice Smith <alice@acme.example>"
    assert message.sender_user == alice
    recipients = [(r["address"], r["kind"], r["status"]) for r in body["recipients"]]
    assert recipients == [
        ("bob@example.org", "to", "queued"),
        ("carol@example.org", "to", "queued"),
        ("dave@example.org", "cc", "queued"),
        ("audit@acme.example", "bcc", "queued"),
    ]
    assert list(Recipient.objects.values_list("address", "kind").order_by("id")) == [
        (address, kind) for address, kind, _ in recipients
    ]
    parsed = raw_of(message.pk)
    assert parsed["To"] == "Bob Jones <bob@example.org>, Carol <carol@example.org>"
    assert parsed["Reply-To"] == "support@acme.example"
    assert parsed["X-Order"] == "1042"
    assert parsed["Bcc"] is None
    assert parsed["Message-ID"] == message.message_id


def test_a_user_is_named_by_login_or_address_and_the_company_by_name(
    api: ApiClient, alice: User
) -> None:
    by_address = api.post(SEND, a_message(**{"from": "Alice@Acme.example"})).json()
    assert by_address["from"] == "Alice Smith <alice@acme.example>"
    company = api.post(SEND, a_message(**{"from": "company"})).json()
    assert company["from"] == "Acme Office <office@acme.example>"
    assert Message.objects.get(pk=company["id"]).sender_user is None


def test_attachments_arrive_in_the_message_byte_for_byte(api: ApiClient) -> None:
    pdf = b"%PDF-1.7\n" + bytes(range(256)) * 40
    response = api.post(
        SEND,
        a_message(
            attachments=[
                {
                    "filename": "invoice-1042.pdf",
                    "content_type": "application/pdf",
                    "content": base64.b64encode(pdf).decode(),
                }
            ]
        ),
    )
    assert response.status_code == 202
    parts = list(raw_of(response.json()["id"]).iter_attachments())
    assert [(p.get_filename(), p.get_content_type()) for p in parts] == [
        ("invoice-1042.pdf", "application/pdf")
    ]
    assert parts[0].get_payload(decode=True) == pdf


def test_bulk_lane_and_send_at_are_kept(api: ApiClient) -> None:
    send_at = (timezone.now() + dt.timedelta(hours=3)).replace(microsecond=0)
    response = api.post(SEND, a_message(lane="bulk", send_at=send_at.isoformat()))
    assert response.status_code == 202
    message = Message.objects.get()
    assert message.lane == "bulk"
    assert message.not_before_at == send_at
    assert message.next_attempt_at == send_at
    assert response.json()["send_at"].startswith(send_at.strftime("%Y-%m-%dT%H:%M:%S"))


def test_a_send_at_without_offset_is_in_postrooms_time_zone(api: ApiClient, settings: Any) -> None:
    settings.TIME_ZONE = "Europe/Berlin"
    when = timezone.now().astimezone(dt.UTC) + dt.timedelta(days=2)
    local = timezone.localtime(when, timezone.get_default_timezone()).replace(microsecond=0)
    response = api.post(SEND, a_message(send_at=local.replace(tzinfo=None).isoformat()))
    assert response.status_code == 202
    assert Message.objects.get().not_before_at == local


# --- idempotency ----------------------------------------------------------------------------


def test_the_same_idempotency_key_twice_queues_one_message(api: ApiClient) -> None:
    first = api.post(SEND, a_message(), **{"Idempotency-Key": "order-1042"})
    second = api.post(SEND, a_message(), **{"Idempotency-Key": "order-1042"})
    assert first.status_code == 202
    assert second.status_code == 200
    assert second["Idempotent-Replayed"] == "true"
    assert first.json()["id"] == second.json()["id"]
    assert first.json()["message_id"] == second.json()["message_id"]
    assert Message.objects.count() == 1
    assert Recipient.objects.count() == 1


def test_an_idempotency_key_reused_for_another_message_is_409(api: ApiClient) -> None:
    api.post(SEND, a_message(), **{"Idempotency-Key": "order-1042"})
    response = api.post(SEND, a_message(subject="Other"), **{"Idempotency-Key": "order-1042"})
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "conflict"
    assert error["field"] == "Idempotency-Key"
    assert Message.objects.count() == 1


def test_idempotency_keys_of_different_api_keys_do_not_collide(
    api: ApiClient, key_make: KeyMaker
) -> None:
    _, other_key = key_make(name="Shop")
    first = api.post(SEND, a_message(), **{"Idempotency-Key": "order-1"})
    second = ApiClient(other_key).post(SEND, a_message(), **{"Idempotency-Key": "order-1"})
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] != second.json()["id"]


def test_different_idempotency_keys_queue_different_messages(api: ApiClient) -> None:
    api.post(SEND, a_message(), **{"Idempotency-Key": "a"})
    api.post(SEND, a_message(), **{"Idempotency-Key": "b"})
    api.post(SEND, a_message())
    assert Message.objects.count() == 3


# --- get --------------------------------------------------------------------------------


def test_a_message_shows_each_recipients_status_and_attempts(api: ApiClient) -> None:
    sent = api.post(SEND, a_message(to=["bob@example.org", "eve@example.org"])).json()
    (claimed,) = message_claim_batch(worker="test", limit=10)
    bob, eve = claimed.recipients
    delivery_record(
        results=[
            MessageResult(
                message=claimed,
                server="relay.example:587",
                stage="rcpt",
                recipients=[
                    RecipientResult(bob, Classification.SUCCESS, 250, "2.1.5", "OK"),
                    RecipientResult(eve, Classification.PERMANENT, 550, "5.1.1", "No such user"),
                ],
            )
        ],
        worker="test",
    )
    response = api.get(f"{SEND}/{sent['id']}")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == MessageStatus.PARTIAL
    assert body["attempt_total"] == 2
    by_address = {r["address"]: r for r in body["recipients"]}
    assert by_address["bob@example.org"]["status"] == "sent"
    assert by_address["bob@example.org"]["sent_at"] is not None
    eve_row = by_address["eve@example.org"]
    assert (eve_row["status"], eve_row["last_code"], eve_row["last_enhanced_code"]) == (
        "failed",
        550,
        "5.1.1",
    )
    (attempt,) = eve_row["attempts"]
    assert attempt["recipient"] == "eve@example.org"
    assert attempt["classification"] == "permanent"
    assert attempt["server"] == "relay.example:587"
    assert attempt["text"] == "No such user"


def test_an_unknown_message_is_404_json(api: ApiClient) -> None:
    response = api.get(f"{SEND}/424242")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


# --- list -------------------------------------------------------------------------------


def test_the_list_pages_through_every_message_newest_first_with_a_cursor(
    api: ApiClient,
) -> None:
    ids = [api.post(SEND, a_message(subject=f"n{i}")).json()["id"] for i in range(7)]
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        body = api.get(SEND, params).json()
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert str(seen[-1]) not in cursor  # opaque, not the id itself
    assert seen == ids[::-1]
    assert pages == 3


def test_the_list_filters_by_status_lane_recipient_sender_and_time(
    api: ApiClient, alice: User
) -> None:
    to_bob = api.post(SEND, a_message()).json()["id"]
    bulk = api.post(SEND, a_message(to=["carol@example.org"], lane="bulk")).json()["id"]
    from_alice = api.post(SEND, a_message(**{"from": "alice"})).json()["id"]
    cancelled = api.post(SEND, a_message()).json()["id"]
    api.post(f"{SEND}/{cancelled}/cancel")

    def ids(**params: Any) -> list[int]:
        response = api.get(SEND, params)
        assert response.status_code == 200, response.content
        return [item["id"] for item in response.json()["items"]]

    assert ids(status="cancelled") == [cancelled]
    assert ids(lane="bulk") == [bulk]
    assert ids(recipient="CAROL@example.org") == [bulk]
    assert ids(**{"from": "alice@acme.example"}) == [from_alice]
    assert ids(status="queued", recipient="bob@example.org") == [from_alice, to_bob]
    later = (timezone.now() + dt.timedelta(minutes=1)).isoformat()
    assert ids(created_after=later) == []
    assert len(ids(created_before=later)) == 4
    summary = api.get(SEND, {"lane": "bulk"}).json()["items"][0]
    assert summary["recipient_count"] == 1
    assert "recipients" not in summary


# --- cancel -----------------------------------------------------------------------------


def test_cancel_cancels_every_recipient_not_yet_sent(api: ApiClient) -> None:
    sent = api.post(SEND, a_message(to=["bob@example.org", "eve@example.org"])).json()
    response = api.post(f"{SEND}/{sent['id']}/cancel")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "cancelled"
    assert {r["status"] for r in body["recipients"]} == {"cancelled"}
    assert Message.objects.get().status == MessageStatus.CANCELLED


def test_cancelling_a_finished_message_is_409(api: ApiClient) -> None:
    sent = api.post(SEND, a_message()).json()
    api.post(f"{SEND}/{sent['id']}/cancel")
    response = api.post(f"{SEND}/{sent['id']}/cancel")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "conflict"
    assert "nothing left to cancel" in error["message"]


def test_a_message_being_sent_cannot_be_cancelled(api: ApiClient) -> None:
    sent = api.post(SEND, a_message()).json()
    message_claim_batch(worker="test", limit=10)
    response = api.post(f"{SEND}/{sent['id']}/cancel")
    assert response.status_code == 409
    assert "being sent right now" in response.json()["error"]["message"]
