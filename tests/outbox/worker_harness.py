"""Run the real outbox worker in a thread of the test process, against a real SMTP server;
or `postroom worker` as a process of its own on the test database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connection

from postroom.company.models import Company, SendAsPolicy
from postroom.company.selectors import company_get
from postroom.core.secrets import secret_encrypt
from postroom.mail.addresses import parse_address
from postroom.mail.message import OutgoingEmail
from postroom.outbox.enqueue import message_enqueue
from postroom.outbox.models import Lane, Message, MessageStatus, Source
from postroom.outbox.worker import WorkerOptions, run_worker
from tests.support.relay import PostfixRelay


def company_smtp_at(port: int, **fields: object) -> Company:
    """Point the company at a plain-text test server on 127.0.0.1."""
    company = company_get()
    values: dict[str, object] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_secure_required": False,
        "smtp_tls_mode": "none",
        "sender_email": "office@example.com",
        "smtp_timeout_connect": 5,
        "smtp_timeout_command": 5,
        "smtp_timeout_data": 5,
        **fields,
    }
    for name, value in values.items():
        setattr(company, name, value)
    company.save()
    return company


def company_on_relay(relay: PostfixRelay, *, port: int, policy: SendAsPolicy) -> Company:
    """The company's SMTP settings pointed at the real Postfix relay (TLS verified, AUTH)."""
    company = company_get()
    company.name = "Acme"
    company.sender_name = "Acme"
    company.sender_email = relay.allowed_senders[0]
    company.smtp_host = "localhost"
    company.smtp_port = port
    company.smtp_secure_required = True
    company.smtp_login = relay.user
    company.smtp_password_encrypted = secret_encrypt(relay.password)
    company.smtp_ca_certificate = relay.ca_pem
    company.send_as_policy = policy
    company.save()
    return company


def enqueue(
    *to: str,
    subject: str = "Hello",
    text: str = "Hello there.\r\n",
    lane: Lane = Lane.TRANSACTIONAL,
    source: Source = Source.API,
) -> Message:
    email = OutgoingEmail(
        from_=parse_address("Alice Smith <alice@example.com>"),
        to=[parse_address(address) for address in to],
        subject=subject,
        text=text,
    )
    return message_enqueue(email=email, source=source, lane=lane)


@contextmanager
def running_worker(*, concurrency: int = 4, batch_size: int = 50) -> Iterator[None]:
    """The worker on its own event loop in a thread, stopped (gracefully) at the end."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        options = WorkerOptions(name="test-worker", batch_size=batch_size, concurrency=concurrency)
        try:
            loop.run_until_complete(run_worker(options, stop=stop))
        except BaseException as error:  # surfaced in the test below
            failure.append(error)
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="test-worker", daemon=True)
    thread.start()
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
        assert not thread.is_alive(), "the worker did not stop within 30 s"
        if failure:
            raise failure[0]


def wait_until(condition: Callable[[], bool], *, timeout: float = 10, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")


def message_finished(message: Message, *, timeout: float = 20) -> Message:
    """Wait until the worker is done with `message` (no longer queued or being sent)."""
    wait_until(
        lambda: status_of(message) not in (MessageStatus.QUEUED, MessageStatus.SENDING),
        timeout=timeout,
        what=f"message {message.pk} to finish",
    )
    return message


def status_of(message: Message) -> str:
    message.refresh_from_db()
    return message.status


def worker_process_env() -> dict[str, str]:
    """This process's environment, pointed at the test database and data directory."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        url = f"sqlite:///{db['NAME']}"
    else:
        user = db["USER"] or "postgres"
        url = f"postgres://{user}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        POSTROOM_DATABASE_URL=url,
        POSTROOM_DATA_DIR=str(settings.DATA_DIR),
        POSTROOM_SECRET_KEY=settings.SECRET_KEY,
    )
    return env


def worker_process_start(name: str, *args: str) -> subprocess.Popen[bytes]:
    """`postroom worker --name NAME ARGS` on the test database (its error output piped)."""
    return subprocess.Popen(
        [sys.executable, "-m", "postroom", "worker", "--name", name, *args],
        env=worker_process_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
