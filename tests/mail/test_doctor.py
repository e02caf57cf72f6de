"""`postroom doctor` and the company settings it checks, against a scripted SMTP server."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from postroom.accounts.models import User
from postroom.company.models import Company
from postroom.company.selectors import company_get
from postroom.company.smtp import company_sender_addresses, company_smtp_config
from postroom.core.errors import ConfigurationError
from postroom.core.secrets import secret_encrypt
from postroom.mail.config import Timeouts, TlsPolicy
from tests.support.certs import CertAuthority, IssuedCert
from tests.support.smtpd import ScriptedSmtpServer

pytestmark = pytest.mark.django_db

LOGIN = "mailer@example.com"
PASSWORD = "Doctor-Relay-Secret-2b8e41"


@pytest.fixture(scope="module")
def cert(test_ca: CertAuthority) -> IssuedCert:
    return test_ca.issue(stem="doctor")


def company_configure(server: ScriptedSmtpServer, ca: CertAuthority, **changes: Any) -> Company:
    company = company_get()
    values: dict[str, Any] = {
        "sender_email": "info@example.com",
        "smtp_host": "127.0.0.1",
        "smtp_port": server.port,
        "smtp_login": LOGIN,
        "smtp_password_encrypted": secret_encrypt(PASSWORD),
        "smtp_secure_required": True,
        "smtp_ca_certificate": ca.pem,
        "smtp_timeout_connect": 2,
        "smtp_timeout_command": 5,
        "smtp_timeout_data": 5,
        **changes,
    }
    for name, value in values.items():
        setattr(company, name, value)
    company.save()
    return company


def doctor(*args: str) -> tuple[str, CommandError | None]:
    out = StringIO()
    try:
        call_command("doctor", *args, stdout=out, stderr=StringIO())
    except CommandError as error:
        return out.getvalue(), error
    return out.getvalue(), None


# --- The company's settings as the mail layer takes them -----------------------------------


def test_company_smtp_config_decrypts_the_password_and_resolves_the_tls_policy(
    test_ca: CertAuthority,
) -> None:
    company = company_get()
    company.smtp_host, company.smtp_port = "smtp.example.com", 465
    company.smtp_login = LOGIN
    company.smtp_password_encrypted = secret_encrypt(PASSWORD)
    company.smtp_helo_name = "erp.example.com"
    company.smtp_auth_method = "LOGIN"
    company.smtp_ca_certificate = test_ca.pem
    company.smtp_timeout_connect, company.smtp_timeout_command = 11, 22
    company.smtp_timeout_data = 33
    company.save()

    config = company_smtp_config(company)
    assert (config.host, config.port, config.tls) == ("smtp.example.com", 465, TlsPolicy.IMPLICIT)
    assert (config.login, config.password) == (LOGIN, PASSWORD)
    assert (config.helo_name, config.auth_method, config.ca_pem) == (
        "erp.example.com",
        "LOGIN",
        test_ca.pem,
    )
    assert config.timeouts == Timeouts(connect=11, command=22, data=33)
    assert PASSWORD not in repr(config)

    company.smtp_port, company.smtp_secure_required = 587, False
    assert company_smtp_config(company).tls is TlsPolicy.STARTTLS_OPPORTUNISTIC
    company.smtp_password_encrypted = ""
    assert company_smtp_config(company).password == ""


def test_company_smtp_config_without_a_server_says_where_to_set_it() -> None:
    with pytest.raises(ConfigurationError, match="SMTP Server Address"):
        company_smtp_config(company_get())


def test_sender_addresses_are_the_company_then_each_active_user_once() -> None:
    company = company_get()
    company.sender_email = "Info@example.com"
    User.objects.create(username="zed", email="zed@example.com")
    User.objects.create(username="amy", email="amy@example.com")
    User.objects.create(username="old", email="old@example.com", is_active=False)
    User.objects.create(username="nomail", email="")
    User.objects.create(username="info", email="info@example.com")
    assert company_sender_addresses(company.sender_email) == [
        "Info@example.com",
        "amy@example.com",
        "zed@example.com",
    ]


# --- The command ----------------------------------------------------------------------------


def test_doctor_prints_each_step_and_exits_0_when_all_is_well(
    scripted_smtpd: Any, cert: IssuedCert, test_ca: CertAuthority
) -> None:
    server = scripted_smtpd(cert=cert, users={LOGIN: PASSWORD})
    company_configure(server, test_ca)
    User.objects.create(username="alice", email="alice@example.com")
    User.objects.create(username="gone", email="gone@example.com", is_active=False)

    out, error = doctor()
    assert error is None, out
    assert f"Checking 127.0.0.1 port {server.port}" in out
    for line in (
        "[ OK ] Name resolution: 127.0.0.1 is an IP address.",
        "[ OK ] STARTTLS:",
        f"[ OK ] AUTH: Logged in as {LOGIN} with PLAIN (encrypted).",
        "[ OK ] MAIL FROM info@example.com: Accepted: 250 2.1.0 Ok",
        "[ OK ] MAIL FROM alice@example.com: Accepted",
        "The SMTP server works.",
    ):
        assert line in out
    assert "gone@example.com" not in out
    assert PASSWORD not in out
    assert server.messages == []


def test_doctor_exits_1_with_advice_when_a_step_fails(
    scripted_smtpd: Any, cert: IssuedCert, test_ca: CertAuthority
) -> None:
    server = scripted_smtpd(cert=cert, users={LOGIN: "another-password"})
    company_configure(server, test_ca)
    out, error = doctor()
    assert error is not None and error.returncode == 1
    assert "[FAIL] AUTH: The server rejected the login" in out
    assert "What to do: Check the SMTP Authentication Login" in out
    assert "[SKIP] MAIL FROM info@example.com" in out
    assert PASSWORD not in out + str(error)


def test_doctor_json_is_the_whole_report(
    scripted_smtpd: Any, cert: IssuedCert, test_ca: CertAuthority
) -> None:
    server = scripted_smtpd(cert=cert, users={LOGIN: PASSWORD})
    company_configure(server, test_ca)
    out, error = doctor("--json")
    assert error is None
    report = json.loads(out)
    assert report["ok"] is True
    assert report["port"] == server.port and report["tls"] == "starttls_required"
    assert [step["key"] for step in report["steps"]][:3] == ["dns", "tcp", "greeting"]
    assert {"name", "status", "summary", "details", "advice", "code", "duration_ms"} <= set(
        report["steps"][0]
    )
    assert PASSWORD not in out


def test_doctor_to_sends_a_test_email(
    scripted_smtpd: Any, cert: IssuedCert, test_ca: CertAuthority
) -> None:
    server = scripted_smtpd(cert=cert, users={LOGIN: PASSWORD})
    company_configure(server, test_ca)
    out, error = doctor("--to", "bob@example.org")
    assert error is None, out
    [message] = server.wait_for_messages(1)
    assert message.mail_from == "info@example.com"
    assert message.rcpt_tos == ("bob@example.org",)
    assert f"queued as {message.queue_id}" in out


def test_doctor_refuses_a_bad_to_address() -> None:
    out, error = doctor("--to", "not an address")
    assert error is not None
    assert "not a valid email address" in str(error)


def test_doctor_without_a_server_says_where_to_set_it() -> None:
    out, error = doctor()
    assert error is not None
    assert "Company → SMTP Server Information" in str(error)
