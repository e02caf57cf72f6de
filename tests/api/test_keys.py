"""API keys: shown once, stored hashed, revocable, scoped, sender-restricted, rate-limited."""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from postroom.accounts.api_keys import (
    RateLimitedError,
    api_key_count_request,
    api_key_hash,
    api_key_revoke,
)
from postroom.accounts.models import ApiKey, ApiScope, User
from postroom.audit.models import AuditEntry
from postroom.core.errors import ValidationError
from postroom.outbox.models import Message
from tests.api.conftest import ApiClient, KeyMaker

pytestmark = pytest.mark.django_db

SEND = "/api/v1/messages"


def a_message(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"to": ["bob@example.org"], "subject": "Hello", "text": "Hi Bob"}
    body.update(overrides)
    return body


def every_stored_text() -> str:
    """Every value of every row of every table, as text: where a leaked key would be."""
    chunks: list[str] = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')
            for row in cursor.fetchall():
                chunks.extend(
                    bytes(value).decode("latin-1")
                    if isinstance(value, bytes | memoryview)
                    else str(value)
                    for value in row
                )
    return "\n".join(chunks)


def test_a_new_key_has_the_documented_form_and_only_its_hash_is_stored(
    key_make: KeyMaker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api_key, key = key_make(name="ERP")
    match = re.fullmatch(r"pr_([0-9a-f]{8})_([A-Za-z0-9_-]{43})", key)
    assert match is not None
    assert match.group(1) == api_key.prefix
    assert api_key.key_hash == api_key_hash(key)
    secret = match.group(2)
    stored = every_stored_text()
    assert key not in stored
    assert secret not in stored
    assert secret not in caplog.text
    assert api_key.prefix in stored  # the public part is what finds the row


def test_creating_and_revoking_a_key_is_audited_without_the_key(
    key_make: KeyMaker, admin: User
) -> None:
    api_key, key = key_make(name="Shop", scopes=[ApiScope.SEND])
    api_key_revoke(actor=admin, api_key=api_key)
    entries = list(AuditEntry.objects.filter(action__startswith="api_key.").order_by("id"))
    assert [entry.action for entry in entries] == ["api_key.created", "api_key.revoked"]
    assert all(entry.subject == f"API key Shop ({api_key.prefix})" for entry in entries)
    assert all(entry.actor_name == "root" for entry in entries)
    assert key.split("_", 2)[2] not in str([entry.changes for entry in entries])


def test_a_key_cannot_be_revoked_twice(key_make: KeyMaker, admin: User) -> None:
    api_key, _ = key_make()
    api_key_revoke(actor=admin, api_key=api_key)
    with pytest.raises(ValidationError, match="already revoked"):
        api_key_revoke(actor=admin, api_key=api_key)


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "Bearer"),
        ("Bearer pr_0000000_nope", "malformed"),
        ("Bearer pr_00000000_" + "x" * 43, "not known"),
        ("Basic dXNlcjpwYXNz", "Bearer scheme"),
    ],
)
def test_a_missing_malformed_or_unknown_key_is_401_json(
    company: Any, authorization: str | None, message: str
) -> None:
    client = ApiClient(None)
    headers = {"Authorization": authorization} if authorization else {}
    response = client.post(SEND, a_message(), **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    error = response.json()["error"]
    assert error["code"] == "unauthenticated"
    assert message in error["message"]
    assert not Message.objects.exists()


def test_a_key_with_a_wrong_secret_is_401(key_make: KeyMaker, company: Any) -> None:
    _, key = key_make()
    wrong = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    response = ApiClient(wrong).post(SEND, a_message())
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


def test_a_revoked_key_is_401_and_says_so(key_make: KeyMaker, admin: User, company: Any) -> None:
    api_key, key = key_make()
    client = ApiClient(key)
    assert client.post(SEND, a_message()).status_code == 202
    api_key_revoke(actor=admin, api_key=api_key)
    response = client.post(SEND, a_message())
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]
    assert Message.objects.count() == 1


def test_a_key_without_the_scope_is_403_and_names_it(key_make: KeyMaker, company: Any) -> None:
    _, key = key_make(scopes=[ApiScope.READ])
    client = ApiClient(key)
    response = client.post(SEND, a_message())
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "missing_scope"
    assert "'send'" in error["message"]
    assert not Message.objects.exists()
    assert client.get(SEND).status_code == 200


def test_a_send_only_key_cannot_read(key_make: KeyMaker, company: Any) -> None:
    _, key = key_make(scopes=[ApiScope.SEND])
    response = ApiClient(key).get(SEND)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "missing_scope"


def test_the_admin_scope_includes_the_others(key_make: KeyMaker, company: Any) -> None:
    _, key = key_make(scopes=[ApiScope.ADMIN])
    client = ApiClient(key)
    assert client.post(SEND, a_message()).status_code == 202
    assert client.get(SEND).status_code == 200


def test_a_key_restricted_to_one_user_cannot_send_as_another(
    key_make: KeyMaker, company: Any, alice: User, bob: User
) -> None:
    _, key = key_make(sender_user=alice)
    client = ApiClient(key)
    for sender in ("bob", "bob@acme.example", "company"):
        response = client.post(SEND, a_message(**{"from": sender}))
        assert response.status_code == 403, sender
        error = response.json()["error"]
        assert error["code"] == "sender_not_allowed"
        assert error["field"] == "from"
        assert "user alice" in error["message"]
    assert not Message.objects.exists()
    response = client.post(SEND, a_message(**{"from": "alice"}))
    assert response.status_code == 202
    assert response.json()["from"] == "Alice Smith <alice@acme.example>"


