"""The bounce mailbox's settings: checks, standard ports, the audit log, the secret kept secret,
and the page's Test connection and Check now against a real Dovecot."""

from __future__ import annotations

import pytest
from django.test import Client

from postroom.audit.models import AuditEntry
from postroom.bounces.models import BounceMailbox, BounceReport
from postroom.bounces.services import (
    UPDATED,
    BounceMailboxInput,
    bounce_mailbox_clean,
    bounce_mailbox_update,
)
from postroom.core.errors import ValidationError
from postroom.core.secrets import secret_decrypt
from tests.accounts.factories import admin_make
from tests.bounces.mails import dsn
from tests.support.certs import CertAuthority
from tests.support.dovecot import DovecotServer

pytestmark = pytest.mark.django_db


def typed(**values: object) -> BounceMailboxInput:
    base: dict[str, object] = {
        "is_enabled": True,
        "host": "imap.example.com",
        "username": "bounces@example.com",
        "password": "s3cret-pw",
    }
    return BounceMailboxInput(**{**base, **values})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("protocol", "security", "port"),
    [
        ("imap", "tls", 993),
        ("imap", "starttls", 143),
        ("imap", "none", 143),
        ("pop3", "tls", 995),
        ("pop3", "starttls", 110),
    ],
)
def test_a_blank_port_is_the_standard_one(protocol: str, security: str, port: int) -> None:
    assert bounce_mailbox_clean(typed(protocol=protocol, security=security))["port"] == port


def test_switching_protocol_moves_a_standard_port_along() -> None:
    assert bounce_mailbox_clean(typed(protocol="pop3", security="tls", port=993))["port"] == 995
    assert bounce_mailbox_clean(typed(port=10993))["port"] == 10993


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"host": ""}, "host"),
        ({"host": "imaps://imap.example.com"}, "host"),
        ({"host": "imap.example.com:993"}, "host"),
        ({"username": ""}, "username"),
        ({"processed_folder": "INBOX"}, "processed_folder"),
        ({"poll_minutes": 0}, "poll_minutes"),
        ({"soft_bounce_limit": 0}, "soft_bounce_limit"),
        ({"ca_certificate": "not a certificate"}, "ca_certificate"),
    ],
)
def test_bad_input_names_its_field(values: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        bounce_mailbox_clean(typed(**values))
    assert caught.value.field == field


def test_saving_audits_the_changes_and_never_the_password() -> None:
    admin = admin_make("ada")

    mailbox = bounce_mailbox_update(actor=admin, values=typed())

    assert secret_decrypt(mailbox.password_encrypted) == "s3cret-pw"
    entry = AuditEntry.objects.get(action=UPDATED)
    assert entry.changes["Password"] == {"changed": True, "secret": "set"}
    assert entry.changes["Server address"] == {"from": "", "to": "imap.example.com"}
    assert "s3cret-pw" not in str(entry.changes)

    # A blank password keeps the stored one.
    bounce_mailbox_update(actor=admin, values=typed(password="", poll_minutes=10))
    assert secret_decrypt(BounceMailbox.objects.get(pk=1).password_encrypted) == "s3cret-pw"


def test_an_enabled_mailbox_needs_a_password() -> None:
    with pytest.raises(ValidationError) as caught:
        bounce_mailbox_update(actor=None, values=typed(password=""))
    assert caught.value.field == "password"
    assert not BounceMailbox.objects.filter(is_enabled=True).exists()


def _form(dovecot: DovecotServer, ca: CertAuthority, user: str, password: str) -> dict[str, str]:
    return {
        "is_enabled": "on",
        "protocol": "imap",
        "host": "127.0.0.1",
        "port": str(dovecot.imaps_port),
        "security": "tls",
        "username": user,
        "auth_method": "password",
        "password": password,
        "folder": "INBOX",
        "processed_folder": "Postroom/Processed",
        "ca_certificate": ca.pem,
        "poll_minutes": "5",
        "soft_bounce_limit": "3",
        "soft_bounce_days": "30",
    }


@pytest.mark.django_db(transaction=True)
def test_the_page_tests_saves_and_checks_now(
    client: Client, dovecot: DovecotServer, test_ca: CertAuthority
) -> None:
    client.force_login(admin_make("ada"))
    user, password = dovecot.user_add()
    dovecot.deliver(user, dsn("one@example.net"))
    dovecot.deliver(user, dsn("two@example.net"))
    form = _form(dovecot, test_ca, user, password)

    tested = client.post("/company/bounces/", {**form, "action": "test"}, HTTP_HX_REQUEST="true")
    assert "Connection works" in tested.text
    assert "2 mails wait in the folder INBOX" in tested.text
    assert password not in tested.text
    assert not BounceMailbox.objects.filter(pk=1, is_enabled=True).exists()  # nothing saved

    wrong = client.post("/company/bounces/", {**form, "password": "nope", "action": "test"})
    assert "refused the login" in wrong.text

    saved = client.post("/company/bounces/", {**form, "action": "save"}, follow=True)
    assert "Bounce mailbox saved." in saved.text
    assert password not in saved.text

    checked = client.post("/company/bounces/check/", follow=True)
    assert "Read 2 new mails" in checked.text
    assert BounceReport.objects.count() == 2
    assert "one@example.net" in checked.text


def test_only_administrators_see_the_page(client: Client) -> None:
    assert client.get("/company/bounces/").status_code in (302, 403)
