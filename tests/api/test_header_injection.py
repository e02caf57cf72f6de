"""The encoded-word header injection of issue 7 through the HTTP API: every text that becomes a
header or a MIME parameter is refused with 400 naming the field, and nothing is queued."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest

from postroom.accounts.models import ApiScope
from postroom.outbox.models import Message
from tests.api.conftest import ApiClient, KeyMaker

pytestmark = pytest.mark.django_db

SEND = "/api/v1/messages"
# Seen on the wire before the fix: it ended the header block and injected body HTML.
INJECTION = "=?utf-8?q?x=0D=0A=0D=0A<h1>Pay_here</h1>?="
# The same as a "Name <address>" string (without specials, which would not parse as a name).
NAME_ADDR_INJECTION = "=?utf-8?q?x=0D=0AX-Injected=3A_1?= <bob@example.org>"


@pytest.fixture
def api(company: Any, key_make: KeyMaker) -> ApiClient:
    _, key = key_make([ApiScope.SEND, ApiScope.READ])
    return ApiClient(key)


def a_message(**fields: Any) -> dict[str, Any]:
    return {"to": ["bob@example.org"], "subject": "Invoice", "text": "Hello", **fields}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (a_message(to=[{"email": "bob@example.org", "name": INJECTION}]), "to"),
        (a_message(cc=[{"email": "eve@example.org", "name": INJECTION}]), "cc"),
        (a_message(reply_to=[{"email": "desk@example.org", "name": INJECTION}]), "reply_to"),
        (a_message(to=[NAME_ADDR_INJECTION]), "to"),
        (a_message(subject=INJECTION), "subject"),
        (a_message(headers={"X-Order": INJECTION}), "headers"),
        (
            a_message(
                attachments=[
                    {
                        "filename": INJECTION,
                        "content_type": "application/pdf",
                        "content": base64.b64encode(b"%PDF").decode(),
                    }
                ]
            ),
            "attachments",
        ),
    ],
)
def test_an_encoded_line_break_is_refused_naming_the_field(
    api: ApiClient, body: dict[str, Any], field: str
) -> None:
    response = api.post(SEND, body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["field"] == field
    # A "Name <address>" string with it does not even parse as an address: also refused.
    assert re.search("line break|encoded word|is not an address", error["message"])
    assert not Message.objects.exists()
