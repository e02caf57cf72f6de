"""The listener as other programs meet it: `postroom smtpd` as its own process (killed with
SIGKILL right after a 250: the message is there), swaks with STARTTLS and AUTH, Postfix's
smtp-source on the plain-text port from a listed network, and back-pressure."""

from __future__ import annotations

import re
import signal
import smtplib
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from django.test import override_settings

from postroom.outbox.models import Message
from postroom.smtpd.server import SmtpListener
from postroom.smtpd.services import CredentialSettings, credential_create
from tests.core.processes import children, is_running
from tests.outbox.worker_harness import wait_until, worker_process_env
from tests.smtpd.conftest import HOST, Credentials, message, submission, swaks

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def listener_process(transactional_db: None) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """`postroom smtpd` on a free port, with its port read from its first line."""
    process = subprocess.Popen(
        [sys.executable, "-m", "postroom", "smtpd", "--port", "0"],
        env=worker_process_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    found = re.search(r"port (\d+) \(STARTTLS required\)", first)
    assert found, f"{first!r} {process.stderr.read() if process.poll() is not None else ''}"
    yield process, int(found.group(1))
    if process.poll() is None:
        process.kill()
    process.wait(10)


def test_a_message_answered_250_survives_a_kill_9_of_the_listener(
    listener_process: tuple[subprocess.Popen[str], int],
) -> None:
    process, port = listener_process
    _, password = credential_create(
        actor=None,
        username="erp",
        values=CredentialSettings(name="ERP", allowed_senders=("@acme.example",)),
    )
    wait_until(lambda: _logs_in(port, password), what="the listener to know the credential")
    client = submission(port, login=("erp", password))
    client.mail("invoices@acme.example")
    client.rcpt("customer@example.org")
    code, _ = client.data(message())
    process.send_signal(signal.SIGKILL)  # at once: no QUIT, no clean shutdown
    process.wait(10)
    assert code == 250
    assert Message.objects.filter(subject="Invoice 2026-0042").count() == 1


def _logs_in(port: int, password: str) -> bool:
    try:
        submission(port, login=("erp", password)).quit()
    except Exception:  # refused until the listener's next refresh
        return False
    return True


def test_swaks_sends_with_starttls_and_auth(
    listener: SmtpListener, make_credential: Credentials
) -> None:
    _, password = make_credential()
    done = swaks(listener.ports["starttls"], user="erp", password=password, subject="From swaks")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "queued as" in done.stdout
    assert Message.objects.get().subject == "From swaks"


def test_smtp_source_sends_on_the_plain_port_from_a_listed_network(
    transactional_db: None,
) -> None:
    credential_create(
        actor=None,
        username="scanner",
        values=CredentialSettings(
            name="Scanner",
            allowed_senders=("@acme.example",),
            networks_without_auth=("127.0.0.0/8",),
        ),
    )
    listener = SmtpListener(HOST, 0, plain_port=0)
    listener.start()
    try:
        done = subprocess.run(
            [
                "smtp-source", "-s", "4", "-m", "20", "-c",
                "-f", "scanner@acme.example", "-t", "ops@acme.example",
                f"{HOST}:{listener.ports['plain']}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip
    finally:
        listener.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    assert Message.objects.count() == 20


def test_a_client_without_credentials_gets_nothing_on_the_plain_port(
    transactional_db: None,
) -> None:
    listener = SmtpListener(HOST, 0, plain_port=0)
    listener.start()
    try:
        with smtplib.SMTP(HOST, listener.ports["plain"], timeout=10) as client:
            client.ehlo("x")
            assert "auth" not in client.esmtp_features  # never a password in plain text
            code, _ = client.mail("scanner@acme.example")
    finally:
        listener.stop()
    assert code == 530


@pytest.mark.parametrize(
    ("setting", "said"),
    [
        ({"POSTROOM_SMTPD_MAX_QUEUED": 1}, b"452 4.3.1 Postroom's outbox holds 1 messages"),
        ({"POSTROOM_SMTPD_MIN_FREE_MB": 10**12}, b"452 4.3.1 Insufficient system storage"),
    ],
)
def test_back_pressure_defers_new_mail_with_the_reason(
    listener: SmtpListener, make_credential: Credentials, setting: dict[str, int], said: bytes
) -> None:
    _, password = make_credential()
    with submission(listener.ports["starttls"], login=("erp", password)) as client:
        client.sendmail("invoices@acme.example", ["a@example.org"], message())
    with override_settings(**setting):
        listener.refresh_now()
        with submission(listener.ports["starttls"], login=("erp", password)) as client:
            code, reply = client.mail("invoices@acme.example")
    assert code == 452 and said.removeprefix(b"452 ") in reply


def test_several_listener_processes_share_the_port_and_stop_together(
    transactional_db: None,
) -> None:
    with socket.socket() as probe:  # a free port: several processes must share a fixed one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "postroom", "smtpd", "--port", str(port), "--processes", "3"],
        env=worker_process_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert "(3 processes)" in process.stdout.readline()
        listeners = children(process.pid)
        assert len(listeners) == 2
        wait_until(
            lambda: all(_listens(port, child) for child in listeners),
            timeout=30,  # each starts Django: seconds on a loaded machine
            what="the other two processes to listen on the same port",
        )
        _, password = credential_create(
            actor=None,
            username="erp",
            values=CredentialSettings(name="ERP", allowed_senders=("@acme.example",)),
        )
        wait_until(
            lambda: all(_logs_in(port, password) for _ in range(12)),
            timeout=30,
            what="every listener process to know the credential",
        )
        for index in range(12):  # new connections, spread by the kernel
            client = submission(port, login=("erp", password))
            mail = message().replace(b"inv-0042@", f"inv-{index}@".encode())
            client.sendmail("invoices@acme.example", ["customer@example.org"], mail)
            client.quit()
        assert Message.objects.count() == 12
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    assert all(not is_running(child) for child in listeners)


def _listens(port: int, pid: int) -> bool:
    """Whether `pid` listens on `port` (SO_REUSEPORT: each process has its own socket)."""
    done = subprocess.run(
        ["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=True
    )
    return f"pid={pid}," in done.stdout
