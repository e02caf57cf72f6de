"""The SMTP listener on free ports of 127.0.0.1, and clients that trust its certificate."""

from __future__ import annotations

import smtplib
import ssl
import subprocess
from collections.abc import Callable, Iterator

import pytest

from postroom.smtpd.certs import listener_certificate
from postroom.smtpd.models import SmtpCredential
from postroom.smtpd.server import SmtpListener
from postroom.smtpd.services import CredentialSettings, credential_create

HOST = "127.0.0.1"


@pytest.fixture
def listener(transactional_db: None) -> Iterator[SmtpListener]:
    """The listener with a STARTTLS port and an implicit-TLS port, both free ones."""
    server = SmtpListener(HOST, 0, tls_port=0)
    server.start()
    yield server
    server.stop()


def client_context() -> ssl.SSLContext:
    certificate = listener_certificate()
    assert certificate is not None
    return ssl.create_default_context(cafile=str(certificate.cert_path))


Credentials = Callable[..., tuple[SmtpCredential, str]]


@pytest.fixture
def make_credential(listener: SmtpListener) -> Credentials:
    """Create a credential; the listener knows it at once."""

    def make(
        username: str = "erp", senders: tuple[str, ...] = ("@acme.example",), **values: object
    ) -> tuple[SmtpCredential, str]:
        settings = CredentialSettings(name=f"{username} system", allowed_senders=senders, **values)  # type: ignore[arg-type]
        made = credential_create(actor=None, username=username, values=settings)
        listener.refresh_now()
        return made

    return make


def submission(port: int, *, login: tuple[str, str] | None = None) -> smtplib.SMTP:
    """A client on the submission `port`, after STARTTLS (and AUTH with `login`)."""
    client = smtplib.SMTP(HOST, port, timeout=10)
    client.ehlo("erp.acme.example")
    client.starttls(context=client_context())
    client.ehlo("erp.acme.example")
    if login:
        client.login(*login)
    return client


def message(
    sender: str = "invoices@acme.example",
    to: str = "customer@example.org",
    subject: str = "Invoice 2026-0042",
) -> bytes:
    return (
        f"From: Acme Invoices <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        "Message-ID: <inv-0042@erp.acme.example>\r\n\r\nPlease find your invoice.\r\n"
    ).encode()


def swaks(port: int, *, user: str, password: str, subject: str) -> subprocess.CompletedProcess[str]:
    """Send with swaks (a real SMTP client, as a customer's script uses it): STARTTLS, AUTH."""
    return subprocess.run(
        [
            "swaks",
            "--server", f"{HOST}:{port}",
            "--tls",
            "--auth", "LOGIN",
            "--auth-user", user,
            "--auth-password", password,
            "--from", "invoices@acme.example",
            "--to", "customer@example.org",
            "--header", f"Subject: {subject}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )  # fmt: skip
