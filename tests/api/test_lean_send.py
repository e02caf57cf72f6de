"""A single send costs few queries: the key is remembered for a few seconds (and forgotten at
once when revoked here, within AUTH_CACHE_SECONDS when revoked by another process), and the
answer is built from what was stored instead of being read back."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from postroom.accounts.api_keys import (
    AUTH_CACHE_SECONDS,
    UnauthenticatedError,
    api_key_authenticate,
    api_key_revoke,
)
from postroom.accounts.models import ApiKey, User
from tests.api.conftest import ApiClient, KeyMaker

pytestmark = pytest.mark.django_db

SEND = "/api/v1/messages"
BERLIN = ZoneInfo("Europe/Berlin")  # a send_at with an offset other than UTC's


def a_message(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"to": ["bob@example.org"], "subject": "Hello", "text": "Hi Bob"}
    body.update(overrides)
    return body


# --- the key, remembered -------------------------------------------------------------------------


def test_a_checked_key_is_not_read_again_for_a_few_seconds(key_make: KeyMaker) -> None:
    api_key, key = key_make()
    checked_at = time.monotonic()
    assert api_key_authenticate(key=key, now=checked_at).pk == api_key.pk
    with CaptureQueriesContext(connection) as queries:
        again = api_key_authenticate(key=key, now=checked_at + AUTH_CACHE_SECONDS / 2)
    assert again.pk == api_key.pk
    assert len(queries) == 0


def test_a_key_revoked_by_another_process_stops_within_the_cache_seconds(
    key_make: KeyMaker,
) -> None:
    api_key, key = key_make()
    checked_at = time.monotonic()
    api_key_authenticate(key=key, now=checked_at)
    # Another web process revokes it: this one has no word of it but the database.
    ApiKey.objects.filter(pk=api_key.pk).update(revoked_at=timezone.now())
    just_before = checked_at + AUTH_CACHE_SECONDS * 0.99
    assert api_key_authenticate(key=key, now=just_before).pk == api_key.pk
    with pytest.raises(UnauthenticatedError, match="revoked"):
        api_key_authenticate(key=key, now=checked_at + AUTH_CACHE_SECONDS)
    # And it stays refused: a revoked key is never remembered as valid.
    with pytest.raises(UnauthenticatedError, match="revoked"):
        api_key_authenticate(key=key, now=checked_at + AUTH_CACHE_SECONDS + 0.1)


def test_a_key_revoked_in_this_process_stops_at_once(key_make: KeyMaker, admin: User) -> None:
    api_key, key = key_make()
    checked_at = time.monotonic()
    api_key_authenticate(key=key, now=checked_at)
    api_key_revoke(actor=admin, api_key=api_key)
    with pytest.raises(UnauthenticatedError, match="revoked"):
        api_key_authenticate(key=key, now=checked_at)


def test_a_wrong_secret_with_a_known_prefix_is_never_taken_from_memory(
    key_make: KeyMaker,
) -> None:
    _, key = key_make()
    checked_at = time.monotonic()
    api_key_authenticate(key=key, now=checked_at)
    wrong = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    with pytest.raises(UnauthenticatedError, match="not known"):
        api_key_authenticate(key=wrong, now=checked_at)


def test_a_revoked_key_is_refused_over_http_on_the_next_call(
    key_make: KeyMaker, admin: User, company: Any
) -> None:
    api_key, key = key_make()
    client = ApiClient(key)
    assert client.post(SEND, a_message()).status_code == 202
    assert client.post(SEND, a_message()).status_code == 202  # the remembered key
    api_key_revoke(actor=admin, api_key=api_key)
    assert client.post(SEND, a_message()).status_code == 401


def test_each_call_is_still_counted_against_the_rate_limit(
    key_make: KeyMaker, company: Any
) -> None:
    api_key, key = key_make(rate_limit_per_minute=5)
    client = ApiClient(key)
    minute = int(timezone.now().timestamp()) // 60
    for _ in range(3):
        client.get(SEND)
    if int(timezone.now().timestamp()) // 60 == minute:  # the counting window did not turn
        assert ApiKey.objects.get(pk=api_key.pk).rate_count == 3


# --- the send, lean --------------------------------------------------------------------------


def test_a_send_costs_eight_queries_once_the_key_is_remembered(api: ApiClient) -> None:
    api.post(SEND, a_message())
    with CaptureQueriesContext(connection) as queries:
        response = api.post(SEND, a_message(to=["carol@example.org", "dave@example.org"]))
    assert response.status_code == 202
    # A statement run for several rows is logged as "<n> times: INSERT …".
    statements = [query["sql"].split(": ")[-1].split()[0].upper() for query in queries]
    # The rate-limit count, the company's address; the message, its recipients and its
    # event, in one transaction (a savepoint inside the test's); is sending paused.
    assert statements == [
        "UPDATE",
        "SELECT",
        "SAVEPOINT",
        "INSERT",
        "INSERT",
        "INSERT",
        "RELEASE",
        "SELECT",
    ], [query["sql"] for query in queries]


def test_the_202_answer_is_what_reading_the_message_back_gives(api: ApiClient, alice: User) -> None:
    sent = api.post(
        SEND,
        a_message(
            **{"from": "alice"},
            to=["Bob Jones <bob@example.org>"],
            cc=["carol@example.org"],
            bcc=["audit@acme.example"],
            html="<p>Hi Bob</p>",
            send_at=(timezone.now() + dt.timedelta(days=30)).astimezone(BERLIN).isoformat(),
        ),
    )
    assert sent.status_code == 202
    read_back = api.get(f"{SEND}/{sent.json()['id']}")
    assert sent.json() == read_back.json()
