"""POST /api/v1/messages/batch: up to 500 messages, each checked on its own and answered on its
own, all that pass stored in one transaction, each with its own idempotency key."""

from __future__ import annotations

from typing import Any

import pytest

from postroom.accounts.models import ApiScope, User
from postroom.api.schemas import MAX_BATCH
from postroom.outbox.models import Event, EventKind, Message, MessageStatus, Recipient
from tests.api.conftest import ApiClient, KeyMaker

pytestmark = pytest.mark.django_db

SEND = "/api/v1/messages"
BATCH = "/api/v1/messages/batch"


def a_message(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"to": ["bob@example.org"], "subject": "Hello", "text": "Hi Bob"}
    body.update(overrides)
    return body


def items_of(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.content
    items: list[dict[str, Any]] = response.json()["items"]
    assert [item["index"] for item in items] == list(range(len(items)))
    return items


# --- partial failures -------------------------------------------------------------------------


def test_the_valid_messages_are_queued_and_each_refused_one_says_why(api: ApiClient) -> None:
    response = api.post(
        BATCH,
        {
            "messages": [
                a_message(to=["ann@example.org"], subject="Invoice 1"),
                a_message(to=["bob@@example.org"]),
                a_message(headers={"Received": "from nowhere"}),
                a_message(to=["carol@example.org"], subject="Invoice 2"),
            ]
        },
    )
    first, bad_address, bad_header, last = items_of(response)
    assert response.json()["queued"] == 2
    assert response.json()["failed"] == 2
    assert (first["status"], last["status"]) == (202, 202)
    assert bad_address["status"] == bad_header["status"] == 400
    assert bad_address["message"] is None
    assert bad_address["error"]["code"] == "invalid"
    assert bad_address["error"]["field"] == "to"
    assert "bob@@example.org" in bad_address["error"]["message"]
    assert bad_header["error"]["field"] == "headers"
    assert "Received" in bad_header["error"]["message"]
    stored = Message.objects.order_by("id")
    assert [m.subject for m in stored] == ["Invoice 1", "Invoice 2"]
    assert [first["message"]["id"], last["message"]["id"]] == [m.pk for m in stored]
    assert list(Recipient.objects.order_by("id").values_list("address", flat=True)) == [
        "ann@example.org",
        "carol@example.org",
    ]
    queued_events = Event.objects.filter(kind=EventKind.MESSAGE_QUEUED)
    assert sorted(queued_events.values_list("message_id", flat=True)) == [m.pk for m in stored]


def test_a_refused_message_reads_as_the_same_message_sent_alone_would(api: ApiClient) -> None:
    bad = a_message(to=["bob@@example.org"], cc=["x"])
    alone = api.post(SEND, bad)
    (item,) = items_of(api.post(BATCH, {"messages": [bad]}))
    assert item["status"] == alone.status_code == 400
    assert {key: item["error"][key] for key in ("code", "message", "field")} == {
        key: alone.json()["error"][key] for key in ("code", "message", "field")
    }


def test_a_message_that_does_not_fit_the_schema_is_refused_alone(api: ApiClient) -> None:
    items = items_of(
        api.post(
            BATCH,
            {"messages": [a_message(), a_message(body="Hi", lane=5), "not an object", a_message()]},
        )
    )
    assert [item["status"] for item in items] == [202, 400, 400, 202]
    typo = items[1]["error"]
    assert typo["code"] == "invalid"
    assert {detail["field"] for detail in typo["details"]} == {"body", "lane"}
    assert "1 more problem" in typo["message"]
    assert items[2]["error"]["code"] == "invalid"
    assert Message.objects.count() == 2


def test_the_queued_message_is_answered_as_it_reads_back(api: ApiClient, alice: User) -> None:
    (item,) = items_of(api.post(BATCH, {"messages": [a_message(**{"from": "alice"})]}))
    summary = item["message"]
    full = api.get(f"{SEND}/{summary['id']}").json()
    assert summary == {key: full[key] for key in summary}
    assert summary["from"] == "Alice Smith <alice@acme.example>"
    assert summary["status"] == MessageStatus.QUEUED
    assert summary["recipient_count"] == 1


def test_a_batch_of_only_refused_messages_stores_nothing(api: ApiClient) -> None:
    body = api.post(BATCH, {"messages": [a_message(subject="a\r\nBcc: x@example.org")]}).json()
    assert (body["queued"], body["replayed"], body["failed"]) == (0, 0, 1)
    assert not Message.objects.exists()
    assert not Event.objects.exists()


# --- the request as a whole ---------------------------------------------------------------------


def test_501_messages_are_refused_whole_and_nothing_is_queued(api: ApiClient) -> None:
    response = api.post(BATCH, {"messages": [a_message()] * (MAX_BATCH + 1)})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["field"] == "messages"
    assert f"at most {MAX_BATCH} messages" in error["message"]
    assert not Message.objects.exists()


def test_500_messages_are_queued_in_one_request(api: ApiClient) -> None:
    messages = [a_message(to=[f"r{n}@example.org"], subject=f"n{n}") for n in range(MAX_BATCH)]
    body = api.post(BATCH, {"messages": messages}).json()
    assert body["queued"] == MAX_BATCH
    assert Message.objects.count() == MAX_BATCH
    assert len({item["message"]["id"] for item in body["items"]}) == MAX_BATCH


@pytest.mark.parametrize(
    "body", [{}, {"messages": []}, {"messages": "x"}, {"messages": [], "extra": 1}]
)
def test_a_body_without_a_list_of_messages_is_400(api: ApiClient, body: dict[str, Any]) -> None:
    response = api.post(BATCH, body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_a_batch_needs_the_send_scope(key_make: KeyMaker, company: Any) -> None:
    _, key = key_make([ApiScope.READ])
    response = ApiClient(key).post(BATCH, {"messages": [a_message()]})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "missing_scope"
    assert not Message.objects.exists()


def test_a_restricted_key_queues_only_what_it_may_send(
    key_make: KeyMaker, company: Any, alice: User, bob: User
) -> None:
    _, key = key_make(sender_user=alice, allowed_from=["invoices@acme.example"])
    items = items_of(
        ApiClient(key).post(
            BATCH,
            {
                "messages": [
                    a_message(),  # no `from`: the key's user
                    a_message(**{"from": "bob"}),
                    a_message(**{"from": "Billing <invoices@acme.example>"}),
                    a_message(**{"from": "company"}),
                    a_message(**{"from": "nobody"}),
                ]
            },
        )
    )
    assert [item["status"] for item in items] == [202, 403, 202, 403, 400]
    assert items[0]["message"]["from"] == "Alice Smith <alice@acme.example>"
    assert items[1]["error"]["code"] == items[3]["error"]["code"] == "sender_not_allowed"
    assert items[4]["error"]["code"] == "unknown_user"
    assert Message.objects.filter(sender_user=alice).count() == 1


def test_a_batch_counts_once_against_the_rate_limit(key_make: KeyMaker, company: Any) -> None:
    _, key = key_make(rate_limit_per_minute=2)
    client = ApiClient(key)
    body = client.post(BATCH, {"messages": [a_message(subject=f"n{n}") for n in range(20)]})
    assert body.json()["queued"] == 20
    assert client.post(SEND, a_message()).status_code == 202


# --- idempotency ----------------------------------------------------------------------------


def test_a_batch_sent_again_queues_nothing_and_answers_the_same_messages(api: ApiClient) -> None:
    messages = [a_message(subject=f"Invoice {n}", idempotency_key=f"inv-{n}") for n in range(3)]
    first = items_of(api.post(BATCH, {"messages": messages}))
    again = api.post(BATCH, {"messages": messages})
    assert again.json()["replayed"] == 3
    assert [item["status"] for item in items_of(again)] == [200, 200, 200]
    ids = [item["message"]["id"] for item in first]
    assert [item["message"]["id"] for item in items_of(again)] == ids
    assert Message.objects.count() == 3
    assert Event.objects.filter(kind=EventKind.MESSAGE_QUEUED).count() == 3


def test_a_key_reused_for_another_message_is_that_messages_409(api: ApiClient) -> None:
    api.post(BATCH, {"messages": [a_message(idempotency_key="inv-1")]})
    items = items_of(
        api.post(
            BATCH,
            {
                "messages": [
                    a_message(subject="Credit note", idempotency_key="inv-1"),
                    a_message(subject="Invoice 2", idempotency_key="inv-2"),
                ]
            },
        )
    )
    assert [item["status"] for item in items] == [409, 202]
    assert items[0]["error"]["code"] == "conflict"
    assert items[0]["error"]["field"] == "idempotency_key"
    assert Message.objects.count() == 2


def test_one_key_twice_in_a_batch_is_one_message_or_a_conflict(api: ApiClient) -> None:
    items = items_of(
        api.post(
            BATCH,
            {
                "messages": [
                    a_message(idempotency_key="k"),
                    a_message(idempotency_key="k"),
                    a_message(subject="Another", idempotency_key="k"),
                ]
            },
        )
    )
    assert [item["status"] for item in items] == [202, 200, 409]
    assert items[0]["message"]["id"] == items[1]["message"]["id"]
    assert "earlier in the batch (number 1)" in items[2]["error"]["message"]
    assert Message.objects.count() == 1


def test_a_batch_replays_a_single_sends_idempotency_key(api: ApiClient) -> None:
    single = api.post(SEND, a_message(), **{"Idempotency-Key": "order-7"}).json()
    (item,) = items_of(api.post(BATCH, {"messages": [a_message(idempotency_key="order-7")]}))
    assert (item["status"], item["message"]["id"]) == (200, single["id"])
    replayed = api.post(SEND, a_message(subject="Other"), **{"Idempotency-Key": "order-7"})
    assert replayed.status_code == 409


def test_an_idempotency_key_out_of_bounds_is_that_messages_400(api: ApiClient) -> None:
    items = items_of(
        api.post(BATCH, {"messages": [a_message(idempotency_key="has space"), a_message()]})
    )
    assert [item["status"] for item in items] == [400, 202]
    assert items[0]["error"]["field"] == "idempotency_key"
