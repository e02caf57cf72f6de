"""Company → SMTP Server Information in the browser's terms: view, Edit, Save, Cancel."""

from __future__ import annotations

import logging
import re
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import NoReverseMatch, reverse

from postroom.accounts.models import Role, User
from postroom.audit.models import AuditEntry
from postroom.company.models import Company
from postroom.company.selectors import company_get
from postroom.company.services import SmtpSettingsInput, company_smtp_update
from postroom.core.secrets import secret_decrypt
from tests.support.certs import CertAuthority

pytestmark = pytest.mark.django_db

VIEW_URL = "/company/smtp/"
EDIT_URL = "/company/smtp/edit/"
SMTP_PASSWORD = "Plaintext-Smtp-Secret-5d2f"
EPOD_PASSWORD = "Plaintext-Epod-Secret-91c3"
SEED_LABELS = [
    "SMTP Server Address",
    "SMTP Communication Port",
    "SMTP Authentication Login",
    "SMTP Authentication Password",
    "SMTP Secure Connection Required",
    "ePOD API Username",
    "ePOD API Password",
]
VALID: dict[str, str] = {
    "smtp_preset": "",
    "smtp_host": "smtp.example.com",
    "smtp_port": "587",
    "smtp_secure_required": "Y",
    "smtp_login": "mailer@example.com",
    "smtp_password": "",
    "epod_username": "epod-user",
    "epod_password": "",
    "sender_email": "info@example.com",
    "sender_name": "Acme Ltd",
    "smtp_tls_mode": "auto",
    "smtp_ca_certificate": "",
    "smtp_helo_name": "",
    "smtp_auth_method": "auto",
    "smtp_timeout_connect": "30",
    "smtp_timeout_command": "300",
    "smtp_timeout_data": "600",
}


def make_user(username: str, role: str) -> User:
    # No password: hashing one costs a second per test, and force_login needs none.
    return User.objects.create(username=username, role=role)


@pytest.fixture
def admin() -> User:
    return make_user("ada", Role.ADMINISTRATOR)


@pytest.fixture
def admin_web(client: Client, admin: User) -> Client:
    client.force_login(admin)
    return client


