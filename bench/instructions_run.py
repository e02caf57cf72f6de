"""One workload of bench.instructions, in its own process (under valgrind when measured).

    python -m bench.instructions_run prepare WORKLOAD DIR
    python -m bench.instructions_run run WORKLOAD DIR COUNT

`prepare` makes a migrated database in DIR (outside valgrind: migrating under it takes
minutes). `run` copies DIR, so every run starts from the same database, and does COUNT units
of the workload in this process:

  api-404      GET of an unknown API path with the key: the floor of any API request
  api-single   POST /api/v1/messages, the corpus message to its own recipient
  api-batch    POST /api/v1/messages/batch with BATCH_SIZE such messages
  smtpd-sink   aiosmtpd with a handler that keeps nothing, same clients and TLS: the
               protocol's floor, without Postroom's checks and store
  smtpd        Postroom's SMTP listener (postroom.smtpd.server), STARTTLS and AUTH

The API requests go through Django's WSGI handler in this process (django.test.Client: the
middleware, the URL routing, django-ninja and the views, no HTTP server). The SMTP clients are
bench.smtpd's: 20 aiosmtplib sessions, each with STARTTLS and AUTH once, in this process.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.http_load import message
from bench.sink import free_port

BATCH_SIZE = 100  # messages a batch request (its counts are per message)
WORKLOADS = ("api-404", "api-single", "api-batch", "smtpd-sink", "smtpd")


def prepare(workload: str, data_dir: Path) -> None:
    os.environ["POSTROOM_DATA_DIR"] = str(data_dir)
    if workload.startswith("api"):
        from bench.api import prepare_database

        (data_dir / "secret").write_text(prepare_database())
    else:
        from bench.smtpd import prepare as prepare_smtpd

        (data_dir / "secret").write_text(prepare_smtpd())


def run(workload: str, prepared: Path, count: int) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="postroom-bench-instructions-")) / "data"
    shutil.copytree(prepared, data_dir)
    os.environ["POSTROOM_DATA_DIR"] = str(data_dir)
    secret = (data_dir / "secret").read_text()
    import django

    django.setup()
    try:
        if workload.startswith("api"):
            _api(workload, secret, count)
        else:
            asyncio.run(_smtp(workload, secret, count))
    finally:
        shutil.rmtree(data_dir.parent)


def _api(workload: str, key: str, count: int) -> None:
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {key}")
    for index in range(count):
        if workload == "api-404":
            response = client.get("/api/v1/no-such-path")
            expected = {404}
        elif workload == "api-single":
            body = json.dumps(message(index))
            response = client.post("/api/v1/messages", body, content_type="application/json")
            expected = {202}
        else:
            items = [message(index * BATCH_SIZE + n) for n in range(BATCH_SIZE)]
            body = json.dumps({"messages": items})
            response = client.post("/api/v1/messages/batch", body, content_type="application/json")
            expected = {200, 202}
        if response.status_code not in expected:
            raise RuntimeError(f"{workload}: {response.status_code} {response.content[:300]!r}")


async def _smtp(workload: str, password: str, count: int) -> None:
    from bench.smtpd import tls_auth_clients

    stop, port = await _smtp_server(workload)
    try:
        _, accepted = await tls_auth_clients(port, password, count)
    finally:
        stop()
    if workload == "smtpd":
        from postroom.outbox.models import Message

        stored = await asyncio.to_thread(Message.objects.count)
        if stored != accepted:
            raise RuntimeError(f"{accepted} messages accepted, {stored} stored")


async def _smtp_server(workload: str) -> tuple[Any, int]:
    """Start the server of `workload`: its stop function and its port. Its certificate is
    the listener's, in POSTROOM_DATA_DIR, which the clients trust."""
    from postroom.smtpd.certs import listener_certificate
    from postroom.smtpd.server import SmtpListener

    if workload == "smtpd":
        listener = SmtpListener("127.0.0.1", 0)
        await asyncio.to_thread(listener.start)
        return listener.stop, listener.ports["starttls"]
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink
    from aiosmtpd.smtp import AuthResult

    certificate = await asyncio.to_thread(listener_certificate, create=True)
    assert certificate is not None
    port = free_port()
    controller = Controller(
        Sink(),
        hostname="127.0.0.1",
        port=port,
        server_hostname="postroom.smtpd",
        tls_context=certificate.server_context(),
        require_starttls=True,
        authenticator=lambda *args: AuthResult(success=True),
    )
    controller.start()
    return controller.stop, port


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "postroom.settings")
    command, workload, directory = argv[:3]
    if workload not in WORKLOADS:
        raise SystemExit(f"unknown workload {workload!r}; one of {', '.join(WORKLOADS)}")
    if command == "prepare":
        prepare(workload, Path(directory))
    else:
        run(workload, Path(directory), int(argv[3]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
