"""Signing, payloads and the retry schedule: pure functions, no socket, no database."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json

import pytest

from postroom.core.errors import ValidationError
from postroom.webhooks import signing
from postroom.webhooks.retry import WebhookRetryPolicy, retry_after_parse
from tests.webhooks.conftest import expected_signature
from tests.webhooks.receiver import ReceivedRequest

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


def test_a_secret_is_whsec_and_32_random_bytes_in_base64() -> None:
    secret = signing.secret_generate()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[6:], validate=True)) == 32
    assert signing.secret_generate() != secret
    assert signing.secret_key(secret) == base64.b64decode(secret[6:])


@pytest.mark.parametrize(
    "bad", ["", "whsec_", "sk_" + "A" * 44, "whsec_not base64!", "whsec_" + "QUFB" * 4]
)
def test_a_malformed_secret_is_refused_without_repeating_it(bad: str) -> None:
    with pytest.raises(ValidationError) as caught:
        signing.secret_key(bad)
    if bad[6:]:
        assert bad[6:] not in caught.value.message


def test_the_signature_is_hmac_sha256_over_id_timestamp_and_body() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"id":"evt_1","type":"message.sent"}'
    headers = signing.request_headers(
        keys=[signing.secret_key(secret)], webhook_id="evt_1", timestamp=1674087231, body=body
    )
    request = ReceivedRequest(method="POST", path="/", headers=headers, body=body)
    assert headers["webhook-signature"] == expected_signature(secret, request)
    assert headers["webhook-id"] == "evt_1"
    assert headers["webhook-timestamp"] == "1674087231"
    assert headers["user-agent"] == "Postroom-Webhooks/1"
    assert headers["content-type"] == "application/json"


def test_the_signature_matches_the_standard_webhooks_example_vector() -> None:
    # The reference libraries' test vector: this secret, id, timestamp and body sign to this.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    signed = signing.signature(
        key=signing.secret_key(secret),
        webhook_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
        timestamp=1614265330,
        body=body,
    )
    key = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    digest = hmac.new(key, b"msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330." + body, hashlib.sha256)
    assert signed == "v1," + base64.b64encode(digest.digest()).decode()
    assert signed == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_two_keys_give_two_space_separated_signatures_current_first() -> None:
    new, old = signing.secret_generate(), signing.secret_generate()
    body = b"{}"
    headers = signing.request_headers(
        keys=[signing.secret_key(new), signing.secret_key(old)],
        webhook_id="evt_9",
        timestamp=1700000000,
        body=body,
    )
    request = ReceivedRequest(method="POST", path="/", headers=headers, body=body)
    assert headers["webhook-signature"].split(" ") == [
        expected_signature(new, request),
        expected_signature(old, request),
    ]


def test_the_body_is_compact_ascii_json_with_id_type_created_at_and_data() -> None:
    body = signing.payload_body(
        webhook_id="evt_7",
        event_type="message.sent",
        created_at=dt.datetime(
            2026, 11, 27, 13, 0, 5, 123456, tzinfo=dt.timezone(dt.timedelta(hours=1))
        ),
        data={"recipient": "zoë@example.net", "code": 250},
    )
    assert body.isascii()
    assert " " not in body
    assert json.loads(body) == {
        "id": "evt_7",
        "type": "message.sent",
        "created_at": "2026-11-27T12:00:05.123456Z",
        "data": {"recipient": "zoë@example.net", "code": 250},
    }


def test_backoff_doubles_from_30_seconds_to_an_hour() -> None:
    policy = WebhookRetryPolicy()
    delays = [policy.delay(n).total_seconds() for n in range(1, 11)]
    assert delays == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]


def test_retries_stop_three_days_after_the_delivery_was_created() -> None:
    policy = WebhookRetryPolicy()
    created = NOW - dt.timedelta(days=3) + dt.timedelta(minutes=5)
    assert policy.next_attempt_at(
        failed_attempts=1, created_at=created, now=NOW
    ) == NOW + dt.timedelta(seconds=30)
    assert policy.next_attempt_at(failed_attempts=9, created_at=created, now=NOW) is None


def test_retry_after_is_honoured_up_to_an_hour() -> None:
    policy = WebhookRetryPolicy()
    later = policy.next_attempt_at(
        failed_attempts=1, created_at=NOW, now=NOW, retry_after=dt.timedelta(seconds=600)
    )
    assert later == NOW + dt.timedelta(seconds=600)
    capped = policy.next_attempt_at(
        failed_attempts=1, created_at=NOW, now=NOW, retry_after=dt.timedelta(days=2)
    )
    assert capped == NOW + dt.timedelta(hours=1)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120),
        (" 5 ", 5),
        ("Fri, 27 Nov 2026 12:02:00 GMT", 120),
        ("Fri, 27 Nov 2026 11:00:00 GMT", 0),
        ("99999999999999999999999", 10**10),
        ("soon", None),
        ("²", None),
        ("", None),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(header: str, seconds: int | None) -> None:
    parsed = retry_after_parse(header, now=NOW)
    assert (parsed.total_seconds() if parsed is not None else None) == seconds