def page(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def save(client: Client, **overrides: str) -> Any:
    return client.post(EDIT_URL, {**VALID, **overrides})


_FIELD_START = re.compile(r'<div class="field(?: [^"]*)?">')


def field_block(html: str, name: str) -> str:
    """The text of the form field `name` (label, input, help, errors), unescaped."""
    at = html.index(f'name="{name}"')
    start = [m.start() for m in _FIELD_START.finditer(html, 0, at)][-1]
    ends = [i for i in (html.find("</fieldset>", at), html.find("</details>", at)) if i != -1]
    following = _FIELD_START.search(html, at)
    if following:
        ends.append(following.start())
    return unescape(html[start : min(ends)])


def company_row() -> dict[str, Any]:
    return dict(Company.objects.values().get())


# Navigation and modes


def test_company_opens_the_smtp_tab(admin_web: Client) -> None:
    response = admin_web.get("/company/")
    assert response.status_code == 302
    assert response["Location"] == reverse("company_smtp") == VIEW_URL


def test_view_mode_shows_the_seed_fields_read_only(admin_web: Client) -> None:
    company_smtp_update(
        actor=None,
        values=SmtpSettingsInput(
            smtp_host="smtp.gmail.com",
            smtp_port=587,
            smtp_login="me@gmail.com",
            epod_username="epod-user",
        ),
    )
    html = page(admin_web, VIEW_URL)
    view = html[html.index('<dl class="view">') :]
    for label in SEED_LABELS:
        assert f"<dt>{label}</dt>" in view
    assert "smtp.gmail.com" in view and "587" in view and "me@gmail.com" in view
    assert 'aria-current="page">SMTP Server Information</a>' in html
    assert "<input" not in html[: html.index("check-heading")].split("<dl")[1]
    assert f'href="{EDIT_URL}">Edit</a>' in html


def test_edit_shows_the_form_with_the_stored_values_and_a_cancel_link(admin_web: Client) -> None:
    company_smtp_update(
        actor=None, values=SmtpSettingsInput(smtp_host="smtp.gmail.com", smtp_port=587)
    )
    html = page(admin_web, EDIT_URL)
    assert 'value="smtp.gmail.com"' in field_block(html, "smtp_host")
    assert 'value="587"' in field_block(html, "smtp_port")
    assert f'<a class="button" href="{VIEW_URL}">Cancel</a>' in html
    assert '<button class="primary" type="submit">Save</button>' in html
    for label in SEED_LABELS:
        assert label in html


def test_save_returns_to_view_mode_with_a_message_and_the_new_values(admin_web: Client) -> None:
    response = save(admin_web, smtp_host="SMTP.GMAIL.COM", smtp_port="587")
    assert response.status_code == 302 and response["Location"] == VIEW_URL
    html = page(admin_web, VIEW_URL)
    assert "SMTP Server Information saved." in html
    assert "<dd>smtp.gmail.com</dd>" in html
    company = company_get()
    assert (company.smtp_host, company.smtp_port, company.sender_name) == (
        "smtp.gmail.com",
        587,
        "Acme Ltd",
    )
    assert AuditEntry.objects.get().actor_name == "ada"


def test_cancel_leaves_everything_as_it_was(admin_web: Client) -> None:
    company_smtp_update(
        actor=None, values=SmtpSettingsInput(smtp_host="smtp.gmail.com", smtp_port=587)
    )
    before, audits = company_row(), AuditEntry.objects.count()
    page(admin_web, EDIT_URL)
    page(admin_web, EDIT_URL + "?preset=yahoo")  # even after applying a preset
    assert "<dd>smtp.gmail.com</dd>" in page(admin_web, VIEW_URL)
    assert company_row() == before
    assert AuditEntry.objects.count() == audits


def test_an_idn_server_address_is_accepted_and_shown_readably(admin_web: Client) -> None:
    assert save(admin_web, smtp_host="smtp.bücher.example").status_code == 302
    assert company_get().smtp_host == "smtp.xn--bcher-kva.example"
    assert "(smtp.bücher.example)" in page(admin_web, VIEW_URL)


# Validation: one rule per case, the message next to its field, nothing saved


INVALID = [
    ("smtp_host", "", "Enter the SMTP server address"),
    ("smtp_host", "smtp://smtp.gmail.com", "without “smtp://”"),
    ("smtp_host", "smtp.gm ail.com", "cannot contain spaces"),
    ("smtp_host", "smtp.gmail.com/submission", "without a path"),
    ("smtp_host", "smtp.gmail.com:587", "Enter the port in SMTP Communication Port"),
    ("smtp_host", "smtp_relay.example.com", "is not a valid host name"),
    ("smtp_host", "me@gmail.com", "looks like an email address"),
    ("smtp_port", "", "Enter the SMTP communication port"),
    ("smtp_port", "0", "from 1 to 65535"),
    ("smtp_port", "65536", "from 1 to 65535"),
    ("smtp_port", "five-eight-seven", "whole number"),
    ("smtp_login", "mailer\r\nRCPT TO:<x@evil.example>", "control characters"),
    ("smtp_login", "mailer\x00", "control characters"),
    ("epod_username", "epod\tuser", "control characters"),
    ("sender_email", "info-at-example.com", "not a valid email address"),
    ("sender_name", "Acme\r\nBcc: victim@example.com", "contains a line break"),
    ("smtp_helo_name", "my relay", "cannot contain spaces"),
    ("smtp_helo_name", "bad_name.example", "is not a valid host name"),
    ("smtp_timeout_connect", "0", "from 1 to 300"),
    ("smtp_timeout_command", "86400", "from 1 to 3600"),
    ("smtp_timeout_data", "ten", "whole number of seconds"),
    ("smtp_ca_certificate", "not a certificate", "not a PEM certificate"),
    ("smtp_tls_mode", "none", "cannot be “None”"),  # with Secure Connection Required = Y
]


@pytest.mark.parametrize(
    ("field", "value", "message"), INVALID, ids=[f"{f}={v!r}" for f, v, _ in INVALID]
)
def test_an_invalid_value_is_explained_next_to_its_field_and_nothing_is_saved(
    admin_web: Client, field: str, value: str, message: str
) -> None:
    company_smtp_update(
        actor=None, values=SmtpSettingsInput(smtp_host="smtp.before.example", smtp_port=25)
    )
    before, audits = company_row(), AuditEntry.objects.count()
    response = save(admin_web, **{field: value})
    assert response.status_code == 200
    html = response.content.decode()
    block = field_block(html, field)
    assert "field has-error" in block or "field field-check has-error" in block
    assert message in block
    assert "Some values need correcting" in html
    assert company_row() == before and AuditEntry.objects.count() == audits


def test_a_pasted_private_key_is_refused_next_to_the_ca_field(
    admin_web: Client, test_ca: CertAuthority
) -> None:
    key = test_ca.issue(stem="pasted").key_path.read_text()
    response = save(admin_web, smtp_ca_certificate=test_ca.pem + key)
    html = response.content.decode()
    assert "contains a private key" in field_block(html, "smtp_ca_certificate")
    assert "-----BEGIN PRIVATE KEY-----" not in html  # the pasted key is not sent back
    assert not Company.objects.exclude(smtp_ca_certificate="").exists()


def test_an_expired_ca_certificate_is_refused(admin_web: Client, test_ca: CertAuthority) -> None:
    expired = test_ca.issue(stem="old", expired=True).cert_path.read_text()
    response = save(admin_web, smtp_ca_certificate=expired)
    assert "expired on" in field_block(response.content.decode(), "smtp_ca_certificate")


def test_a_custom_ca_is_saved_and_named_on_the_page(
    admin_web: Client, test_ca: CertAuthority
) -> None:
    assert save(admin_web, smtp_ca_certificate=test_ca.pem).status_code == 302
    html = page(admin_web, VIEW_URL)
    assert "CN=Postroom Test CA" in html
    assert "certificate verified against the system CAs and the custom CA" in html


def test_an_smtp_password_with_nul_is_refused_and_not_echoed(admin_web: Client) -> None:
    response = save(admin_web, smtp_password="Nul\x00" + SMTP_PASSWORD)
    html = response.content.decode()
    assert "cannot contain a NUL character" in field_block(html, "smtp_password")
    assert SMTP_PASSWORD not in html
    assert company_get().smtp_password_encrypted == ""


def test_a_new_password_and_clear_together_are_refused(admin_web: Client) -> None:
    response = save(admin_web, smtp_password=SMTP_PASSWORD, smtp_password_clear="on")
    html = response.content.decode()
    assert "not both" in field_block(html, "smtp_password_clear")
    assert SMTP_PASSWORD not in html
    assert company_get().smtp_password_encrypted == ""


def test_the_advanced_section_opens_when_one_of_its_fields_is_wrong(admin_web: Client) -> None:
    html = save(admin_web, smtp_timeout_connect="0").content.decode()
    assert "<details open>" in html
    assert "<details open>" not in save(admin_web, smtp_port="0").content.decode()


# Passwords: write-only, encrypted, never shown or logged


def test_a_saved_password_shows_as_set_and_never_as_itself(admin_web: Client) -> None:
    save(admin_web, smtp_password=SMTP_PASSWORD)
    view = page(admin_web, VIEW_URL)
    smtp_row = view[view.index("<dt>SMTP Authentication Password</dt>") :]
    epod_row = view[view.index("<dt>ePOD API Password</dt>") :]
    assert re.match(r"<dt>[^<]+</dt>\s*<dd><span class=\"badge ok\">set</span>", smtp_row)
    assert re.match(r"<dt>[^<]+</dt>\s*<dd><span class=\"badge\">not set</span>", epod_row)
    edit = page(admin_web, EDIT_URL)
    for html in (view, edit):
        assert SMTP_PASSWORD not in html
        assert "gAAAAA" not in html  # nor its encrypted token
    password_input = re.search(r"<input[^>]*name=\"smtp_password\"[^>]*>", edit)
    assert password_input is not None
    assert 'type="password"' in password_input.group() and "value=" not in password_input.group()
    assert "Currently set. Leave blank to keep the current password." in edit


def test_a_form_shown_again_after_an_error_does_not_hold_the_typed_password(
    admin_web: Client,
) -> None:
    html = save(admin_web, smtp_password=SMTP_PASSWORD, smtp_port="0").content.decode()
    assert SMTP_PASSWORD not in html


def test_the_database_holds_a_fernet_token_never_the_plaintext(admin_web: Client) -> None:
    save(admin_web, smtp_password=SMTP_PASSWORD, epod_password=EPOD_PASSWORD)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT smtp_password_encrypted, epod_password_encrypted FROM company_company"
        )
        smtp_token, epod_token = cursor.fetchone()
        assert smtp_token.startswith("gAAAAA") and epod_token.startswith("gAAAAA")
        assert secret_decrypt(smtp_token) == SMTP_PASSWORD
        assert secret_decrypt(epod_token) == EPOD_PASSWORD
        # Every row of every table, sessions and audit log included.
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT * FROM "{table}"')
            for row in cursor.fetchall():
                assert SMTP_PASSWORD not in repr(row) and EPOD_PASSWORD not in repr(row), table