def test_a_key_restricted_to_one_user_sends_as_that_user_by_default(
    key_make: KeyMaker, company: Any, alice: User
) -> None:
    _, key = key_make(sender_user=alice)
    response = ApiClient(key).post(SEND, a_message())
    assert response.status_code == 202
    message = Message.objects.get()
    assert message.envelope_from == "alice@acme.example"
    assert message.sender_user == alice


def test_a_key_may_send_from_its_allowed_addresses_only(
    key_make: KeyMaker, company: Any, alice: User
) -> None:
    _, key = key_make(allowed_from=["Invoices@Acme.example"])
    client = ApiClient(key)
    response = client.post(SEND, a_message(**{"from": "Billing <invoices@acme.example>"}))
    assert response.status_code == 202
    assert response.json()["from"] == "Billing <invoices@acme.example>"
    for sender in ("alice", "company", "sales@acme.example"):
        response = client.post(SEND, a_message(**{"from": sender}))
        assert response.status_code == 403, sender
        assert response.json()["error"]["code"] == "sender_not_allowed"


def test_an_unrestricted_key_sends_as_the_company_or_a_user_but_no_other_address(
    api: ApiClient, alice: User
) -> None:
    assert api.post(SEND, a_message()).json()["from"] == "Acme Office <office@acme.example>"
    assert api.post(SEND, a_message(**{"from": "ALICE"})).json()["envelope_from"] == (
        "alice@acme.example"
    )
    response = api.post(SEND, a_message(**{"from": "ceo@acme.example"}))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "sender_not_allowed"


def test_a_restricted_key_reads_only_its_senders_messages(
    key_make: KeyMaker, api: ApiClient, alice: User, bob: User
) -> None:
    bobs = api.post(SEND, a_message(**{"from": "bob"})).json()["id"]
    _, key = key_make(sender_user=alice)
    alice_client = ApiClient(key)
    alices = alice_client.post(SEND, a_message()).json()["id"]
    assert [item["id"] for item in alice_client.get(SEND).json()["items"]] == [alices]
    response = alice_client.get(f"{SEND}/{bobs}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert alice_client.post(f"{SEND}/{bobs}/cancel").status_code == 404


def test_the_key_endpoint_describes_the_key_without_its_secret(
    key_make: KeyMaker, alice: User
) -> None:
    api_key, key = key_make(name="Shop", scopes=[ApiScope.READ], sender_user=alice)
    response = ApiClient(key).get("/api/v1/key")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Shop"
    assert body["prefix"] == api_key.prefix
    assert body["scopes"] == ["read"]
    assert body["sender_user"] == "alice"
    assert key.split("_", 2)[2] not in response.content.decode()


# --- rate limit and last use --------------------------------------------------------------


def test_the_counter_allows_the_limit_per_minute_then_says_when_to_retry(
    key_make: KeyMaker,
) -> None:
    api_key, _ = key_make(rate_limit_per_minute=3)
    start = dt.datetime(2030, 1, 1, 9, 0, 10, tzinfo=dt.UTC)
    for second in (0, 1, 2):
        api_key_count_request(api_key=api_key, now=start + dt.timedelta(seconds=second))
    with pytest.raises(RateLimitedError) as raised:
        api_key_count_request(api_key=api_key, now=start + dt.timedelta(seconds=30))
    assert raised.value.retry_after == 20  # 09:00:40 → the window ends at 09:01:00
    # The next minute is a new window.
    api_key_count_request(api_key=api_key, now=start + dt.timedelta(seconds=50))


def test_last_used_is_written_at_most_once_a_minute(key_make: KeyMaker) -> None:
    api_key, _ = key_make()
    start = dt.datetime(2030, 1, 1, 9, 0, 5, tzinfo=dt.UTC)
    api_key_count_request(api_key=api_key, now=start)
    api_key_count_request(api_key=api_key, now=start + dt.timedelta(seconds=40))
    api_key.refresh_from_db()
    assert api_key.last_used_at == start
    assert api_key.rate_count == 2
    api_key_count_request(api_key=api_key, now=start + dt.timedelta(seconds=61))
    api_key.refresh_from_db()
    assert api_key.last_used_at == start + dt.timedelta(seconds=61)
    assert api_key.rate_count == 1


def _not_at_the_end_of_a_minute() -> None:
    # The two requests below must fall in one counting window (a minute).
    seconds = timezone.now().timestamp() % 60
    if seconds > 58:
        time.sleep(60.5 - seconds)


def test_a_key_over_its_rate_limit_gets_429_with_retry_after(
    key_make: KeyMaker, company: Any
) -> None:
    _, key = key_make(rate_limit_per_minute=1)
    client = ApiClient(key)
    _not_at_the_end_of_a_minute()
    assert client.get(SEND).status_code == 200
    response = client.get(SEND)
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    error = response.json()["error"]
    assert error["code"] == "rate_limited"
    assert "1 requests a minute" in error["message"]


def test_keys_are_rate_limited_separately(key_make: KeyMaker, company: Any) -> None:
    _, first = key_make(rate_limit_per_minute=1)
    _, second = key_make(rate_limit_per_minute=1)
    _not_at_the_end_of_a_minute()
    assert ApiClient(first).get(SEND).status_code == 200
    assert ApiClient(first).get(SEND).status_code == 429
    assert ApiClient(second).get(SEND).status_code == 200


def test_a_request_records_the_last_use_shown_on_the_keys_page(
    key_make: KeyMaker, company: Any
) -> None:
    api_key, key = key_make()
    assert api_key.last_used_at is None
    ApiClient(key).get(SEND)
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at is not None
