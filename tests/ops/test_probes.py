"""/healthz and /readyz in the test process: no login, no secrets, and what is not ready."""

from __future__ import annotations

import logging

import pytest
from django.core.management import call_command
from django.test import Client
from pytest_django.fixtures import Settings

from postroom.company.selectors import company_get
from postroom.core.secrets import secret_encrypt
from postroom.ops.readiness import NOT_CHECKED

pytestmark = pytest.mark.django_db

ALL_OK = {"database": "ok", "migrations": "ok", "secret_key": "ok"}


def test_healthz_answers_anyone_without_asking_the_database(
    client: Client, django_assert_num_queries: object
) -> None:
    with django_assert_num_queries(0):  # type: ignore[operator]
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"alive": True}
    assert "no-store" in response["Cache-Control"]


def test_readyz_is_200_when_the_database_answers_migrated_with_the_right_key(
    client: Client,
) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"ready": True, "checks": ALL_OK}


def test_the_probes_answer_get_only(client: Client) -> None:
    assert client.post("/readyz").status_code == 405
    assert client.post("/healthz").status_code == 405


@pytest.mark.django_db(transaction=True)
def test_readyz_is_503_naming_the_command_while_a_migration_is_not_applied(
    client: Client,
) -> None:
    call_command("migrate", "ops", "zero", verbosity=0)
    try:
        response = client.get("/readyz")
    finally:
        call_command("migrate", "ops", verbosity=0)
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert response.json()["ready"] is False
    assert checks["database"] == "ok"
    assert checks["migrations"].startswith("1 migration(s) of this version are not applied")
    assert "postroom migrate" in checks["migrations"]
    assert checks["secret_key"] == NOT_CHECKED


def test_readyz_is_503_when_this_process_has_another_secret_key(
    client: Client, settings: Settings
) -> None:
    company = company_get()
    company.smtp_password_encrypted = secret_encrypt("relay-password")
    company.save()
    settings.SECRET_KEY = "another-host-was-given-another-key-" + "x" * 20

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["secret_key"].startswith(
        "this process's POSTROOM_SECRET_KEY does not decrypt the stored secrets"
    )
    assert b"relay-password" not in response.content


def test_a_lasting_problem_is_logged_once_and_its_end_once(
    client: Client, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    company = company_get()
    company.smtp_password_encrypted = secret_encrypt("relay-password")
    company.save()
    right_key = settings.SECRET_KEY
    client.get("/readyz")  # ready: whatever an earlier test left, this is where it starts
    caplog.clear()
    settings.SECRET_KEY = "another-host-was-given-another-key-" + "x" * 20
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            client.get("/readyz")
        settings.SECRET_KEY = right_key
        for _ in range(2):
            client.get("/readyz")
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2, lines
    assert lines[0].startswith("Not ready: secret_key:")
    assert "SMTP" in lines[0] or "password" in lines[0]  # the log names the secret
    assert "relay-password" not in lines[0]
    assert lines[1] == "Ready again."