@pytest.mark.django_db(transaction=True)  # committed, so the bytes are really on disk
def test_the_database_file_never_holds_the_plaintext(admin_web: Client) -> None:
    save(admin_web, smtp_password=SMTP_PASSWORD, epod_password=EPOD_PASSWORD)
    database = Path(connection.settings_dict["NAME"])
    assert database.is_file(), "the test database is expected to be a file (see settings)"
    # With WAL, a fresh commit may still be only in the -wal file: read both.
    raw = b"".join(
        path.read_bytes() for path in (database, Path(f"{database}-wal")) if path.exists()
    )
    # The stored token is on disk, so the row really was read, and the plaintext is not.
    assert company_get().smtp_password_encrypted.encode() in raw
    for secret in (SMTP_PASSWORD, EPOD_PASSWORD):
        assert secret.encode() not in raw
        assert secret.encode("utf-16-le") not in raw


def test_a_blank_password_keeps_the_stored_one(admin_web: Client) -> None:
    save(admin_web, smtp_password=SMTP_PASSWORD, epod_password=EPOD_PASSWORD)
    before = company_get()
    save(admin_web, smtp_host="smtp2.example.com")
    after = company_get()
    assert after.smtp_host == "smtp2.example.com"
    assert after.smtp_password_encrypted == before.smtp_password_encrypted
    assert after.epod_password_encrypted == before.epod_password_encrypted


