"""Mailbox takeover (issue 7, finding 2): a user cannot make another sender's address their own.

The finding: a staff user set their profile address to invoices@, an API key's allowed From
address; from then on the ERP's mail "from invoices@" was filed as theirs, downloadable with
its attachments, and Compose sent as invoices@. Now a user's new address must be confirmed
from a link mailed to it, and an address that belongs to the company, a key or another user
is refused outright.
"""

from __future__ import annotations

import html as html_lib
import re
import time

import pytest
from django.core import signing
from django.test import Client
from pytest_django.fixtures import Settings

from postroom.accounts import user_email
from postroom.accounts.api_keys import api_key_create
from postroom.accounts.models import ApiScope, Role, User
from postroom.accounts.services import user_update
from postroom.audit.models import AuditEntry
from postroom.company.selectors import company_get
from postroom.company.services import SmtpSettingsInput, company_smtp_update
from postroom.core.errors import ValidationError
from postroom.outbox.models import Message
from tests.accounts.factories import admin_make, user_make
from tests.api.conftest import ApiClient

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def mail_through_the_outbox(settings: Settings) -> None:
    # pytest-django points Django's mail at memory; Postroom's own settings use the outbox.
    settings.EMAIL_BACKEND = "postroom.outbox.backend.OutboxEmailBackend"


@pytest.fixture
def company() -> None:
    company = company_get()
    company.sender_email = "office@corp.example"
    company.sender_name = "Corp"
    company.save()


@pytest.fixture
def sam(company: None) -> User:
    return user_make("sam", email="sam@corp.example", display_name="Sam")


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def field_errors(html: str) -> str:
    return html_lib.unescape(
        " ".join(re.findall(r'class="(?:field|form)-error"[^>]*>([^<]*)<', html))
    )


def mail_to(address: str) -> Message:
    return Message.objects.get(recipients__address=address)


def link_in(message: Message) -> str:
    raw = bytes(message.raw or b"").decode()
    (path,) = re.findall(r"https?://[^/\s]+(/profile/email/[^/\s]+/)", raw)
    return path


def test_a_user_cannot_take_an_api_keys_role_address(sam: User) -> None:
    admin = admin_make("root", email="root@corp.example")
    api_key_create(
        actor=admin, name="ERP", scopes=[ApiScope.SEND], allowed_from=["invoices@corp.example"]
    )
    html = (
        logged_in(sam)
        .post("/profile/", {"display_name": "Sam", "email": "invoices@corp.example"})
        .content.decode()
    )
    assert "allowed From address of the API key “ERP”" in field_errors(html)
    sam.refresh_from_db()
    assert sam.email == "sam@corp.example"
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    ("address", "says"),
    [("office@corp.example", "the company's address"), ("root@corp.example", "the user")],
)
def test_a_user_cannot_take_the_company_or_another_users_address(
    sam: User, address: str, says: str
) -> None:
    admin_make("root", email="root@corp.example")
    html = logged_in(sam).post("/profile/", {"display_name": "Sam", "email": address})
    assert says in field_errors(html.content.decode())
    sam.refresh_from_db()
    assert sam.email == "sam@corp.example"


def test_a_new_address_changes_only_from_the_link_mailed_to_it(sam: User) -> None:
    client = logged_in(sam)
    response = client.post("/profile/", {"display_name": "Sam", "email": "sam@home.example"})
    assert response.status_code == 302
    sam.refresh_from_db()
    assert sam.email == "sam@corp.example", "nothing changes before the link is opened"
    confirmation = mail_to("sam@home.example")
    assert confirmation.sender_user is None, "not in Sam's own Outbox, where Sam could read it"
    page = client.get(link_in(confirmation))
    assert "sam@home.example" in page.content.decode()
    sam.refresh_from_db()
    assert sam.email == "sam@corp.example", "a GET (a link scanner) changes nothing"

    client.post(link_in(confirmation))
    sam.refresh_from_db()
    assert sam.email == "sam@home.example"
    notice = mail_to("sam@corp.example")
    assert "changed from sam@corp.example to sam@home.example" in bytes(notice.raw or b"").decode()
    assert AuditEntry.objects.filter(action="user.email_changed").exists()

    again = client.post(link_in(confirmation))
    assert again.status_code == 400, "a link works once"
    assert "not valid" in again.content.decode()


def test_the_link_works_only_for_the_user_who_asked(sam: User) -> None:
    logged_in(sam).post("/profile/", {"display_name": "Sam", "email": "sam@home.example"})
    eve = user_make("eve", email="eve@corp.example")
    response = logged_in(eve).post(link_in(mail_to("sam@home.example")))
    assert response.status_code == 400
    eve.refresh_from_db()
    sam.refresh_from_db()
    assert (eve.email, sam.email) == ("eve@corp.example", "sam@corp.example")


def test_an_expired_link_changes_nothing(sam: User) -> None:
    class DayOldSigner(signing.TimestampSigner):
        def timestamp(self) -> str:
            age = user_email.EMAIL_CHANGE_MAX_AGE.total_seconds() + 60
            return signing.b62_encode(int(time.time() - age))

    token = DayOldSigner(salt=user_email._SALT).sign_object(
        {"u": sam.pk, "old": sam.email, "new": "sam@home.example"}
    )
    with pytest.raises(ValidationError, match="expired"):
        user_email.email_change_confirm(user=sam, token=token)
    sam.refresh_from_db()
    assert sam.email == "sam@corp.example"


def test_an_administrator_sets_an_address_directly_but_not_a_taken_one(sam: User) -> None:
    admin = admin_make("root", email="root@corp.example")
    user_update(
        actor=admin,
        user=sam,
        display_name="Sam",
        email="sam@home.example",
        role=Role.STAFF,
        is_active=True,
    )
    sam.refresh_from_db()
    assert sam.email == "sam@home.example"
    with pytest.raises(ValidationError, match="company's address"):
        user_update(
            actor=admin,
            user=sam,
            display_name="Sam",
            email="office@corp.example",
            role=Role.STAFF,
            is_active=True,
        )


def test_the_company_address_cannot_be_a_users(sam: User) -> None:
    with pytest.raises(ValidationError, match="address of the user Sam") as caught:
        company_smtp_update(
            actor=None,
            values=SmtpSettingsInput(
                smtp_host="relay.example", smtp_port=587, sender_email="SAM@corp.example"
            ),
        )
    assert caught.value.field == "sender_email"


def test_an_api_keys_allowed_from_cannot_be_a_users(sam: User) -> None:
    with pytest.raises(ValidationError, match="address of the user Sam") as caught:
        api_key_create(
            actor=admin_make("root"),
            name="ERP",
            scopes=[ApiScope.SEND],
            allowed_from=["sam@corp.example"],
        )
    assert caught.value.field == "allowed_from"


def test_the_company_address_in_the_api_always_means_the_company(sam: User) -> None:
    # A user who got the company's address before these checks existed (older data).
    User.objects.filter(pk=sam.pk).update(email="office@corp.example")
    _, key = api_key_create(actor=admin_make("root"), name="ERP", scopes=[ApiScope.SEND])
    response = ApiClient(key).post(
        "/api/v1/messages",
        {"from": "office@corp.example", "to": ["customer@example.net"], "subject": "Invoice"},
    )
    assert response.status_code == 202, response.content
    message = Message.objects.get(pk=response.json()["id"])
    assert message.sender_user is None
    assert logged_in(sam).get(f"/outbox/{message.pk}/").status_code == 404
