"""The production topology of docs/deployment.md, started on loopback and sent through.

A fresh PostgreSQL database; two web hosts, each gunicorn with its worker processes as
deploy/systemd/postroom-web.service starts it; two `postroom worker` processes as
postroom-worker.service starts them; two SMTP listeners as postroom-smtpd.service does; every
process with the settings of
deploy/postroom.env.example (production mode). The company relay is a real SMTP server on
loopback with STARTTLS and AUTH, its certificate signed by a CA Postroom is told to trust.

The steps are the deployment guide's: the web processes are alive but not ready until
`postroom migrate` has run; an administrator and an API key are made with Postroom's own
command and services; then mail sent through the API to either web host is delivered once,
and both hosts' /readyz and /metrics say so.
"""

from __future__ import annotations

import email
import secrets
import smtplib
import ssl
import subprocess
from email.policy import default as default_policy
from pathlib import Path

import psycopg
import pytest

from tests.ops.deployment import (
    Service,
    Services,
    example_environment,
    free_port,
    fresh_postgres_database,
    metric_samples,
    option_set,
    poll_until,
    services_running,
    unit_command,
    wait_for_http,
)
from tests.support.certs import CertAuthority
from tests.support.smtpd import ScriptedSmtpServer, SmtpdScript

pytestmark = pytest.mark.topology

# Each web host's gunicorn runs this many worker processes (the unit says 4, for a server's
# cores; this machine has two, and the rest of the suite runs beside this test).
PROCESSES_PER_WEB_HOST = "2"
MESSAGES_PER_WEB_HOST = 10
ADMIN_EMAIL = "ops@acme.example"
RELAY_LOGIN, RELAY_PASSWORD = "postroom", "relay-password-0123"
ACCEPTED = "postroom_outbox_messages_accepted_total"
ATTEMPTS = "postroom_outbox_delivery_attempts_total"


def test_mail_sent_to_either_web_host_is_delivered_once_by_the_workers(
    tmp_path: Path, test_ca: CertAuthority
) -> None:
    relay_script = SmtpdScript(cert=test_ca.issue(), users={RELAY_LOGIN: RELAY_PASSWORD})
    with (
        fresh_postgres_database("postroom_topology") as database_url,
        ScriptedSmtpServer(relay_script) as relay,
        services_running(tmp_path) as services,
    ):
        env = example_environment(
            POSTROOM_DATABASE_URL=database_url,
            POSTROOM_SECRET_KEY=secrets.token_urlsafe(48),
            POSTROOM_DATA_DIR=str(tmp_path / "data"),
            POSTROOM_METRICS_TOKEN=secrets.token_hex(32),
        )
        webs = [web_host_start(services, env, name) for name in ("web-a", "web-b")]
        for web in webs:
            wait_for_http(web, "/healthz", status=200, services=services)
            not_ready = wait_for_http(web, "/readyz", status=503, services=services).json()
            assert "postroom migrate" in not_ready["checks"]["migrations"], not_ready

        postroom(env, "migrate", "--no-input")
        postroom(env, "createadmin", "--no-input", "--username", "ops", "--email", ADMIN_EMAIL)
        key = company_and_api_key_set(env, relay, ca_pem=test_ca.pem)
        for web in webs:
            ready = wait_for_http(web, "/readyz", status=200, services=services).json()
            assert ready == {
                "ready": True,
                "checks": {"database": "ok", "migrations": "ok", "secret_key": "ok"},
            }
        for name in ("worker-1", "worker-2"):
            command = [*unit_command("postroom-worker.service"), "--name", f"topology-{name}"]
            services.start(name, command, env)

        queued = send_through_api(webs, key, services)
        through_smtp = send_through_listeners(env, services, tmp_path)

        delivered = relay.wait_for_messages(len(queued) + len(through_smtp), timeout=60)
        message_ids = [parsed_message_id(message.content) for message in delivered]
        expected = [*queued.values(), *through_smtp]
        assert sorted(message_ids) == sorted(expected), services.logs()
        assert all(message.is_tls and message.login == RELAY_LOGIN for message in delivered)
        assert workers_that_delivered(database_url) <= {"topology-worker-1", "topology-worker-2"}
        statuses_check(webs, key, queued)
        for web in webs:
            metrics_check(
                web, env["POSTROOM_METRICS_TOKEN"], api=len(queued), smtp=len(through_smtp)
            )


def web_host_start(services: Services, env: dict[str, str], name: str) -> Service:
    """One web host: gunicorn as the unit starts it, on its own port."""
    port = free_port()
    command = unit_command("postroom-web.service")
    command = option_set(command, "--bind", f"127.0.0.1:{port}")
    command = option_set(command, "--workers", PROCESSES_PER_WEB_HOST)
    return services.start(name, command, env, port=port)


def postroom(env: dict[str, str], *arguments: str) -> str:
    """Run a `postroom` command to its end, as an operator does on one host; its output."""
    command = [unit_command("postroom-worker.service")[0], *arguments]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"postroom {' '.join(arguments)}:\n{result.stderr}"
    return result.stdout


