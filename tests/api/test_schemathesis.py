"""schemathesis against the API's own OpenAPI schema: no generated input makes a 500.

It runs in-process through Postroom's WSGI application, with a valid key holding every
scope, so requests reach the operations rather than stopping at 401. Both inputs that fit
the schema and inputs that break it (negative mode) are generated, a bounded number per
operation so the suite stays fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from postroom.accounts.models import ApiScope, User
from tests.api.conftest import ApiClient, KeyMaker

# Enough to try every field with fitting and unfitting values, under a minute for the file.
EXAMPLES_PER_OPERATION = 30


@pytest.fixture
def api_key_header(db: None, key_make: KeyMaker, company: Any, alice: User) -> dict[str, str]:
    # Well above what the examples send in a minute: the run tests input, not the limit.
    _, key = key_make(scopes=[ApiScope.ADMIN], rate_limit_per_minute=100_000)
    client = ApiClient(key)
    for index in range(3):  # some rows, so reads, changes and cancels find them
        client.post(
            "/api/v1/messages",
            {"from": "alice", "to": [f"r{index}@example.org"], "subject": "s", "text": "t"},
        )
        client.post("/api/v1/contacts", {"email": f"c{index}@example.org", "tags": ["t"]})
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def keep_test_connection() -> Iterator[None]:
    """Let the WSGI handler reuse the test's database connection.

    A real server closes the connection after each request; here it holds the test's
    transaction, so closing it would end the test. Django's test client does the same.
    """
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


# Loaded when the module is collected: the schema view needs no database. (The lazy
# `schemathesis.pytest.from_fixture` would fit better, but 4.32 reaches into a private
# attribute pytest 9 no longer has.)
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    database=None,  # no .hypothesis/ folder in the working tree
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_no_generated_request_makes_a_server_error(
    case: Any, api_key_header: dict[str, str], keep_test_connection: None
) -> None:
    response = case.call(headers=api_key_header)
    case.validate_response(response, checks=[not_a_server_error])
