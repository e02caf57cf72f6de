"""message_compose from the Contact Email page: merge fields, Cc/Bcc, attachments, the send-as
policy, templates, and every way the input can be wrong. The two ways to send (one email to
all, individually) are tests/compose/test_compose_modes.py."""

from __future__ import annotations

from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any, cast

import pytest
from pytest_django.fixtures import Settings

from postroom.accounts.models import User
from postroom.company.models import Company, SendAsPolicy
from postroom.compose.email_templates import email_template_create
from postroom.compose.recipients import addresses_split
from postroom.compose.services import MAX_TO_RECIPIENTS
from postroom.contacts.models import Contact
from postroom.core.errors import ValidationError
from postroom.mail.message import Attachment
from postroom.outbox.models import Message, RecipientKind, SendAs, Source
from tests.accounts.factories import user_make
from tests.compose.conftest import compose_preview, compose_send

pytestmark = pytest.mark.django_db


def parsed(message: Message) -> EmailMessage:
    raw = Message.objects.values_list("raw", flat=True).get(pk=message.pk)
    return cast(EmailMessage, message_from_bytes(bytes(raw or b""), policy=default_policy))


def text_of(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain",))
    assert part is not None
    return cast(str, cast(Any, part).get_content()).replace("\r\n", "\n")


def html_of(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("html",))
    assert part is not None
    return cast(Any, part).get_content()


def send(user: User, **kwargs: Any) -> list[Message]:
    values: dict[str, Any] = {"subject": "Hello", "text": "Hi.\n"}
    values.update(kwargs)
    return compose_send(user=user, **values)


def test_each_to_contact_gets_their_own_message_with_their_merge_fields(
    company: Company, alice: User, ann: Contact, bob: Contact
) -> None:
    messages = send(
        alice,
        is_individual=True,
        to=[ann, bob],
        cc=["Carol <carol@partner.example>"],
        bcc=["audit@acme.example"],
        subject="Your quote, {{ contact.first_name }}",
        text="Dear {{ contact.name }} of {{ contact.company or 'your company' }},\n\n"
        "{{ user.name }}\n{{ company.name }}\n",
    )
    assert len(messages) == 2
    to_ann, to_bob = (parsed(message) for message in messages)
    assert to_ann["Subject"] == "Your quote, Ann" and to_bob["Subject"] == "Your quote, Bob"
    assert to_ann["To"] == "Ann Lee <ann@globex.example>"
    assert to_bob["To"] == "Bob Stone <Bob@initech.example>"
    assert text_of(to_ann) == "Dear Ann Lee of Globex,\n\nAlice Smith\nAcme\n"
    assert text_of(to_bob) == "Dear Bob Stone of your company,\n\nAlice Smith\nAcme\n"
    for mail, message in zip((to_ann, to_bob), messages, strict=True):
        assert mail["From"] == "Alice Smith <alice@acme.example>"
        assert mail["Cc"] == "Carol <carol@partner.example>"
        assert mail["Bcc"] is None, "Bcc is in the envelope only"
        kinds = dict(message.recipients.values_list("address", "kind"))
        assert kinds["carol@partner.example"] == RecipientKind.CC
        assert kinds["audit@acme.example"] == RecipientKind.BCC
        assert message.source == Source.COMPOSE
        assert message.sender_user == alice
        assert message.send_as == SendAs.AS_USER


def test_a_typed_address_that_belongs_to_a_contact_is_that_contact(
    company: Company, alice: User, bob: Contact
) -> None:
    (message,) = send(alice, to=["BOB@initech.example"], subject="Hi {{ contact.first_name }}")
    mail = parsed(message)
    assert mail["Subject"] == "Hi Bob"
    assert mail["To"] == "Bob Stone <Bob@initech.example>"


def test_an_address_that_is_no_contact_has_empty_names_and_its_typed_name(
    company: Company, alice: User
) -> None:
    (message,) = send(
        alice,
        to=["Dana White <dana@example.org>"],
        subject="Hi {{ contact.first_name or contact.name }}",
        text="{{ contact.email }}|{{ contact.last_name }}|",
    )
    mail = parsed(message)
    assert mail["Subject"] == "Hi Dana White"
    assert text_of(mail) == "dana@example.org||\n"


def test_the_same_to_address_twice_gets_one_message(
    company: Company, alice: User, ann: Contact
) -> None:
    messages = send(alice, to=[ann, "ANN@globex.example", "ann@globex.example"])
    assert len(messages) == 1


def test_rich_text_is_sanitized_and_gets_a_generated_text_part(
    company: Company, alice: User, ann: Contact
) -> None:
    (message,) = send(
        alice,
        to=[ann],
        text="",
        html=(
            "<p>Dear <b>{{ contact.first_name }}</b>,<script>alert(1)</script></p>"
            '<ul><li>see <a href="https://acme.example/q" onclick="x()">the quote</a></li></ul>'
            '<p><a href="javascript:alert(1)">bad</a></p>'
        ),
    )
    mail = parsed(message)
    html = html_of(mail)
    assert "<b>Ann</b>" in html
    assert "script" not in html and "onclick" not in html and "javascript:" not in html
    assert 'rel="noopener noreferrer"' in html
    assert text_of(mail) == "Dear Ann,\n\n- see the quote (https://acme.example/q)\n\nbad\n"


def test_a_contacts_name_is_escaped_in_the_html_part(company: Company, alice: User) -> None:
    from tests.compose.conftest import contact_make

    evil = contact_make("evil@example.org", first_name="<img src=x onerror=alert(1)>")
    (message,) = send(alice, to=[evil], text="", html="<p>Hi {{ contact.first_name }}</p>")
    html = html_of(parsed(message))
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img" not in html


def test_attachments_are_attached_to_every_message(
    company: Company, alice: User, ann: Contact, bob: Contact
) -> None:
    pdf = Attachment(filename="quote 1042.pdf", content_type="application/pdf", data=b"%PDF-1.7")
    messages = send(alice, to=[ann, bob], attachments=[pdf], is_individual=True)
    for message in messages:
        (attachment,) = list(parsed(message).iter_attachments())
        assert attachment.get_filename() == "quote 1042.pdf"
        assert attachment.get_content() == b"%PDF-1.7"


def test_attachments_over_the_size_limit_are_refused_naming_the_limit(
    company: Company, alice: User, ann: Contact, settings: Settings
) -> None:
    settings.POSTROOM_MAX_MESSAGE_BYTES = 1000
    big = Attachment(filename="big.bin", content_type="application/octet-stream", data=b"x" * 1001)
    with pytest.raises(ValidationError) as caught:
        send(alice, to=[ann], attachments=[big])
    assert caught.value.field == "attachments"
    assert "1,000 bytes" in caught.value.message
    assert "POSTROOM_MAX_MESSAGE_BYTES" in caught.value.message
    assert not Message.objects.exists()


def test_one_big_file_to_many_recipients_is_refused(
    company: Company, alice: User, settings: Settings
) -> None:
    settings.POSTROOM_MAX_MESSAGE_BYTES = 1024 * 1024
    file = Attachment(
        filename="f.bin", content_type="application/octet-stream", data=b"x" * 900_000
    )
    to = [f"p{index}@example.org" for index in range(12)]
    with pytest.raises(ValidationError) as caught:
        send(alice, to=to, attachments=[file], is_individual=True)
    assert caught.value.field == "attachments" and "own copy" in caught.value.message
    assert len(send(alice, to=to[:10], attachments=[file], is_individual=True)) == 10


@pytest.mark.parametrize(
    "subject",
    ["Hello\r\nBcc: victim@example.org", "Hello\nX-Injected: 1", "Hello\u2028Bcc: x@example.org"],
)
def test_header_injection_in_the_subject_is_refused(
    company: Company, alice: User, ann: Contact, subject: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        send(alice, to=[ann], subject=subject)
    assert caught.value.field == "subject"
    assert "header injection" in caught.value.message or "line break" in caught.value.message
    assert not Message.objects.exists()


def test_header_injection_through_a_recipient_name_is_refused(
    company: Company, alice: User
) -> None:
    with pytest.raises(ValidationError) as caught:
        send(alice, to=['"Ann\r\nBcc: victim@example.org" <ann@example.org>'])
    assert caught.value.field == "to"


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"to": []}, "to", "at least one recipient"),
        ({"to": [], "cc": ["x@example.org"], "is_individual": True}, "to", "Cc and Bcc are"),
        ({"to": ["not an address"]}, "to", "Recipient 1 (To)"),
        ({"to": ["ok@example.org"], "cc": ["ok@example.org", "@bad"]}, "cc", "Recipient 2 (Cc)"),
        ({"to": ["ok@example.org"], "subject": " "}, "subject", "Write a subject"),
        ({"to": ["ok@example.org"], "text": ""}, "body", "Write a message"),
        ({"to": ["ok@example.org"], "text": "{{ contact.nickname }}"}, "text", "nickname"),
        ({"to": ["ok@example.org"], "text": "{{ ''.__class__ }}"}, "text", "not allowed"),
        ({"to": ["ok@example.org"], "subject": "{{ contact.first_name }}"}, "subject", "empty"),
        (
            {"to": [f"p{i}@example.org" for i in range(MAX_TO_RECIPIENTS + 1)]},
            "to",
            "campaign",
        ),
    ],
)
def test_bad_input_is_refused_with_the_field_and_nothing_is_queued(
    company: Company, alice: User, kwargs: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        send(alice, **kwargs)
    assert caught.value.field == field
    assert words in caught.value.message
    assert not Message.objects.exists()


def test_a_user_without_an_address_is_told_to_add_one(company: Company, ann: Contact) -> None:
    nobody = user_make("nobody", email="")
    with pytest.raises(ValidationError) as caught:
        send(nobody, to=[ann])
    assert caught.value.field == "from"
    assert "no email address" in caught.value.message


def test_a_template_gives_subject_and_body_when_none_is_written(
    company: Company, alice: User, ann: Contact
) -> None:
    template = email_template_create(
        actor=alice,
        name="Follow-up",
        subject="Following up, {{ contact.first_name }}",
        text="",
        html="<p>Dear {{ contact.first_name }},</p><p>— {{ user.name }}</p>",
    )
    (message,) = send(alice, to=[ann], subject="", text="", template=template)
    mail = parsed(message)
    assert mail["Subject"] == "Following up, Ann"
    assert "<p>Dear Ann,</p>" in html_of(mail)
    assert text_of(mail) == "Dear Ann,\n\n— Alice Smith\n"


def test_what_is_written_wins_over_the_template(
    company: Company, alice: User, ann: Contact
) -> None:
    template = email_template_create(
        actor=alice, name="T", subject="From the template", text="Template body", html=""
    )
    (message,) = send(alice, to=[ann], subject="Mine", text="My body\n", template=template)
    mail = parsed(message)
    assert mail["Subject"] == "Mine" and text_of(mail) == "My body\n"


def test_via_company_sends_from_the_company_with_reply_to_the_user(
    company: Company, alice: User, ann: Contact
) -> None:
    company.send_as_policy = SendAsPolicy.VIA_COMPANY
    company.save()
    (message,) = send(alice, to=[ann])
    mail = parsed(message)
    assert mail["From"] == "Alice Smith via Acme <office@acme.example>"
    assert mail["Reply-To"] == "Alice Smith <alice@acme.example>"
    assert message.send_as == SendAs.VIA_COMPANY


def test_auto_queues_the_via_company_version_alongside(
    company: Company, alice: User, ann: Contact
) -> None:
    company.send_as_policy = SendAsPolicy.AUTO
    company.save()
    (message,) = send(alice, to=[ann])
    message.refresh_from_db()
    assert message.send_as == SendAs.AS_USER
    assert message.fallback_raw is not None
    assert b"Alice Smith via Acme" in bytes(message.fallback_raw)


def test_the_same_send_key_twice_queues_once(company: Company, alice: User, ann: Contact) -> None:
    key = "0123456789abcdef0123456789abcdef"
    first = send(alice, to=[ann], send_key=key)
    second = send(alice, to=[ann], send_key=key)
    assert [m.pk for m in first] == [m.pk for m in second]
    assert Message.objects.count() == 1


def test_a_preview_builds_the_message_of_one_recipient_and_queues_nothing(
    company: Company, alice: User, ann: Contact, bob: Contact
) -> None:
    preview = compose_preview(
        user=alice,
        to=[ann, bob],
        subject="Hi {{ contact.first_name }}",
        text="x",
        number=2,
        is_individual=True,
    )
    assert [item.email.subject for item in preview.composed] == ["Hi Ann", "Hi Bob"]
    assert preview.shown.addressee.contact == bob
    mail = message_from_bytes(preview.raw, policy=default_policy)
    assert mail["Subject"] == "Hi Bob" and mail["To"] == "Bob Stone <Bob@initech.example>"
    assert not Message.objects.exists()
    with pytest.raises(ValidationError, match="preview number 1 to 2"):
        compose_preview(
            user=alice, to=[ann, bob], subject="Hi", text="x", number=3, is_individual=True
        )


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        ("a@x.example, b@x.example; c@x.example\nd@x.example", 4),
        ('"Smith, Ann" <ann@x.example>, Bob <bob@x.example>', 2),
        ("  \n , ;", 0),
        ("Ann <ann@x.example>\r\nBob <bob@x.example>\r\n", 2),
    ],
)
def test_a_recipient_field_is_split_at_commas_and_lines_but_not_inside_names(
    text: str, pieces: int
) -> None:
    assert len(addresses_split(text)) == pieces