def company_and_api_key_set(env: dict[str, str], relay: ScriptedSmtpServer, *, ca_pem: str) -> str:
    """Point the company at the relay (STARTTLS required, AUTH, the test CA trusted) and make
    an API key for the ERP, through Postroom's own code in `postroom shell`; the key."""
    code = f"""
from postroom.accounts.api_keys import api_key_create
from postroom.accounts.models import User
from postroom.company.selectors import company_get
from postroom.core.secrets import secret_encrypt

company = company_get()
company.name = company.sender_name = "Acme"
company.sender_email = "office@acme.example"
company.smtp_host, company.smtp_port = "localhost", {relay.port}
company.smtp_secure_required = True
company.smtp_login = {RELAY_LOGIN!r}
company.smtp_password_encrypted = secret_encrypt({RELAY_PASSWORD!r})
company.smtp_ca_certificate = {ca_pem!r}
company.save()
_, key = api_key_create(
    actor=User.objects.get(username="ops"), name="ERP invoices", scopes=["send", "read"]
)
print(key)
"""
    return postroom(env, "shell", "-c", code).strip().splitlines()[-1]


def send_through_api(webs: list[Service], key: str, services: Services) -> dict[int, str]:
    """Send MESSAGES_PER_WEB_HOST messages through each web host; id -> Message-ID."""
    queued: dict[int, str] = {}
    for web in webs:
        with web.client() as client:
            for n in range(MESSAGES_PER_WEB_HOST):
                response = client.post(
                    "/api/v1/messages",
                    headers={"Authorization": f"Bearer {key}"},
                    json={
                        "from": "company",
                        "to": [f"Customer {n} <customer{n}@example.net>"],
                        "subject": f"Invoice {web.name}-{n}",
                        "text": f"Your invoice {n}, sent through {web.name}.",
                    },
                )
                assert response.status_code == 202, f"{response.text}\n{services.logs()}"
                queued[response.json()["id"]] = response.json()["message_id"]
    return queued


def send_through_listeners(env: dict[str, str], services: Services, tmp_path: Path) -> list[str]:
    """Two SMTP listener "hosts" as deploy/systemd/postroom-smtpd.service starts them (each
    with its own data directory, so its own self-signed certificate), an SMTP credential made
    with Postroom's own code, and one message through each with smtplib (STARTTLS, AUTH);
    their Message-IDs."""
    code = """
from postroom.smtpd.services import CredentialSettings, credential_create
settings = CredentialSettings(name="ERP", allowed_senders=("@acme.example",))
print(credential_create(actor=None, username="erp", values=settings)[1])
"""
    password = postroom(env, "shell", "-c", code).strip().splitlines()[-1]
    message_ids = []
    for host in ("smtpd-a", "smtpd-b"):
        port, data_dir = free_port(), tmp_path / host
        data_dir.mkdir(mode=0o700)  # systemd's StateDirectory= makes it on a real host
        host_env = {**env, "POSTROOM_SMTPD_PORT": str(port), "POSTROOM_DATA_DIR": str(data_dir)}
        listener = services.start(host, unit_command("postroom-smtpd.service"), host_env)
        poll_until(
            lambda listener=listener: "SMTP listener on" in listener.output(),  # type: ignore[misc]
            what=f"{host} to listen",
        )
        context = ssl.create_default_context(cafile=str(data_dir / "smtpd-cert.pem"))
        message_id = f"<{host}-0001@erp.acme.example>"
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.starttls(context=context)
            poll_until(lambda: _logs_in(client, password), what=f"{host} to know the credential")
            client.sendmail(
                "invoices@acme.example",
                ["customer@example.net"],
                f"From: invoices@acme.example\r\nTo: customer@example.net\r\n"
                f"Subject: Invoice through {host}\r\nMessage-ID: {message_id}\r\n\r\nHi.\r\n",
            )
        message_ids.append(message_id)
    return message_ids


def _logs_in(client: smtplib.SMTP, password: str) -> bool:
    try:
        client.login("erp", password)
    except smtplib.SMTPAuthenticationError:
        return False
    return True


def parsed_message_id(content: bytes) -> str:
    return str(email.message_from_bytes(content, policy=default_policy)["Message-ID"])


def workers_that_delivered(database_url: str) -> set[str]:
    with psycopg.connect(database_url) as connection:
        rows = connection.execute("SELECT DISTINCT worker FROM outbox_attempt").fetchall()
    return {worker for (worker,) in rows}


def statuses_check(webs: list[Service], key: str, queued: dict[int, str]) -> None:
    """Each web host reports every message sent, whichever host accepted it (once the worker
    has recorded what the relay answered)."""
    for web in webs:
        with web.client() as client:

            def statuses() -> set[str]:
                return {
                    client.get(
                        f"/api/v1/messages/{message_id}",
                        headers={"Authorization": f"Bearer {key}"},
                    ).json()["status"]
                    for message_id in queued
                }

            poll_until(lambda: statuses() == {"sent"}, what=f"{web.name} to report all sent")


def metrics_check(web: Service, token: str, *, api: int, smtp: int) -> None:
    with web.client() as client:
        assert client.get("/metrics").status_code == 401
        response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    samples = metric_samples(response.text)
    assert samples[(ACCEPTED, (("lane", "transactional"), ("source", "api")))] == api
    assert samples[(ACCEPTED, (("lane", "bulk"), ("source", "smtp")))] == smtp
    assert samples[(ATTEMPTS, (("classification", "success"),))] == api + smtp
    queue = [value for (name, _), value in samples.items() if name.endswith("queue_messages")]
    assert queue and not any(queue), "mail still in the queue after delivery"
    assert samples[("postroom_outbox_paused_servers", ())] == 0
