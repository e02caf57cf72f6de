"""The API documentation is served by Postroom itself, works offline, and needs no login."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from tests.api.conftest import ApiClient

pytestmark = pytest.mark.django_db


def test_the_openapi_schema_describes_every_endpoint_and_the_bearer_key() -> None:
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    operations = {
        (method.upper(), path) for path, methods in schema["paths"].items() for method in methods
    }
    assert {
        ("POST", "/api/v1/messages"),
        ("GET", "/api/v1/messages"),
        ("GET", "/api/v1/messages/{message_id}"),
        ("POST", "/api/v1/messages/{message_id}/cancel"),
        ("GET", "/api/v1/key"),
    } <= operations
    assert schema["components"]["securitySchemes"]["ApiKeyAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }
    send = schema["paths"]["/api/v1/messages"]["post"]
    assert {"202", "200", "400", "401", "403", "429"} <= set(send["responses"])
    assert "Idempotency-Key" in [p["name"] for p in send["parameters"]]


def test_the_docs_page_loads_without_login_and_without_the_internet() -> None:
    client = Client()
    response = client.get("/api/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/api/v1/openapi.json" in html
    # Every script and style sheet comes from Postroom itself: no CDN.
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets, html
    assert not [url for url in assets if "//" in url], assets
    scripts = [url for url in assets if url.endswith(".js")]
    assert any("swagger-ui-bundle" in url for url in scripts)
    for url in assets:
        asset: Any = client.get(url)
        assert asset.status_code == 200, url
        assert b"".join(asset.streaming_content if asset.streaming else [asset.content])


def test_api_calls_need_no_session_and_no_csrf_token(api: ApiClient) -> None:
    strict = Client(enforce_csrf_checks=True)
    response = strict.post(
        "/api/v1/messages",
        '{"to": ["bob@example.org"], "subject": "Hi", "text": "Hello"}',
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.key}"},
    )
    assert response.status_code == 202, response.content
    # No redirect to the login page, as pages without a session get.
    anonymous: Any = Client().get("/api/v1/messages")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthenticated"


def test_a_logged_in_session_is_no_api_key(admin_client: Client) -> None:
    # Cookies must not authenticate API calls, or any page could forge them (CSRF).
    response = admin_client.get("/api/v1/messages")
    assert response.status_code == 401
