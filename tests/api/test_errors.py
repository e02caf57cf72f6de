"""Every way a request can be wrong gets a 4xx JSON error with a stable code and the field."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from postroom.accounts.models import User
from postroom.company.selectors import company_get
from postroom.outbox.models import Message
from tests.api.conftest import ApiClient

pytestmark = pytest.mark.django_db

SEND = "/api/v1/messages"


def a_message(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"to": ["bob@example.org"], "subject": "Hello", "text": "Hi Bob"}
    body.update(overrides)
    return body


def error_of(response: Any, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) >= {"code", "message", "field"}
    assert error["message"]
    return error


def pdf(size: int) -> dict[str, str]:
    return {
        "filename": "big.pdf",
        "content_type": "application/pdf",
        "content": base64.b64encode(b"x" * size).decode(),
    }


@pytest.mark.parametrize(
    ("body", "code", "field", "says"),
    [
        (a_message(to=["bob@@example.org"]), "invalid", "to", "Recipient 1 (To)"),
        (a_message(cc=["Bob <bob@example.org>, eve@example.org"]), "invalid", "cc", "Cc"),
        (a_message(to=[{"email": "not an address"}]), "invalid", "to", "not valid"),
        (
            a_message(to=[{"email": "bob@example.org", "name": "Bob\r\nBcc: x@y.z"}]),
            "invalid",
            "to",
            "line break",
        ),
        (a_message(to=[]), "invalid", "to", "at least one recipient"),
        (a_message(subject="Hi\r\nBcc: eve@example.org"), "invalid", "subject", "line break"),
        (a_message(subject="Hi\nthere"), "invalid", "subject", "header injection"),
        (a_message(headers={"Received": "from evil"}), "invalid", "headers", "not allowed"),
        (a_message(headers={"Bcc": "eve@example.org"}), "invalid", "headers", "Bcc"),
        (a_message(headers={"X-Ok": "a\r\nb"}), "invalid", "headers", "line break"),
        (
            a_message(
                attachments=[
                    {
                        "filename": "a.pdf",
                        "content_type": "application/pdf",
                        "content": "not base64!",
                    }
                ]
            ),
            "invalid",
            "attachments",
            "not valid base64",
        ),
        (
            a_message(
                attachments=[
                    {"filename": "../a.pdf", "content_type": "application/pdf", "content": "QUJD"}
                ]
            ),
            "invalid",
            "attachments",
            "must not contain /",
        ),
        (
            a_message(
                attachments=[{"filename": "a.pdf", "content_type": "pdf", "content": "QUJD"}]
            ),
            "invalid",
            "attachments",
            "content type",
        ),
        (a_message(**{"from": "nobody"}), "unknown_user", "from", "no user with the login"),
        (a_message(**{"from": "Bob <bob@"}), "invalid", "from", "From"),
        (a_message(subjet="typo"), "invalid", "subjet", "Extra inputs"),
        (a_message(lane="urgent"), "invalid", "lane", "transactional"),
        (a_message(to="bob@example.org"), "invalid", "to", "list"),
        (a_message(send_at="tomorrow"), "invalid", "send_at", "datetime"),
        (a_message(send_at="2999-01-01T00:00:00Z"), "invalid", "send_at", "366 days"),
        (a_message(send_at="1900-01-01T00:00:00Z"), "invalid", "send_at", "1970"),
        (a_message(text="\ud800"), "invalid", "text", "surrogate"),
    ],
)
def test_bad_input_is_400_with_code_and_field(
    api: ApiClient, body: dict[str, Any], code: str, field: str, says: str
) -> None:
    error = error_of(api.post(SEND, body))
    assert error["code"] == code
    assert error["field"] == field
    assert says in error["message"]
    assert not Message.objects.exists()


def test_attachments_over_the_size_cap_are_refused_with_the_limit(
    api: ApiClient, settings: Any
) -> None:
    settings.POSTROOM_MAX_MESSAGE_BYTES = 10_000
    error = error_of(api.post(SEND, a_message(attachments=[pdf(6_000), pdf(6_000)])))
    assert error["field"] == "attachments"
    assert "10,000" in error["message"] or "0.0 MB" in error["message"]
    assert "POSTROOM_MAX_MESSAGE_BYTES" in error["message"]
    huge = error_of(api.post(SEND, a_message(attachments=[pdf(40_000)])))
    assert huge["field"] == "attachments"
    assert not Message.objects.exists()
    assert api.post(SEND, a_message(attachments=[pdf(5_000)])).status_code == 202


def test_a_request_body_over_djangos_limit_is_413_json(api: ApiClient, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    error = error_of(api.post(SEND, a_message(text="x" * 2000)), status=413)
    assert error["code"] == "too_large"


def test_a_body_that_is_not_json_is_400(api: ApiClient) -> None:
    for body in ('{"to": [', "\xff\xfe", "[1, 2]", '"text"'):
        error = error_of(api.post(SEND, body))
        assert error["code"] in {"bad_request", "invalid"}


def test_a_bad_idempotency_key_is_400(api: ApiClient) -> None:
    for key in ("has space", "x" * 188, "ünïcode"):
        error = error_of(api.post(SEND, a_message(), **{"Idempotency-Key": key}))
        assert error["field"] == "Idempotency-Key"
    assert not Message.objects.exists()


def test_a_bad_cursor_is_400_invalid_cursor(api: ApiClient) -> None:
    for cursor in ("nonsense", "bTE6LTE", "bTE6OTk5OTk5OTk5OTk5OTk5OTk5OTk5", "%%%", "bTI6MQ"):
        error = error_of(api.get(SEND, {"cursor": cursor}))
        assert (error["code"], error["field"]) == ("invalid_cursor", "cursor"), cursor


def test_bad_list_filters_are_400(api: ApiClient) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"status": "lost"}, "status"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"recipient": "a\x00b"}, "recipient"),
        ({"unknown": "x"}, "unknown"),
    ]
    for params, field in cases:
        error = error_of(api.get(SEND, params))
        assert error["field"] == field, params


def test_an_id_out_of_range_is_400_not_a_server_error(api: ApiClient) -> None:
    for path in (f"{SEND}/0", f"{SEND}/{2**64}", f"{SEND}/{2**64}/cancel"):
        response = api.post(path) if path.endswith("cancel") else api.get(path)
        assert error_of(response)["field"] == "message_id"
    assert api.get(f"{SEND}/abc").status_code == 400


def test_a_deactivated_or_addressless_user_cannot_send(api: ApiClient, alice: User) -> None:
    alice.is_active = False
    alice.save()
    error = error_of(api.post(SEND, a_message(**{"from": "alice"})))
    assert (error["field"], "deactivated" in error["message"]) == ("from", True)
    alice.is_active = True
    alice.email = ""
    alice.save()
    error = error_of(api.post(SEND, a_message(**{"from": "alice"})))
    assert "no email address" in error["message"]


def test_sending_as_the_company_without_its_address_is_409(api: ApiClient) -> None:
    company = company_get()
    company.sender_email = ""
    company.save()
    error = error_of(api.post(SEND, a_message()), status=409)
    assert (error["code"], error["field"]) == ("configuration", "from")
    assert "Company" in error["message"]


def test_unknown_paths_and_methods_under_the_api_are_json(api: ApiClient) -> None:
    assert error_of(api.get("/api/v1/nothing"), status=404)["code"] == "not_found"
    assert error_of(api.get("/api/v2/messages"), status=404)["code"] == "not_found"


def test_schema_errors_list_every_problem(api: ApiClient) -> None:
    error = error_of(api.post(SEND, {"to": "x", "lane": 5, "subjet": 1}))
    assert {detail["field"] for detail in error["details"]} == {"to", "lane", "subjet"}
    assert "2 more problems" in error["message"]


def test_a_send_at_in_the_past_sends_now(api: ApiClient) -> None:
    past = (timezone.now() - dt.timedelta(days=1)).isoformat()
    assert api.post(SEND, a_message(send_at=past)).status_code == 202
    assert Message.objects.get().next_attempt_at <= timezone.now()


def test_a_wrong_method_is_405_json_with_allow(api: ApiClient) -> None:
    response = api.client.delete("/api/v1/messages", headers={"Authorization": f"Bearer {api.key}"})
    error = error_of(response, status=405)
    assert error["code"] == "method_not_allowed"
    assert set(response["Allow"].split(", ")) == {"GET", "POST"}


def test_union_fields_are_named_as_the_client_sent_them(api: ApiClient) -> None:
    error = error_of(api.post(SEND, a_message(to=[5])))
    assert error["field"] == "to.0"
    error = error_of(api.post(SEND, a_message(to=[{"name": "Bob"}])))
    assert "to.0.email" in {detail["field"] for detail in error["details"]}