def test_clear_removes_the_stored_password(admin_web: Client) -> None:
    save(admin_web, smtp_password=SMTP_PASSWORD, epod_password=EPOD_PASSWORD)
    save(admin_web, epod_password_clear="on")
    company = company_get()
    assert company.epod_password_encrypted == "" and company.has_smtp_password
    view = page(admin_web, VIEW_URL)
    assert re.search(r"<dt>ePOD API Password</dt>\s*<dd><span class=\"badge\">not set", view)


def test_no_log_line_holds_the_password(
    admin_web: Client, caplog: pytest.LogCaptureFixture
) -> None:
    # Every logger at DEBUG, including those configured quieter (django's own is at INFO).
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)
    connection.force_debug_cursor = True  # log each query with its parameters
    try:
        save(admin_web, smtp_password=SMTP_PASSWORD, epod_password=EPOD_PASSWORD)
        save(admin_web, smtp_password=SMTP_PASSWORD, smtp_port="0")  # an error page too
        page(admin_web, VIEW_URL)
        page(admin_web, "/audit/")
    finally:
        connection.force_debug_cursor = False
    assert "UPDATE" in caplog.text or "INSERT" in caplog.text  # the capture did see the SQL
    assert "SMTP Server Information changed" in caplog.text
    assert SMTP_PASSWORD not in caplog.text and EPOD_PASSWORD not in caplog.text


def test_the_audit_entry_names_the_password_but_not_its_value(admin_web: Client) -> None:
    save(admin_web, smtp_password=SMTP_PASSWORD)
    entry = AuditEntry.objects.get()
    assert entry.changes["SMTP Authentication Password"] == {"changed": True, "secret": "set"}
    assert SMTP_PASSWORD not in repr(entry.changes) + str(entry)
    assert SMTP_PASSWORD not in page(admin_web, "/audit/")


# Security mode


def test_y_on_port_465_means_implicit_tls(admin_web: Client) -> None:
    save(admin_web, smtp_port="465", smtp_secure_required="Y", smtp_tls_mode="auto")
    html = page(admin_web, VIEW_URL)
    assert "<dd>Implicit TLS from the first byte, certificate verified</dd>" in html


def test_y_on_port_587_means_starttls_required(admin_web: Client) -> None:
    save(admin_web, smtp_port="587", smtp_secure_required="Y")
    assert "STARTTLS required, certificate verified" in page(admin_web, VIEW_URL)


def test_n_warns_on_the_view_and_the_edit_page(admin_web: Client) -> None:
    save(admin_web, smtp_secure_required="N", smtp_password=SMTP_PASSWORD)
    view = page(admin_web, VIEW_URL)
    assert "<dd>N</dd>" in view
    assert "mail travels unencrypted" in view
    assert "The SMTP password is never sent that way" in view
    assert "STARTTLS when the server offers it" in view
    edit = page(admin_web, EDIT_URL)
    warning = re.search(r'<div class="msg msg-warning" id="secure-warning"[^>]*>', edit)
    assert warning is not None and "hidden" not in warning.group()
    assert "mail travels unencrypted. The SMTP password never does" in edit


def test_y_shows_no_password_warning(admin_web: Client) -> None:
    save(admin_web, smtp_secure_required="Y", smtp_password=SMTP_PASSWORD)
    assert "unencrypted" not in page(admin_web, VIEW_URL)
    edit = page(admin_web, EDIT_URL)
    warning = re.search(r'<div class="msg msg-warning" id="secure-warning"[^>]*>', edit)
    assert warning is not None and "hidden" in warning.group()


