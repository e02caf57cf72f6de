"""Fixtures for the API tests: a company address, users, keys and a client that sends a key."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from django.test import Client

from postroom.accounts.api_keys import api_key_create
from postroom.accounts.models import ApiKey, ApiScope, User
from postroom.company.selectors import company_get
from tests.accounts.factories import admin_make, user_make


class ApiClient:
    """Django's test client, with a bearer key and JSON bodies."""

    def __init__(self, key: str | None) -> None:
        self.client = Client()
        self.key = key

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        sent = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        sent.update(headers or {})
        return sent

    def get(self, path: str, params: dict[str, Any] | None = None, **headers: str) -> Any:
        return self.client.get(path, params or {}, headers=self._headers(headers))

    def post(self, path: str, body: Any = None, **headers: str) -> Any:
        data = body if isinstance(body, bytes | str) else json.dumps(body)
        data = "" if body is None else data
        return self.client.post(
            path, data, content_type="application/json", headers=self._headers(headers)
        )


@pytest.fixture
def company() -> Any:
    company = company_get()
    company.name = "Acme"
    company.sender_email = "office@acme.example"
    company.sender_name = "Acme Office"
    company.save()
    return company


@pytest.fixture
def admin() -> User:
    return admin_make("root", email="root@acme.example")


@pytest.fixture
def alice() -> User:
    return user_make("alice", email="alice@acme.example", display_name="Alice Smith")


@pytest.fixture
def bob() -> User:
    return user_make("bob", email="bob@acme.example", display_name="Bob Jones")


KeyMaker = Callable[..., tuple[ApiKey, str]]


@pytest.fixture
def key_make(admin: User) -> KeyMaker:
    def make(
        scopes: Sequence[str] = (ApiScope.SEND, ApiScope.READ),
        *,
        name: str = "ERP",
        sender_user: User | None = None,
        allowed_from: Sequence[str] = (),
        rate_limit_per_minute: int = 600,
    ) -> tuple[ApiKey, str]:
        return api_key_create(
            actor=admin,
            name=name,
            scopes=list(scopes),
            sender_user=sender_user,
            allowed_from=allowed_from,
            rate_limit_per_minute=rate_limit_per_minute,
        )

    return make


@pytest.fixture
def api(key_make: KeyMaker, company: Any) -> ApiClient:
    """A client with an unrestricted send + read key, and the company address set."""
    _, key = key_make()
    return ApiClient(key)
