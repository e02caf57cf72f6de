"""Contact Email and the API's templates: a file name, a saved template's subject or a value
merged into a subject that holds an encoded line break is refused, and nothing is queued."""

from __future__ import annotations

import pytest

from postroom.accounts.api_keys import api_key_create
from postroom.accounts.models import ApiScope, User
from postroom.company.models import Company
from postroom.compose.email_templates import email_template_create
from postroom.contacts.models import Contact
from postroom.core.errors import ValidationError
from postroom.mail.message import Attachment
from postroom.outbox.models import Message
from tests.accounts.factories import admin_make
from tests.api.conftest import ApiClient
from tests.compose.conftest import compose_send

pytestmark = pytest.mark.django_db

# The finding: a compose attachment named like this rewrote its MIME part.
INJECTION = "=?utf-8?q?a.pdf=0D=0AContent-Disposition:_inline=0D=0A=0D=0APay_here?="


def test_an_attachment_named_with_it_is_refused(
    company: Company, alice: User, ann: Contact
) -> None:
    pdf = Attachment(INJECTION, "application/pdf", b"%PDF-1.7")
    with pytest.raises(ValidationError, match="Attachment 1") as caught:
        compose_send(user=alice, to=[ann], subject="Quote", text="Hi", attachments=[pdf])
    assert caught.value.field == "attachments"
    assert not Message.objects.exists()


def test_a_saved_template_cannot_have_it_in_its_subject(alice: User) -> None:
    with pytest.raises(ValidationError, match="encoded word") as caught:
        email_template_create(actor=alice, name="Quote", subject=INJECTION, text="Hi", html="")
    assert caught.value.field == "subject"


def test_a_value_merged_into_a_subject_cannot_bring_it(
    company: Company, alice: User, ann: Contact
) -> None:
    email_template_create(
        actor=alice, name="Order", subject="Order {{ order.number }}", text="Hi", html=""
    )
    _, key = api_key_create(
        actor=admin_make("root", email="root@acme.example"),
        name="ERP",
        scopes=[ApiScope.SEND],
        sender_user=None,
        allowed_from=[],
        rate_limit_per_minute=600,
    )
    response = ApiClient(key).post(
        "/api/v1/messages",
        {
            "from": "alice",
            "to": [ann.email],
            "template": "Order",
            "data": {"order": {"number": "=?utf-8?q?1=0D=0ABcc:_all@acme.example?="}},
        },
    )
    assert response.status_code == 400, response.content
    assert "encoded word" in response.json()["error"]["message"]
    assert not Message.objects.exists()