# Provider presets


def test_a_preset_prefills_host_port_and_security_without_saving(admin_web: Client) -> None:
    company_smtp_update(
        actor=None,
        values=SmtpSettingsInput(
            smtp_host="relay.internal.example", smtp_port=25, sender_email="info@example.com"
        ),
    )
    before = company_row()
    html = page(admin_web, EDIT_URL + "?preset=gmail")
    assert 'value="smtp.gmail.com"' in field_block(html, "smtp_host")
    assert 'value="587"' in field_block(html, "smtp_port")
    assert '<option value="Y" selected>' in field_block(html, "smtp_secure_required")
    assert '<option value="starttls" selected>' in field_block(html, "smtp_tls_mode")
    assert 'value="info@example.com"' in field_block(html, "sender_email")  # the rest stays
    assert "Gmail / Google Workspace: Google no longer accepts the account password" in html
    assert company_row() == before


def test_the_yahoo_preset_uses_implicit_tls_on_465(admin_web: Client) -> None:
    html = page(admin_web, EDIT_URL + "?preset=yahoo")
    assert 'value="465"' in field_block(html, "smtp_port")
    assert '<option value="implicit" selected>' in field_block(html, "smtp_tls_mode")
    assert "app password" in unescape(html)


def test_the_sendgrid_preset_prefills_the_login_apikey(admin_web: Client) -> None:
    html = page(admin_web, EDIT_URL + "?preset=sendgrid")
    assert 'value="apikey"' in field_block(html, "smtp_login")


def test_a_saved_preset_shows_its_requirement_on_the_view_page(admin_web: Client) -> None:
    save(admin_web, smtp_preset="microsoft365", smtp_host="smtp.office365.com")
    html = unescape(page(admin_web, VIEW_URL))
    assert "Microsoft 365 (Exchange Online)" in html
    assert "retiring Basic authentication" in html
    assert company_get().smtp_preset == "microsoft365"


def test_an_unknown_preset_changes_nothing(admin_web: Client) -> None:
    company_smtp_update(
        actor=None, values=SmtpSettingsInput(smtp_host="relay.internal.example", smtp_port=25)
    )
    html = page(admin_web, EDIT_URL + "?preset=no-such-provider")
    assert 'value="relay.internal.example"' in field_block(html, "smtp_host")


def test_the_page_carries_the_presets_for_the_inline_script(admin_web: Client) -> None:
    html = page(admin_web, EDIT_URL)
    assert '<script id="smtp-presets" type="application/json">' in html
    assert "email-smtp.eu-central-1.amazonaws.com" in html
    assert '<button type="submit" id="apply-preset">Apply preset</button>' in html


# Check connection and test email (the endpoints belong to postroom.web.views.smtp_check)


def test_the_view_page_offers_check_connection_and_a_test_email(admin_web: Client) -> None:
    html = page(admin_web, VIEW_URL)
    assert '<div id="check-result" aria-live="polite"></div>' in html
    try:
        check_url, test_url = reverse("company_smtp_check"), reverse("company_smtp_test_email")
    except NoReverseMatch:
        pytest.fail("postroom.web.views.smtp_check does not define its url names yet")
    assert f'hx-post="{check_url}" hx-target="#check-result"' in html
    assert f'hx-post="{test_url}" hx-target="#check-result"' in html
    assert 'name="to"' in html


# Roles


@pytest.mark.parametrize("role", [Role.STAFF, Role.MARKETER])
@pytest.mark.parametrize("url", ["/company/", VIEW_URL, EDIT_URL, EDIT_URL + "?preset=gmail"])
def test_only_administrators_may_open_the_company_pages(
    client: Client, role: str, url: str
) -> None:
    client.force_login(make_user("someone", role))
    assert client.get(url).status_code == 403


@pytest.mark.parametrize("role", [Role.STAFF, Role.MARKETER])
def test_only_administrators_may_save(client: Client, role: str) -> None:
    client.force_login(make_user("someone", role))
    assert client.post(EDIT_URL, VALID).status_code == 403
    assert not Company.objects.filter(smtp_host="smtp.example.com").exists()


@pytest.mark.parametrize("url", ["/company/", VIEW_URL, EDIT_URL])
def test_anonymous_visitors_are_sent_to_log_in(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")


def test_anonymous_posts_are_not_saved(client: Client) -> None:
    response = client.post(EDIT_URL, VALID)
    assert response.status_code == 302
    assert not Company.objects.filter(smtp_host="smtp.example.com").exists()
