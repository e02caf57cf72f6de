"""Company → SMTP Server Information: the "Check connection" and "Send test email" buttons.

Both talk to a real scripted SMTP server on 127.0.0.1, through the Django test client, as an
administrator would with htmx (a fragment) or without JavaScript (a whole page).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from postroom.accounts.models import Role, User
from postroom.company.models import Company
from postroom.company.selectors import company_get
from postroom.core.secrets import secret_encrypt
from tests.support.certs import CertAuthority, IssuedCert
from tests.support.smtpd import ScriptedSmtpServer
from tests.support.smtpd import scripted_smtpd as scripted_smtpd  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db

CHECK_URL = "/company/smtp/check/"
TEST_EMAIL_URL = "/company/smtp/test-email/"
HTMX = {"HTTP_HX_REQUEST": "true"}
LOGIN = "mailer@example.com"
PASSWORD = "Web-Check-Secret-9d1c07"


@pytest.fixture(scope="module")
def cert(test_ca: CertAuthority) -> IssuedCert:
    return test_ca.issue(stem="web-check")


@pytest.fixture
def admin_client() -> Client:
    client = Client()
    client.force_login(
        User.objects.create(username="root", role=Role.ADMINISTRATOR, email="root@example.com")
    )
    return client


@pytest.fixture
def server(scripted_smtpd: Any, cert: IssuedCert, test_ca: CertAuthority) -> ScriptedSmtpServer:
    started: ScriptedSmtpServer = scripted_smtpd(cert=cert, users={LOGIN: PASSWORD})
    company_configure(started, test_ca)
    return started


def company_configure(server: ScriptedSmtpServer, ca: CertAuthority, **changes: Any) -> Company:
    company = company_get()
    values: dict[str, Any] = {
        "sender_email": "info@example.com",
        "smtp_host": "127.0.0.1",
        "smtp_port": server.port,
        "smtp_login": LOGIN,
        "smtp_password_encrypted": secret_encrypt(PASSWORD),
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


def test_check_connection_answers_htmx_with_the_steps(
    admin_client: Client, server: ScriptedSmtpServer
) -> None:
    response = admin_client.post(CHECK_URL, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html  # a fragment for #check-result
    assert "Connection works" in html
    for step in ("dns", "tcp", "greeting", "ehlo", "starttls", "certificate", "auth", "mail_from"):
        assert f'class="ok" data-step="{step}"' in html
    assert "MAIL FROM info@example.com" in html
    assert PASSWORD not in html
    assert server.messages == []


def test_check_connection_without_htmx_is_a_whole_page(
    admin_client: Client, server: ScriptedSmtpServer
) -> None:
    response = admin_client.post(CHECK_URL)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<!doctype html>" in html
    assert "Back to SMTP Server Information" in html
    assert 'data-step="auth"' in html


def test_a_failed_step_shows_what_to_do_and_never_the_password(
    admin_client: Client, scripted_smtpd: Any, cert: IssuedCert, test_ca: CertAuthority
) -> None:
    server = scripted_smtpd(cert=cert, users={LOGIN: "not-the-stored-one"})
    company_configure(server, test_ca)
    html = admin_client.post(CHECK_URL, **HTMX).content.decode()
    assert "Problem found" in html
    assert 'class="fail" data-step="auth" data-code="wrong_password"' in html
    assert "<strong>What to do:</strong> Check the SMTP Authentication Login" in html
    assert 'class="skip" data-step="mail_from"' in html
    assert PASSWORD not in html


def test_check_connection_before_any_server_is_set_says_what_to_do(
    admin_client: Client,
) -> None:
    html = admin_client.post(CHECK_URL, **HTMX).content.decode()
    assert "No SMTP server is set" in html


def test_send_test_email_delivers_and_reports_the_reply(
    admin_client: Client, server: ScriptedSmtpServer
) -> None:
    response = admin_client.post(TEST_EMAIL_URL, {"to": "Bob@Example.org"}, **HTMX)
    html = response.content.decode()
    [message] = server.wait_for_messages(1)
    assert message.mail_from == "info@example.com"
    assert message.rcpt_tos == ("Bob@example.org",)  # the domain normalised by email-validator
    assert "Test email accepted" in html
    assert f"queued as {message.queue_id}" in html
    assert PASSWORD not in html


def test_send_test_email_without_htmx_is_a_whole_page(
    admin_client: Client, server: ScriptedSmtpServer
) -> None:
    html = admin_client.post(TEST_EMAIL_URL, {"to": "bob@example.org"}).content.decode()
    assert "<!doctype html>" in html
    assert "Send test email to bob@example.org" in html
    assert len(server.wait_for_messages(1)) == 1


def test_send_test_email_shows_a_relay_refusal(
    admin_client: Client, scripted_smtpd: Any, cert: IssuedCert, test_ca: CertAuthority
) -> None:
    server = scripted_smtpd(
        cert=cert,
        users={LOGIN: PASSWORD},
        default_recipient_reply="554 5.7.1 <{address}>: Relay access denied",
    )
    company_configure(server, test_ca)
    html = admin_client.post(TEST_EMAIL_URL, {"to": "bob@example.org"}, **HTMX).content.decode()
    assert "Test email not sent" in html
    assert 'data-code="relay_denied"' in html
    assert server.messages == []


@pytest.mark.parametrize("to", ["", "not an address", "bob@", "a\r\nBcc: x@example.com"])
def test_send_test_email_refuses_a_bad_address_without_connecting(
    admin_client: Client, server: ScriptedSmtpServer, to: str
) -> None:
    html = admin_client.post(TEST_EMAIL_URL, {"to": to}, **HTMX).content.decode()
    assert "Enter a valid address to send the test email to" in html
    assert server.sessions == 0


def test_send_test_email_needs_the_company_address(
    admin_client: Client, server: ScriptedSmtpServer
) -> None:
    company = company_get()
    company.sender_email = ""
    company.save()
    html = admin_client.post(TEST_EMAIL_URL, {"to": "bob@example.org"}, **HTMX).content.decode()
    assert "Set the company email address" in html
    assert server.sessions == 0


@pytest.mark.parametrize("url", [CHECK_URL, TEST_EMAIL_URL])
def test_only_administrators_may_check_or_send(url: str, server: ScriptedSmtpServer) -> None:
    staff = Client()
    staff.force_login(User.objects.create(username="sam", role=Role.STAFF))
    assert staff.post(url, {"to": "bob@example.org"}).status_code == 403
    anonymous = Client().post(url, {"to": "bob@example.org"})
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    assert server.sessions == 0


@pytest.mark.parametrize("url", [CHECK_URL, TEST_EMAIL_URL])
def test_get_is_not_allowed(admin_client: Client, url: str) -> None:
    assert admin_client.get(url).status_code == 405


def test_csrf_is_enforced(server: ScriptedSmtpServer) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(User.objects.create(username="root", role=Role.ADMINISTRATOR))
    assert client.post(CHECK_URL, **HTMX).status_code == 403
    assert server.sessions == 0


# "Test these settings" on the edit form: the typed values, nothing saved (issue 8 §3).

CHECK_TYPED_URL = "/company/smtp/check-typed/"


def typed_form(company: Company, **changes: Any) -> dict[str, Any]:
    """The edit form as it comes with the stored values, then `changes` typed over it."""
    from postroom.web.forms.company import company_smtp_initial

    # An unticked checkbox is not sent at all.
    values = {k: v for k, v in company_smtp_initial(company).items() if v not in (None, False)}
    values.update(changes)
    return values


def test_typed_settings_are_checked_and_nothing_is_saved(
    admin_client: Client, scripted_smtpd: Any, cert: IssuedCert, test_ca: CertAuthority
) -> None:
    from postroom.audit.models import AuditEntry

    stored = scripted_smtpd(cert=cert, users={LOGIN: "an-old-password"})
    company = company_configure(
        stored, test_ca, smtp_password_encrypted=secret_encrypt("an-old-password")
    )
    other = scripted_smtpd(cert=cert, users={LOGIN: PASSWORD})
    before = (company_get().smtp_port, company_get().smtp_password_encrypted)

    form = typed_form(company, smtp_port=other.port, smtp_password=PASSWORD)
    html = admin_client.post(CHECK_TYPED_URL, form, **HTMX).content.decode()
    assert "Connection works" in html and "nothing was saved" in html
    assert f"port {other.port}" in html
    assert (company_get().smtp_port, company_get().smtp_password_encrypted) == before
    assert not AuditEntry.objects.exists()

    # A blank password means the stored one, as on Save: wrong for the other server.
    html = admin_client.post(CHECK_TYPED_URL, typed_form(company, smtp_port=other.port), **HTMX)
    assert 'data-step="auth" data-code="wrong_password"' in html.content.decode()


def test_typed_settings_that_save_would_refuse_are_explained_not_checked(
    admin_client: Client, server: ScriptedSmtpServer
) -> None:
    form = typed_form(company_get(), smtp_port="seventy", smtp_host="smtp://bad host")
    html = admin_client.post(CHECK_TYPED_URL, form, **HTMX).content.decode()
    assert "Correct these values first" in html
    assert "SMTP Communication Port" in html
    assert server.commands == []


# A passing check resumes sending that a failure had paused (issue 8 §1).


def test_a_passing_check_resumes_a_paused_server_and_says_so(
    admin_client: Client, server: ScriptedSmtpServer
) -> None:
    from postroom.outbox.models import ServerPause
    from postroom.outbox.pauses import server_pause

    server_pause(server=f"127.0.0.1:{server.port}", code=535, reason="the password was refused")
    html = admin_client.post(CHECK_URL, **HTMX).content.decode()
    assert "Connection works" in html
    assert "had been paused (the password was refused)" in html and "resumed" in html
    assert not ServerPause.objects.exists()


def test_a_failing_check_leaves_the_pause(
    admin_client: Client, scripted_smtpd: Any, cert: IssuedCert, test_ca: CertAuthority
) -> None:
    from postroom.outbox.models import ServerPause
    from postroom.outbox.pauses import server_pause

    server = scripted_smtpd(cert=cert, users={LOGIN: "not-the-stored-one"})
    company_configure(server, test_ca)
    server_pause(server=f"127.0.0.1:{server.port}", code=535, reason="the password was refused")
    html = admin_client.post(CHECK_URL, **HTMX).content.decode()
    assert "Problem found" in html and "resumed" not in html
    assert ServerPause.objects.count() == 1


def test_saving_changed_connection_settings_resumes_sending(
    admin_client: Client, server: ScriptedSmtpServer
) -> None:
    from postroom.outbox.models import ServerPause
    from postroom.outbox.pauses import server_pause

    server_pause(server=f"127.0.0.1:{server.port}", code=535, reason="the password was refused")
    form = typed_form(company_get(), smtp_password="a-new-password-1")
    response = admin_client.post("/company/smtp/edit/", form, follow=True)
    assert "It is resumed: the held mail is tried again now" in response.content.decode()
    assert not ServerPause.objects.exists()
