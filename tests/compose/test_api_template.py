"""The API's "template with data": send a saved template, its merge fields filled from
`data`, rendered the way Contact Email renders it; every mistake a 400 with code and field."""

from __future__ import annotations

from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any, cast

import pytest

from postroom.accounts.api_keys import api_key_create
from postroom.accounts.models import ApiScope, User
from postroom.company.models import Company
from postroom.compose.email_templates import email_template_create
from postroom.compose.models import EmailTemplate
from postroom.contacts.models import Contact
from postroom.outbox.models import Message
from tests.accounts.factories import admin_make
from tests.api.conftest import ApiClient

pytestmark = pytest.mark.django_db

SEND = "/api/v1/messages"


@pytest.fixture
def api(company: Company) -> ApiClient:
    _, key = api_key_create(
        actor=admin_make("root", email="root@acme.example"),
        name="ERP",
        scopes=[ApiScope.SEND, ApiScope.READ],
        sender_user=None,
        allowed_from=[],
        rate_limit_per_minute=600,
    )
    return ApiClient(key)


@pytest.fixture
def quote(alice: User) -> EmailTemplate:
    return email_template_create(
        actor=alice,
        name="Quote follow-up",
        subject="Quote {{ order.number }} for {{ contact.first_name or contact.email }}",
        text="",
        html=(
            "<p>Dear {{ contact.first_name }},</p>"
            "<p>your order {{ order.number }} ({{ order['total'] }}) is ready.</p>"
            "<p>{{ user.name }}, {{ company.name }}</p>"
        ),
    )


def sent_mail(response: Any) -> EmailMessage:
    assert response.status_code == 202, response.content
    raw = Message.objects.values_list("raw", flat=True).get(pk=response.json()["id"])
    return cast(EmailMessage, message_from_bytes(bytes(raw or b""), policy=default_policy))


def body(mail: EmailMessage, subtype: str) -> str:
    part = mail.get_body(preferencelist=(subtype,))
    assert part is not None
    return cast(str, cast(Any, part).get_content()).replace("\r\n", "\n")


def error_of(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, response.content
    return cast(dict[str, Any], response.json()["error"])


def test_a_template_is_sent_with_its_merge_fields_from_data_and_the_contact(
    api: ApiClient, quote: EmailTemplate, alice: User, ann: Contact
) -> None:
    mail = sent_mail(
        api.post(
            SEND,
            {
                "from": "alice",
                "to": [ann.email],
                "template": "quote follow-up",
                "data": {"order": {"number": "1042", "total": "€ 120 <b>"}},
            },
        )
    )
    assert mail["Subject"] == "Quote 1042 for Ann"
    assert mail["From"] == "Alice Smith <alice@acme.example>"
    html = body(mail, "html")
    assert "<p>Dear Ann,</p>" in html
    assert "your order 1042 (€ 120 &lt;b&gt;) is ready." in html, "values are escaped"
    assert "Alice Smith, Acme" in html
    assert body(mail, "plain") == (
        "Dear Ann,\n\nyour order 1042 (€ 120 <b>) is ready.\n\nAlice Smith, Acme\n"
    )


def test_a_template_is_found_by_its_id_given_as_a_number(
    api: ApiClient, quote: EmailTemplate
) -> None:
    mail = sent_mail(
        api.post(
            SEND,
            {
                "to": ["dana@example.org"],
                "template": quote.pk,
                "data": {"order": {"number": 7, "total": 1}},
            },
        )
    )
    assert mail["Subject"] == "Quote 7 for dana@example.org"
    assert mail["From"] == "Acme <office@acme.example>"


def test_data_may_replace_postroom_s_own_values(api: ApiClient, quote: EmailTemplate) -> None:
    mail = sent_mail(
        api.post(
            SEND,
            {
                "to": ["a@example.org", "b@example.org"],
                "template": "Quote follow-up",
                "data": {"order": {"number": "1", "total": "2"}, "contact": {"first_name": "team"}},
            },
        )
    )
    assert mail["Subject"] == "Quote 1 for team"


@pytest.mark.parametrize(
    ("body_fields", "code", "field", "words"),
    [
        ({"template": "nope"}, "unknown_template", "template", "no email template 'nope'"),
        ({"template": "Quote follow-up", "subject": "x"}, "invalid", "template", "not both"),
        ({"template": "Quote follow-up", "text": "x"}, "invalid", "template", "not both"),
        ({"subject": "x", "text": "y", "data": {"a": 1}}, "invalid", "data", "give `template`"),
        (
            {"template": "Quote follow-up", "data": {}},
            "invalid_template",
            "template.subject",
            "{{ order }}",
        ),
        (
            {"template": "Quote follow-up", "data": {"order": {"number": "1"}}},
            "invalid_template",
            "template.html",
            "'total'",
        ),
        (
            {"template": "Quote follow-up", "data": {"self": {}}},
            "invalid_template",
            "data",
            "reserves",
        ),
        (
            {"template": "Quote follow-up", "data": {"order-no": 1}},
            "invalid_template",
            "data",
            "letters",
        ),
        (
            {
                "template": "Quote follow-up",
                "data": {"order": {"number": "1\r\nBcc: x@example.org", "total": 1}},
            },
            "invalid",
            "data",
            "header injection",
        ),
        ({"template": "x" * 201}, "invalid", "template", "at most 200"),
    ],
)
def test_every_template_mistake_is_a_400_with_code_and_field(
    api: ApiClient,
    quote: EmailTemplate,
    body_fields: dict[str, Any],
    code: str,
    field: str,
    words: str,
) -> None:
    error = error_of(api.post(SEND, {"to": ["bob@example.org"], **body_fields}))
    assert error["code"] == code
    assert error["field"] == field
    assert words in error["message"]
    assert not Message.objects.exists()


def test_a_template_with_a_sandbox_escape_is_a_400_not_a_500(api: ApiClient, alice: User) -> None:
    # Saved templates are checked; one stored before a rule existed is checked again here.
    EmailTemplate.objects.create(
        name="Old", name_key="old", subject="{{ ''.__class__.__mro__[1].__subclasses__() }}"
    )
    error = error_of(api.post(SEND, {"to": ["bob@example.org"], "template": "old"}))
    assert error["code"] == "invalid_template" and error["field"] == "template.subject"
    assert "not allowed" in error["message"]


def test_contact_fields_with_several_to_recipients_are_a_400_as_on_the_compose_page(
    api: ApiClient, quote: EmailTemplate
) -> None:
    # One email to all, as Contact Email's default: `contact` names the one To recipient, and
    # a silent blank for each of several would be a wrong letter, not a missing value.
    error = error_of(
        api.post(
            SEND,
            {
                "to": ["a@example.org", "b@example.org"],
                "template": "Quote follow-up",
                "data": {"order": {"number": "1", "total": "2"}},
            },
        )
    )
    assert error["code"] == "invalid_template" and error["field"] == "template.subject"
    assert "{{ contact.first_name }}, {{ contact.email }}" in error["message"]
    assert "one email to 2 To recipients" in error["message"]
    assert "one request per recipient" in error["message"]
    assert not Message.objects.exists()
