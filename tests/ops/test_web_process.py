"""A web process as deploy/systemd/postroom-web.service starts it (gunicorn, production
settings of deploy/postroom.env.example) whose database does not answer: alive, not ready,
and saying so without naming the database's host or user."""

from __future__ import annotations

import secrets
from pathlib import Path

from tests.ops.deployment import (
    example_environment,
    free_port,
    option_set,
    services_running,
    unit_command,
    wait_for_http,
)
from tests.support.smtpd import closed_port

TOKEN = secrets.token_hex(32)


def test_without_its_database_a_web_process_is_alive_but_not_ready(tmp_path: Path) -> None:
    with closed_port() as database_port, services_running(tmp_path) as services:
        env = example_environment(
            POSTROOM_DATABASE_URL=f"postgres://dbuser@127.0.0.1:{database_port}/postroom",
            POSTROOM_SECRET_KEY=secrets.token_urlsafe(48),
            POSTROOM_DATA_DIR=str(tmp_path / "data"),
            POSTROOM_METRICS_TOKEN=TOKEN,
        )
        port = free_port()
        command = option_set(unit_command("postroom-web.service"), "--bind", f"127.0.0.1:{port}")
        web = services.start("web", option_set(command, "--workers", "1"), env, port=port)

        assert wait_for_http(web, "/healthz", status=200, services=services).json() == {
            "alive": True
        }
        not_ready = wait_for_http(web, "/readyz", status=503, services=services)
        with web.client() as client:
            metrics = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})

    checks = not_ready.json()["checks"]
    assert checks["database"].startswith("the database does not answer")
    assert checks["migrations"].startswith("not checked")
    assert "dbuser" not in not_ready.text and str(database_port) not in not_ready.text
    assert metrics.status_code == 503
    log = web.output()
    assert "Not ready: database" in log and str(database_port) in log  # the log says why
    assert log.count("Not ready: database") == 1  # once, however often it was asked
