"""“Allow my password over an unencrypted connection” on SMTP Server Information (issue 7,
finding 6): off by default, explained on the page, saved, shown and audited."""

from __future__ import annotations

import pytest
from django.test import Client

from postroom.accounts.models import Role, User
from postroom.audit.models import AuditEntry
from postroom.company.selectors import company_get
from postroom.company.services import SMTP_UPDATED, SmtpSettingsInput, company_smtp_update
from postroom.company.smtp import company_smtp_config
from tests.web.test_company_pages import EDIT_URL, VIEW_URL, field_block, page, save

pytestmark = pytest.mark.django_db

LABEL = "Allow my password over an unencrypted connection"
AUDIT_LABEL = "Allow the password over an unencrypted connection"


@pytest.fixture
def admin_web(client: Client) -> Client:
    client.force_login(User.objects.create(username="ada", role=Role.ADMINISTRATOR))
    return client


def test_it_is_off_by_default_and_the_form_says_why(admin_web: Client) -> None:
    assert company_get().smtp_allow_plaintext_auth is False
    block = field_block(page(admin_web, EDIT_URL), "smtp_allow_plaintext_auth")
    assert LABEL in block
    assert "checked" not in block
    assert "anyone on the network between here and the server can read a password" in block
    assert "Tick it only for a relay on a trusted network" in block


def test_the_warning_for_n_says_the_password_stays_back(admin_web: Client) -> None:
    html = page(admin_web, EDIT_URL)
    assert (
        "With N, when the server does not offer STARTTLS, mail travels unencrypted. The SMTP "
        f"password never does, unless you tick “{LABEL}” below."
    ) in html


def test_ticking_it_saves_shows_and_audits_it(admin_web: Client) -> None:
    response = save(
        admin_web,
        smtp_secure_required="N",
        smtp_password="relay-password-0b1d",
        smtp_allow_plaintext_auth="on",
    )
    assert response.status_code == 302, response.content.decode()

    company = company_get()
    assert company.smtp_allow_plaintext_auth is True
    assert company_smtp_config(company).allow_plaintext_auth is True
    entry = AuditEntry.objects.filter(action=SMTP_UPDATED).latest("id")
    assert entry.changes[AUDIT_LABEL] == {"from": "never", "to": "allowed"}
    view = page(admin_web, VIEW_URL)
    assert "the password may travel in plain text" in view
    assert "and so does the SMTP password" in view  # the page's warning for N
    assert "checked" in field_block(page(admin_web, EDIT_URL), "smtp_allow_plaintext_auth")
    save(admin_web, smtp_secure_required="N")  # unticked: a checkbox sends nothing
    assert company_get().smtp_allow_plaintext_auth is False


def test_leaving_it_off_keeps_the_password_to_tls_and_the_page_says_so(
    admin_web: Client,
) -> None:
    company_smtp_update(
        actor=None,
        values=SmtpSettingsInput(
            smtp_host="relay.internal.example",
            smtp_port=25,
            smtp_secure_required=False,
            smtp_login="mailer",
            smtp_password="relay-password-0b1d",
        ),
    )
    view = page(admin_web, VIEW_URL)
    assert "never sent: Postroom logs in only over TLS" in view
    assert "The SMTP password is never sent that way" in view
    assert company_smtp_config(company_get()).allow_plaintext_auth is False
